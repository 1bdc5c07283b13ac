/**
 * Real Gammu (Debian's `gammu`, 1.42) against the simulator: if Gammu cannot talk to it, the simulator is wrong.
 * And Gammu and smsgate sharing one port through UUCP lock files in /var/lock (Gammu's compiled-in lock directory).
 */
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Modem } from '../../modem/modem.js';
import { type TestSim, startSim, waitFor } from '../helpers/sim.js';

const run = promisify(execFile);
const sims: TestSim[] = [];
afterEach(async () => {
  for (const s of sims.splice(0)) await s.stop();
});

async function gammu(s: TestSim, args: string[], locking = false): Promise<{ code: number; out: string }> {
  const config = join(s.dir, 'gammurc');
  writeFileSync(config, `[gammu]\ndevice = ${s.sim.atPorts(0)[0]}\nconnection = at115200\n${locking ? 'use_locking = yes\n' : ''}`);
  try {
    const { stdout, stderr } = await run('gammu', ['-c', config, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw new Error(`cannot run gammu (apt-get install gammu): ${e.message}`);
    return { code: e.code, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const TEXT = 'Проверка: длинное сообщение для Gammu, которое не помещается в одну часть. Ещё немного текста! 😀';

describe('real Gammu against the simulated modem', () => {
  it.each(['generic', 'huawei', 'simcom', 'quectel', 'zte'] as const)('gammu identify succeeds (%s)', async (flavour) => {
    const s = await startSim({ flavour });
    sims.push(s);
    const { code, out } = await gammu(s, ['identify']);
    expect(code, out).toBe(0);
    const info = s.sim.info()[0]!;
    expect(out).toContain(info.imei);
    expect(out).toContain(info.imsi);
  });

  it('gammu sendsms TEXT … -unicode -autolen 5 -flash succeeds and network.jsonl shows the message intact', async () => {
    const s = await startSim({});
    sims.push(s);
    const { code, out } = await gammu(s, ['sendsms', 'TEXT', '+79161234567', '-unicode', '-autolen', '5', '-flash', '-text', TEXT]);
    expect(code, out).toBe(0);
    const records = s.sim.records();
    expect(records).toHaveLength(2);
    expect(records.map((r) => r.text).join('')).toBe(TEXT);
    for (const [i, r] of records.entries()) {
      expect(r).toMatchObject({ to: '+79161234567', class: 0, encoding: 'ucs2', concat: { total: 2, seq: i + 1 } });
    }
    expect(out).toMatch(/message reference=1[\s\S]*message reference=2/);
  });

  it('gammu getallsms lists an SMS the simulated network delivered', async () => {
    const s = await startSim({});
    sims.push(s);
    s.sim.modem(0).deliver('+79001234567', 'Hello from the simulated network');
    const { code, out } = await gammu(s, ['getallsms']);
    expect(code, out).toBe(0);
    expect(out).toContain('Hello from the simulated network');
    expect(out).toContain('+79001234567');
  });
});

describe('Gammu and smsgate take turns on one port through the lock file', () => {
  it('Gammu is refused while smsgate holds the port, and smsgate while Gammu does', async () => {
    const s = await startSim({ latencyMs: 1_500 });
    sims.push(s);
    const port = s.sim.atPorts(0)[0]!;
    const ours = await Modem.open(port); // the real lock directory, /var/lock, which Gammu uses
    const refused = await gammu(s, ['identify'], true);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/locked/i);
    await ours.close();

    const sending = gammu(s, ['sendsms', 'TEXT', '+79161234567', '-text', 'from gammu'], true);
    // Gammu holds the port from its lock file on, and then waits 1.5 s for the network's answer.
    await waitFor(() => existsSync(`/var/lock/LCK..${port.split('/').pop()}`));
    await expect(Modem.open(port)).rejects.toMatchObject({ code: 'PORT_LOCKED', message: expect.stringMatching(/in use by gammu \(PID \d+\)/) });
    expect((await sending).code).toBe(0);

    const after = await Modem.open(port);
    try {
      await after.init();
      const [result] = await after.send([{ pdu: '0011000B919761214365F70000FF0131', length: 15 }]);
      expect(result).toMatchObject({ status: 'sent' });
    } finally {
      await after.close();
    }
    expect(s.sim.records().map((r) => r.text)).toEqual(['from gammu', '1']);
  });
});
