#!/usr/bin/env node
/**
 * The chaos run's report (`npm run chaos` runs it after vitest): reads the figures each chaos test wrote to
 * test-results/chaos/<name>.json, prints them as one JSON document and as a short table, and writes the document to
 * test-results/chaos/summary.json. Exits 1 when a test left no figures or its figures show a loss, an unrecorded
 * duplicate, a 5xx, a partial store or a failed property. Plain JavaScript, so Node runs it without a build.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-results', 'chaos');
const EXPECTED = ['crash', 'shared-db', 'faults', 'api-fuzz', 'codec'];

const records = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => f.endsWith('.json') && f !== 'summary.json')
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')))
  : [];
const byName = new Map(records.map((r) => [r.name, r]));

const n = (v) => (typeof v === 'number' ? v : 0);
/** What each test did, in a few words. */
function scale(r) {
  switch (r.name) {
    case 'crash':
      return `${r.rounds} kill -9 rounds, ${r.messages} msgs`;
    case 'shared-db':
      return `${r.gateways} gateways, 1 MariaDB, ${r.messages} msgs (${r.sentByA} + ${r.sentByB})`;
    case 'faults':
      return `${r.messages} msgs (${r.parts} parts), ${r.modems} modems, ${r.faultSteps} fault steps`;
    case 'api-fuzz':
      return `${r.requests} requests (${r.status2xx} 2xx, ${r.status4xx} 4xx), ${r.storedMessages} msgs stored`;
    case 'codec':
      return `${r.properties} properties, ${r.runs} runs, ${r.texts} texts, ${r.parts} parts`;
    default:
      return '';
  }
}
/** The figures that must be 0. */
function bad(r) {
  return {
    lost: n(r.lost),
    unrecordedDuplicates: n(r.unrecordedDuplicates) + (r.name === 'shared-db' ? n(r.duplicates) : 0),
    status5xx: n(r.status5xx),
    partialStores: n(r.partialStores),
    failures: n(r.failures) + n(r.problems) + n(r.quotaMismatches) + n(r.notJson) + n(r.noField) + n(r.wrongContent) + n(r.wrongText) + n(r.strays),
  };
}

const problems = [];
for (const name of EXPECTED) if (!byName.has(name)) problems.push(`${name}: no figures (the test did not get that far)`);
for (const r of records) {
  for (const [k, v] of Object.entries(bad(r))) if (v > 0) problems.push(`${r.name}: ${k} ${v}`);
}
const first = records[0];
const summary = {
  at: new Date().toISOString(),
  mode: first?.mode ?? null,
  machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? null, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
  ok: problems.length === 0,
  problems,
  tests: records,
};
if (existsSync(dir)) writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n\n`);

const rows = [['test', 'mode', 'what', 'lost', 'duplicates (unrecorded)', 'unknown', '5xx', 'partial stores', 's']];
for (const name of [...EXPECTED, ...records.map((r) => r.name).filter((x) => !EXPECTED.includes(x))]) {
  const r = byName.get(name);
  if (!r) {
    rows.push([name, '-', 'no figures', '-', '-', '-', '-', '-', '-']);
    continue;
  }
  const dup = r.duplicates === undefined ? '-' : `${r.duplicates} (${r.name === 'shared-db' ? r.duplicates : n(r.unrecordedDuplicates)})`;
  rows.push([
    name,
    r.mode,
    scale(r),
    r.lost === undefined ? '-' : String(r.lost),
    dup,
    r.unknown === undefined ? '-' : String(r.unknown),
    r.status5xx === undefined ? '-' : String(r.status5xx),
    r.partialStores === undefined ? '-' : String(r.partialStores),
    String(r.seconds ?? '-'),
  ]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
for (const [i, row] of rows.entries()) {
  process.stdout.write(`${row.map((cell, k) => cell.padEnd(widths[k])).join('  ')}\n`);
  if (i === 0) process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
}
process.stdout.write(`\n${problems.length === 0 ? 'chaos: no loss, no unrecorded duplicate, no 5xx, no partial store' : `chaos: FAILED: ${problems.join('; ')}`}\n`);
process.exitCode = problems.length === 0 ? 0 : 1;
