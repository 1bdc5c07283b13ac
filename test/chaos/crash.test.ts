/**
 * Crash safety: a real gateway process (`smsgate serve --simulate 2`) drains a few hundred messages while it is
 * killed with SIGKILL at random moments and restarted. The simulated network's record (DIR/sim/network.jsonl, which
 * survives the kills) must show every message sent exactly once — except messages the database records as `unknown`
 * (cut off between AT+CMGS and its answer), which may have gone out once — and nothing may be lost.
 * Rounds: 5 in the short form (CI), 20 in the long one (SMSGATE_CHAOS=long, `npm run chaos`); see mode.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../sql/index.js';
import { startServe } from '../helpers/cli.js';
import { SCALE, allMessages, writeFigures } from './mode.js';

const ROUNDS = SCALE.crashRounds;
// Enough work that every kill lands while the queue drains: 40 messages a round at 40 ms a send on 2 channels.
const MESSAGES = Math.max(200, ROUNDS * 40);
const root = mkdtempSync(join(tmpdir(), 'smsgate-crash-'));
const data = join(root, 'data');
const lockDir = join(root, 'lock');
mkdirSync(lockDir);
let child: ChildProcess | null = null;
const output = new Map<ChildProcess, () => string>();

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

async function startGateway(): Promise<ChildProcess> {
  const { child: proc, output: out } = await startServe(['--simulate', '2', '--sim-latency', '40', '--data', data, '--listen', '127.0.0.1:0', '--lock-dir', lockDir]);
  output.set(proc, out);
  return proc;
}

/** Kills with SIGKILL; a gateway that already died by itself is a failure, with what it printed. */
async function kill9(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    throw new Error(`the gateway died by itself (${proc.exitCode ?? proc.signalCode}): ${output.get(proc)?.() ?? ''}`);
  }
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}

describe('kill -9 while draining', () => {
  it(`${ROUNDS} kills and restarts: every message sent once, none lost, duplicates only where recorded as unknown`, async () => {
    const started = Date.now();
    child = await startGateway();
    const storage = await openStorage(`sqlite:${join(data, 'smsgate.db')}`);
    const admin = await storage.createUser({ name: 'ops', passwordHash: 'x', role: 'admin' });
    const recipients = Array.from({ length: MESSAGES }, (_, i) => `+7916${String(i).padStart(7, '0')}`);
    await storage.enqueue(recipients.map((recipient, i) => ({ userId: admin.id, recipient, text: `crash test ${i}`, encoding: 'gsm7', parts: 1 })));

    let killedWhileDraining = 0;
    for (let round = 0; round < ROUNDS; round++) {
      await new Promise((r) => setTimeout(r, 300 + Math.floor(Math.random() * 700)));
      const counts = await storage.countByState();
      if (counts.queued || counts.sending) killedWhileDraining++;
      await kill9(child);
      child = await startGateway();
    }
    expect(killedWhileDraining).toBe(ROUNDS);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const counts = await storage.countByState();
      if (!counts.queued && !counts.sending) break;
      if (Date.now() > deadline) throw new Error(`not drained: ${JSON.stringify(counts)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const stopped = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await stopped;

    const networkFile = join(data, 'sim', 'network.jsonl');
    expect(existsSync(networkFile)).toBe(true);
    const times = new Map<string, number>();
    const texts = new Map<string, string>();
    for (const line of readFileSync(networkFile, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const { to, text } = JSON.parse(line) as { to: string; text: string };
      times.set(to, (times.get(to) ?? 0) + 1);
      texts.set(to, text);
    }
    const messages = await allMessages(storage);
    const unknown = messages.filter((m) => m.state === 'unknown');
    // Lost: a message missing, not sent nor `unknown`, or `sent` without reaching the network.
    const lost =
      MESSAGES - messages.length + messages.filter((m) => !['sent', 'unknown'].includes(m.state) || (m.state === 'sent' && (times.get(m.recipient) ?? 0) === 0)).length;
    // Duplicates: records beyond the first; unrecorded ones are those of a message the database calls `sent`.
    const duplicates = [...times.values()].reduce((a, n) => a + Math.max(0, n - 1), 0);
    const unrecorded = messages.filter((m) => m.state === 'sent').reduce((a, m) => a + Math.max(0, (times.get(m.recipient) ?? 0) - 1), 0);
    const strays = [...times.keys()].filter((to) => !recipients.includes(to)).length;
    const wrongText = messages.filter((m) => texts.has(m.recipient) && texts.get(m.recipient) !== m.text).length;
    writeFigures('crash', {
      rounds: ROUNDS,
      killedWhileDraining,
      messages: MESSAGES,
      sent: messages.filter((m) => m.state === 'sent').length,
      unknown: unknown.length,
      unknownOnNetwork: unknown.filter((m) => times.has(m.recipient)).length,
      lost,
      duplicates,
      unrecordedDuplicates: unrecorded,
      strays,
      wrongText,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    });
    expect(messages).toHaveLength(MESSAGES);
    for (const m of messages) {
      expect(['sent', 'unknown']).toContain(m.state);
      const seen = times.get(m.recipient) ?? 0;
      if (m.state === 'sent') expect(seen, `${m.recipient} sent ${seen} times`).toBe(1);
      else expect(seen, `${m.recipient} (unknown) sent ${seen} times`).toBeLessThanOrEqual(1);
    }
    // No record of the network is unaccounted for.
    expect(strays).toBe(0);
    expect(wrongText).toBe(0);
    expect(lost).toBe(0);
    expect(unrecorded).toBe(0);
    await storage.close();
    console.log(`crash test: ${ROUNDS} kills while draining ${MESSAGES} messages: ${messages.length - unknown.length} sent once, ${unknown.length} unknown`);
  }, 300_000);
});
