#!/usr/bin/env node
// Entry point of the `smsgate` command: runs the compiled CLI (an SBC should not transpile TypeScript at start-up).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/server/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('smsgate: not built yet: run "npm run build" in the project (npm start and npm test do it for you)\n');
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
