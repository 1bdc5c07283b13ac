/**
 * Crash safety: a real gateway process (`smsgate serve --simulate 2`) drains a few hundred messages while it is
 * killed with SIGKILL at random moments and restarted. The simulated network's record (DIR/sim/network.jsonl, which
 * survives the kills) must show every message sent exactly once — except messages the database records as `unknown`
 * (cut off between AT+CMGS and its answer), which may have gone out once — and nothing may be lost.
 * Rounds: 5 here; SMSGATE_CRASH_ROUNDS=20 for the long form.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../sql/index.js';
import { startServe } from '../helpers/cli.js';

const ROUNDS = Number(process.env.SMSGATE_CRASH_ROUNDS ?? 5);
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
    for (const line of readFileSync(networkFile, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const to = (JSON.parse(line) as { to: string }).to;
      times.set(to, (times.get(to) ?? 0) + 1);
    }
    const messages = await storage.listMessages({ limit: 1000 });
    expect(messages).toHaveLength(MESSAGES);
    const unknown = messages.filter((m) => m.state === 'unknown');
    for (const m of messages) {
      expect(['sent', 'unknown']).toContain(m.state);
      const seen = times.get(m.recipient) ?? 0;
      if (m.state === 'sent') expect(seen, `${m.recipient} sent ${seen} times`).toBe(1);
      else expect(seen, `${m.recipient} (unknown) sent ${seen} times`).toBeLessThanOrEqual(1);
    }
    // No record of the network is unaccounted for.
    expect([...times.keys()].every((to) => recipients.includes(to))).toBe(true);
    await storage.close();
    console.log(`crash test: ${ROUNDS} kills while draining ${MESSAGES} messages: ${messages.length - unknown.length} sent once, ${unknown.length} unknown`);
  }, 300_000);
});
