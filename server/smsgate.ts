#!/usr/bin/env node
/** Entry point of the `smsgate` command (package.json `bin`), compiled to dist/ so an SBC never transpiles at start. */
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2));
