/**
 * Two gateway processes on one MariaDB drain one queue: claims with FOR UPDATE SKIP LOCKED and leases mean no
 * message is sent twice. Each process has its own simulated modem; the union of what their networks received must
 * hold every message exactly once. The queue is filled in batches while both drain it (300 messages in the short
 * form, 2000 in the long one; see mode.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../sql/index.js';
import { startServe } from '../helpers/cli.js';
import { type TestMariaDb, startMariaDb } from '../helpers/mariadb.js';
import { SCALE, allMessages, writeFigures } from './mode.js';

const MESSAGES = SCALE.sharedMessages;

const root = mkdtempSync(join(tmpdir(), 'smsgate-shared-'));
let mariadb: TestMariaDb;
const children: ChildProcess[] = [];

beforeAll(async () => {
  mariadb = await startMariaDb();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await mariadb?.stop();
  rmSync(root, { recursive: true, force: true });
});

async function serve(name: string, db: string): Promise<ChildProcess> {
  const lockDir = join(root, `${name}-lock`);
  mkdirSync(lockDir, { recursive: true });
  const { child } = await startServe(['--db', db, '--simulate', '1', '--sim-latency', '20', '--data', join(root, name), '--listen', '127.0.0.1:0', '--lock-dir', lockDir]);
  children.push(child);
  return child;
}

function received(name: string): string[] {
  return readFileSync(join(root, name, 'sim', 'network.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { to: string }).to);
}

describe('two gateway processes on one MariaDB', () => {
  it(`drain one queue of ${MESSAGES} messages, filled while they drain, without sending any message twice`, async () => {
    const started = Date.now();
    const db = await mariadb.url('smsgate_shared');
    const storage = await openStorage(db);
    const admin = await storage.createUser({ name: 'ops', passwordHash: 'x', role: 'admin' });
    const recipients = Array.from({ length: MESSAGES }, (_, i) => `+7916${String(i).padStart(7, '0')}`);
    await Promise.all([serve('a', db), serve('b', db)]);
    // Batches of 50 while both gateways claim: inserts and claims race on the same table.
    for (let i = 0; i < MESSAGES; i += 50) {
      await storage.enqueue(recipients.slice(i, i + 50).map((recipient, k) => ({ userId: admin.id, recipient, text: `shared ${i + k}`, encoding: 'gsm7', parts: 1 })));
      await new Promise((r) => setTimeout(r, 100));
    }
    const deadline = Date.now() + 60_000 + MESSAGES * 150;
    while ((await storage.countByState()).sent !== recipients.length) {
      if (Date.now() > deadline) throw new Error(`not drained: ${JSON.stringify(await storage.countByState())}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const c of children) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }
    const a = received('a');
    const b = received('b');
    const all = [...a, ...b];
    const counts = new Map<string, number>();
    for (const to of all) counts.set(to, (counts.get(to) ?? 0) + 1);
    const messages = await allMessages(storage);
    writeFigures('shared-db', {
      gateways: 2,
      messages: MESSAGES,
      sentByA: a.length,
      sentByB: b.length,
      sent: messages.filter((m) => m.state === 'sent').length,
      lost: recipients.filter((to) => !counts.has(to)).length,
      duplicates: all.length - counts.size,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    });
    expect(all.sort()).toEqual([...recipients].sort());
    expect(messages.map((m) => m.state)).toEqual(recipients.map(() => 'sent'));
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    console.log(`shared database: gateway a sent ${a.length}, gateway b sent ${b.length}, no duplicate`);
    await storage.close();
  }, 900_000);
});
