/**
 * The chaos and fuzz tests' scale. The short form runs in CI with every `npm test`; the long form is
 * `SMSGATE_CHAOS=long` (what `npm run chaos` sets). Each test writes its figures to test-results/chaos/<name>.json,
 * which `test/chaos/report.mjs` prints as JSON and a table after `npm run chaos`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Message, Storage } from '../../sql/storage.js';

export type ChaosMode = 'short' | 'long';

export const MODE: ChaosMode = process.env.SMSGATE_CHAOS === 'long' ? 'long' : 'short';
const long = MODE === 'long';

/** How much each test does in this mode. */
export const SCALE: Readonly<Record<'crashRounds' | 'sharedMessages' | 'faultMessages' | 'faultRounds' | 'apiRuns' | 'codecRuns', number>> = {
  /** kill -9 rounds while a real `smsgate serve` drains (crash.test.ts). */
  crashRounds: long ? 20 : 5,
  /** Messages two gateway processes on one MariaDB drain between them (shared-db.test.ts). */
  sharedMessages: long ? 2000 : 300,
  /** Messages drained through faulty modems (faults.test.ts). */
  faultMessages: long ? 600 : 150,
  /** Rounds of the fault schedule over that drain. */
  faultRounds: long ? 4 : 1,
  /** Random requests against the HTTP ways in (api-fuzz.test.ts), in all. */
  apiRuns: long ? 3000 : 200,
  /** Random texts per codec property (codec.test.ts). */
  codecRuns: long ? 3000 : 300,
};

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-results', 'chaos');

/** What one chaos test found: its counts (lost, duplicates, 5xx, ...) and how long it took. */
export type Figures = Record<string, number | string | boolean | null>;

/**
 * Writes test-results/chaos/<name>.json: the mode, the machine, and the figures. Called before the test's
 * assertions, so a failing run still leaves its numbers for the report.
 */
export function writeFigures(name: string, figures: Figures): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const record = { name, mode: MODE, at: new Date().toISOString(), node: process.version, cores: cpus().length, ...figures };
  writeFileSync(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(record, null, 2)}\n`);
}

/** Every message in storage, oldest first (storage lists at most 1000 at a time, newest first). */
export async function allMessages(storage: Storage): Promise<Message[]> {
  const out: Message[] = [];
  let beforeId: number | undefined;
  for (;;) {
    const page = await storage.listMessages({ limit: 1000, beforeId });
    out.push(...page);
    if (page.length < 1000) break;
    beforeId = page.at(-1)!.id;
  }
  return out.reverse();
}
