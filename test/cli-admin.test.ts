/**
 * The admin verbs (status, sim, queue, send) through the built binary, on both databases: a SQLite file and a real
 * MariaDB, seeded as a running gateway leaves them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage } from '../sql/index.js';
import type { Storage } from '../sql/storage.js';
import { runCli } from './helpers/cli.js';
import { type TestMariaDb, startMariaDb } from './helpers/mariadb.js';

const tmp = mkdtempSync(join(tmpdir(), 'smsgate-cli-admin-'));
let mariadb: TestMariaDb;
beforeAll(async () => {
  mariadb = await startMariaDb();
}, 60_000);
afterAll(async () => {
  await mariadb?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const engines: [string, () => Promise<string>][] = [
  ['SQLite', async () => `sqlite:${join(tmp, 'admin.sqlite')}`],
  ['MariaDB', async () => mariadb.url('smsgate_cli_admin')],
];

describe.each(engines)('admin verbs on %s', (_engine, makeUrl) => {
  let url: string;
  let storage: Storage;
  let queuedId: number;
  let failedId: number;
  const cli = (...args: string[]) => runCli([...args, '--db', url]);

  beforeAll(async () => {
    url = await makeUrl();
    storage = await openStorage(url);
    const ops = await storage.createUser({ name: 'ops', passwordHash: 'x', role: 'admin' });
    await storage.createUser({ name: 'ann', passwordHash: 'x' });
    const sim = await storage.upsertSim({ imsi: '250020000000001', number: '+79160000001', operator: 'MegaFon' });
    await storage.upsertSim({ imsi: '250020000000002', number: '+79160000002', operator: 'Beeline' });
    const channel = await storage.upsertChannel({ port: '/dev/ttyUSB0', imei: '356938031000004', simId: sim.id });
    await storage.setChannelRadio(channel.id, { signalDbm: -71, operator: 'MegaFon', registration: 'home' });
    await storage.setChannelHealth(channel.id, false, '+CMS ERROR: 38 (network out of order)');
    const { messages } = await storage.enqueue([
      { userId: ops.id, recipient: '+79161230001', text: 'one', encoding: 'gsm7', parts: 1, sendAt: Date.now() + 86_400_000 },
      { userId: ops.id, recipient: '+79161230002', text: 'two', encoding: 'gsm7', parts: 1 },
    ]);
    queuedId = messages[0]!.id;
    failedId = messages[1]!.id;
    await storage.claimDue('gw', Date.now(), 60_000, 10);
    await storage.markFailed(failedId, 'gw', { errorCode: 'AT_CMS', errorText: '+CMS ERROR: 1 (unassigned number)', reason: 'rejected' });
    await storage.logEvent({ kind: 'message.attempt-failed', messageId: failedId, detail: { text: '+CMS ERROR: 1 (unassigned number)' } });
  });
  afterAll(async () => {
    await storage?.close();
  });

  it('status shows channels, SIMs, the queue and the last errors in 80 columns', () => {
    const r = cli('status');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.every((l) => [...l].length <= 80)).toBe(true);
    expect(r.stdout).toMatch(/^Queue: 1 queued, 1 failed/);
    expect(r.stdout).toMatch(/\/dev\/ttyUSB0\s+\+79160000001\s+-71dBm home\s+UNHEALTHY/);
    expect(r.stdout).toContain('last error: +CMS ERROR: 38 (network out of order)');
    expect(r.stdout).toMatch(/\+79160000002\s+Beeline\s+0\s+unlimited enabled/);
    expect(r.stdout).toMatch(/Last errors:\n.*msg \d+: \+CMS ERROR: 1 \(unassigned number\)/);
    const json = JSON.parse(cli('status', '--json').stdout);
    expect(json.channels[0]).toMatchObject({ port: '/dev/ttyUSB0', signalDbm: -71, healthy: false });
  });

  it('sim set changes settings through the API checks; sim list shows them', async () => {
    expect(cli('sim', 'set', '+79160000001', '--quota', '500', '--billing-day', '5', '--pacing', '1000', '--quiet', '22:00-07:00', '--owner', 'ann', '--label', 'office')).toMatchObject({ status: 0 });
    const sim = (await storage.listSims()).find((s) => s.number === '+79160000001')!;
    expect(sim).toMatchObject({ monthlyQuota: 500, billingDay: 5, pacingMs: 1000, quietStart: '22:00', quietEnd: '07:00', label: 'office' });
    expect(await storage.simOwners(sim.id)).toEqual([(await storage.getUserByName('ann'))!.id]);
    const list = cli('sim', 'list');
    expect(list.stdout).toMatch(/office\s+0\s+500\s+5\s+1000ms 22:00-07:00 ann/);
    const bad = cli('sim', 'set', 'office', '--billing-day', '31');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/billing_day must be from 1 to 28/);
    expect(cli('sim', 'set', 'office', '--owner', 'nobody').status).toBe(1);
    expect(cli('sim', 'set', 'nosuch', '--quota', '1').stderr).toMatch(/no SIM "nosuch"/);
    expect(cli('sim', 'set', 'office').status).toBe(2);
    expect(cli('sim', 'set', 'office', '--quiet', '22-7').status).toBe(2);
    expect(cli('sim', 'set', 'office', '--quota', 'none', '--no-owners', '--disable')).toMatchObject({ status: 0 });
    expect((await storage.getSim(sim.id))!).toMatchObject({ monthlyQuota: null, enabled: false });
  });

  it('queue list, retry and cancel', async () => {
    const list = cli('queue', 'list', '--state', 'failed');
    expect(list.stdout).toMatch(/\+79161230002\s+failed\s+0\/3\s+\+CMS ERROR: 1/);
    expect(cli('queue', 'list', '--state', 'bogus').status).toBe(2);
    expect(cli('queue', 'retry', String(failedId))).toMatchObject({ status: 0 });
    expect((await storage.getMessage(failedId))!.state).toBe('queued');
    expect(cli('queue', 'cancel', String(queuedId))).toMatchObject({ status: 0 });
    expect((await storage.getMessage(queuedId))!.state).toBe('cancelled');
    const again = cli('queue', 'cancel', String(queuedId));
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/is cancelled \(only queued messages can be cancelled\) \[CONFLICT\]/);
    expect(cli('queue', 'retry', 'x').status).toBe(2);
  });

  it('send queues through the same checks as the API', async () => {
    const r = cli('send', '--user', 'ops', '--to', '+79161230003, not-a-number', '--text', 'Привет', '--json');
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/invalid recipient/);
    const ok = cli('send', '--user', 'ops', '--to', '+79161230003,+79161230004', '--text', 'Привет', '--json');
    expect(ok.status, ok.stderr).toBe(0);
    const sent = JSON.parse(ok.stdout) as { id: number; to: string; encoding: string }[];
    expect(sent.map((m) => [m.to, m.encoding])).toEqual([
      ['+79161230003', 'ucs2'],
      ['+79161230004', 'ucs2'],
    ]);
    expect((await storage.getMessage(sent[0]!.id))!.source).toBe('cli');
    expect(cli('send', '--user', 'ghost', '--to', '+79161230003', '--text', 'x').status).toBe(1);
    expect(cli('send', '--to', '+79161230003').status).toBe(2);
  });
});
