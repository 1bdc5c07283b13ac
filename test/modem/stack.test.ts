/**
 * Our modem stack over the simulator's real pseudo-terminals: the production serial code path (serialport, the AT
 * channel, locks, probing) against virtual modems.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SmsgateError } from '../../modem/errors.js';
import { Modem } from '../../modem/modem.js';
import { decodePdu, encodeSubmit } from '../../modem/pdu/index.js';
import { probe } from '../../modem/probe.js';
import { type TestSim, startSim, waitFor } from '../helpers/sim.js';

const sims: TestSim[] = [];
const modems: Modem[] = [];
afterEach(async () => {
  for (const m of modems.splice(0)) await m.close().catch(() => undefined);
  for (const s of sims.splice(0)) await s.stop();
});

async function sim(options: Parameters<typeof startSim>[0] = {}): Promise<TestSim> {
  const s = await startSim(options);
  sims.push(s);
  return s;
}

async function open(s: TestSim, path = s.sim.atPorts(0)[0]!, options: Parameters<typeof Modem.open>[1] = {}): Promise<Modem> {
  const modem = await Modem.open(path, { lockDir: s.lockDir, ...options });
  modems.push(modem);
  return modem;
}

const RU_300 = 'Внимание! Плановые работы на линии. '.repeat(9).slice(0, 300);

describe('probing', () => {
  it('finds exactly the AT ports of a 5-port modem and of a 1-port modem, grouped by IMEI, and skips a locked port', async () => {
    const five = await sim({ ports: 5, atPorts: [1, 3], flavour: 'huawei', noise: true });
    const one = await sim({ flavour: 'quectel', identities: [{ imei: '867962040000017' }] });
    const other = await sim({});
    // Another program holds `other`'s port: a live process's PID in its UUCP lock file.
    const holder = spawn('sleep', ['30']);
    const otherPort = other.sim.atPorts(0)[0]!;
    writeFileSync(join(five.lockDir, `LCK..${otherPort.split('/').pop()}`), `${String(holder.pid).padStart(10)}\n`);
    try {
      const report = await probe({
        globs: [`${five.dir}/ttyUSB*`, `${one.dir}/ttyUSB*`, `${other.dir}/ttyUSB*`],
        lockDir: five.lockDir,
        atTimeoutMs: 300,
      });
      const byImei = report.modems.map((m) => [m.imei, m.ports]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
      expect(byImei).toEqual([
        [five.sim.info()[0]!.imei, five.sim.atPorts(0)],
        ['867962040000017', one.sim.atPorts(0)],
      ]);
      expect(five.sim.atPorts(0).map((p) => p.replace(/.*ttyUSB/, ''))).toHaveLength(2);
      expect(report.silent).toEqual(five.sim.info()[0]!.ports.filter((p) => !p.at).map((p) => p.path));
      expect(report.skipped).toEqual([{ path: otherPort, reason: 'locked', detail: expect.stringMatching(/in use by sleep \(PID \d+\)/) }]);
      const identity = (imei: string) => report.modems.find((m) => m.imei === imei)!.identity;
      expect(identity(five.sim.info()[0]!.imei)).toMatchObject({ manufacturer: 'huawei', iccid: five.sim.info()[0]!.iccid, signalDbm: -73 });
      expect(identity('867962040000017')).toMatchObject({ manufacturer: 'Quectel', iccid: one.sim.info()[0]!.iccid });
      // Probing left no lock behind.
      expect(readdirSync(five.lockDir)).toEqual([`LCK..${otherPort.split('/').pop()}`]);
    } finally {
      holder.kill();
    }
  });

  it('finds a replugged modem again by IMEI under its new port name', async () => {
    const s = await sim({ ports: 2, atPorts: [0] });
    const imei = s.sim.info()[0]!.imei;
    const before = await probe({ globs: [`${s.dir}/ttyUSB*`], lockDir: s.lockDir, atTimeoutMs: 300 });
    expect(before.modems.map((m) => [m.imei, m.ports])).toEqual([[imei, s.sim.atPorts(0)]]);
    const oldPath = s.sim.atPorts(0)[0]!;
    const info = await s.sim.replug(0, Number(oldPath.replace(/.*ttyUSB/, '')) + 5);
    expect(existsSync(oldPath)).toBe(false);
    const after = await probe({ globs: [`${s.dir}/ttyUSB*`], lockDir: s.lockDir, atTimeoutMs: 300 });
    expect(after.modems.map((m) => [m.imei, m.ports])).toEqual([[imei, [info.ports[0]!.path]]]);
    expect(info.ports[0]!.path).not.toBe(oldPath);
  });
});

describe('sending', () => {
  it('delivers a 300-character Cyrillic flash message intact, all parts under one hold', async () => {
    const s = await sim({ flavour: 'simcom' });
    const modem = await open(s);
    await modem.init();
    const message = encodeSubmit({ to: '+79161234567', text: RU_300, flash: true, reference: 77 });
    expect(message.parts).toHaveLength(5);
    const results = await modem.send(message.parts);
    expect(results.map((r) => r.status)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent']);
    const records = s.sim.records();
    expect(records.map((r) => r.concat)).toEqual([1, 2, 3, 4, 5].map((seq) => ({ ref: 77, total: 5, seq, bits: 8 })));
    expect(records.every((r) => r.class === 0 && r.encoding === 'ucs2' && r.to === '+79161234567')).toBe(true);
    expect(records.map((r) => r.text).join('')).toBe(RU_300);
    expect(results.map((r) => (r.status === 'sent' ? r.reference : null))).toEqual(records.map((r) => r.mr));
  });

  it('serialises two senders on one channel: each message goes out whole', async () => {
    const s = await sim({ latencyMs: 15 });
    const modem = await open(s);
    await modem.init();
    const a = encodeSubmit({ to: '+79160000001', text: 'A'.repeat(400), reference: 1 });
    const b = encodeSubmit({ to: '+79160000002', text: 'B'.repeat(400), reference: 2 });
    await Promise.all([modem.send(a.parts), modem.send(b.parts)]);
    expect(s.sim.records().map((r) => r.to)).toEqual([...a.parts.map(() => '+79160000001'), ...b.parts.map(() => '+79160000002')]);
  });

  it('refuses a second owner of a port in this process', async () => {
    const s = await sim();
    await open(s);
    await expect(Modem.open(s.sim.atPorts(0)[0]!, { lockDir: s.lockDir })).rejects.toMatchObject({ code: 'PORT_LOCKED' });
  });
});

describe('faults: a clear, classified error, and the channel free and usable afterwards', () => {
  const one = (text = 'ping') => encodeSubmit({ to: '+79161234567', text }).parts;

  it.each([
    [38, 'retry-other', 'network out of order'],
    [42, 'retry-same', 'congestion'],
    [1, 'permanent', 'unassigned (unallocated) number'],
    [500, 'retry-same', 'unknown error'],
    [330, 'retry-other', 'SMSC address unknown'],
  ] as const)('+CMS ERROR: %i', async (code, retry, meaning) => {
    const s = await sim();
    const modem = await open(s);
    await modem.init();
    s.sim.fault(0, { type: 'cms', code });
    const [failed] = await modem.send(one());
    expect(failed!.status).toBe('failed');
    const error = (failed as { error: SmsgateError }).error;
    expect(error).toMatchObject({ code: 'AT_CMS', modemCode: code, retry });
    expect(error.message).toContain(meaning);
    expect((await modem.send(one()))[0]!.status).toBe('sent');
  });

  it('a failed middle part stops the rest and says which', async () => {
    const s = await sim();
    const modem = await open(s);
    await modem.init();
    const parts = encodeSubmit({ to: '+79161234567', text: 'z'.repeat(500) }).parts;
    expect((await modem.send(parts.slice(0, 1)))[0]!.status).toBe('sent');
    s.sim.fault(0, { type: 'cms', code: 41 });
    const results = await modem.send(parts.slice(1));
    expect(results.map((r) => r.status)).toEqual(['failed', 'not-sent', 'not-sent']);
  });

  it('a modem that hangs gives AT_TIMEOUT, and the next send works after a resync', async () => {
    const s = await sim();
    // A budget the next (healthy) send meets however loaded the machine is.
    const modem = await open(s, undefined, { sendTimeoutMs: 1_500 });
    await modem.init();
    s.sim.fault(0, { type: 'hang' });
    const [hung] = await modem.send(one());
    expect(hung).toMatchObject({ status: 'failed', error: { code: 'AT_TIMEOUT' } });
    expect((await modem.send(one()))[0]!.status).toBe('sent');
  });

  it('lost registration is +CMS ERROR 331, retry on another SIM; back on the network it sends again', async () => {
    const s = await sim();
    const modem = await open(s);
    await modem.init();
    s.sim.fault(0, { type: 'unregister' });
    expect((await modem.identify()).registration).toBe('not-registered');
    const [failed] = await modem.send(one());
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'AT_CMS', modemCode: 331, retry: 'retry-other' } });
    s.sim.fault(0, { type: 'register' });
    expect((await modem.send(one()))[0]!.status).toBe('sent');
  });

  it('a SIM that wants its PIN is SIM_LOCKED without one, and unlocked with the right one', async () => {
    const s = await sim({ identities: [{ pin: '4321' }] });
    const modem = await open(s);
    await expect(modem.init()).rejects.toMatchObject({ code: 'SIM_LOCKED', retry: 'retry-other' });
    await modem.close();
    const wrong = await open(s, undefined, { pin: '1111' });
    await expect(wrong.init()).rejects.toMatchObject({ code: 'SIM_LOCKED', modemCode: 16 });
    await wrong.close();
    const right = await open(s, undefined, { pin: '4321' });
    await right.init();
    expect((await right.send(one()))[0]!.status).toBe('sent');
  });

  it('an unplug during a send fails it with PORT_CLOSED and releases the lock', async () => {
    // The network answers long after the unplug, however slowly a loaded machine gets there.
    const s = await sim({ latencyMs: 10_000 });
    const modem = await open(s, undefined, { sendTimeoutMs: 60_000 });
    await modem.init();
    const lockFile = join(s.lockDir, `LCK..${s.sim.atPorts(0)[0]!.split('/').pop()}`);
    expect(existsSync(lockFile)).toBe(true);
    let pduWritten!: () => void;
    const written = new Promise<void>((resolve) => (pduWritten = resolve));
    const sending = modem.send(one(), { onSubmitted: pduWritten });
    await written;
    await s.sim.unplug(0);
    const [result] = await sending;
    // The PDU was out when the modem vanished: whether the network took it cannot be known.
    expect(result).toMatchObject({ status: 'failed', error: { code: 'PORT_CLOSED', retry: 'unknown' } });
    await waitFor(() => !existsSync(lockFile));
    expect(s.sim.records()).toHaveLength(0);
  });

  it('an unplug before the PDU is written is a plain retry on another SIM', async () => {
    const s = await sim({});
    // Only the unplug ends the wait for the prompt, however slowly a loaded machine gets to it.
    const modem = await open(s, undefined, { promptTimeoutMs: 60_000 });
    await modem.init();
    s.sim.fault(0, { type: 'hang' });
    const sending = modem.send(one());
    await new Promise((r) => setTimeout(r, 100));
    await s.sim.unplug(0);
    expect((await sending)[0]).toMatchObject({ status: 'failed', error: { code: 'PORT_CLOSED', retry: 'retry-other' } });
  });
});

describe('late answers (the modem answers after we gave up)', () => {
  it('a late answer is drained by the resync, and the next commands get their own answers', async () => {
    const s = await sim({ flavour: 'quectel' });
    const modem = await open(s);
    await modem.init();
    s.sim.fault(0, { type: 'delay', ms: 400 });
    await expect(modem.channel.run('AT+COPS?', { timeoutMs: 150 })).rejects.toMatchObject({ code: 'AT_TIMEOUT' });
    const id = await modem.identify();
    expect(id).toMatchObject({ imei: s.sim.info()[0]!.imei, imsi: s.sim.info()[0]!.imsi, operator: 'MegaFon', manufacturer: 'Quectel' });
    expect((await modem.send(encodeSubmit({ to: '+79161234567', text: 'after' }).parts))[0]!.status).toBe('sent');
  });

  it('a prompt that comes too late sends nothing, and the next send works', async () => {
    const s = await sim({});
    // The prompt comes a second after the send gave up; the next send has as long, and starts once it came.
    const modem = await open(s, undefined, { sendTimeoutMs: 1_000 });
    await modem.init();
    s.sim.fault(0, { type: 'delay', ms: 2_000 });
    const began = Date.now();
    const [late] = await modem.send(encodeSubmit({ to: '+79161234567', text: 'too late' }).parts);
    expect(late).toMatchObject({ status: 'failed', error: { code: 'AT_TIMEOUT', retry: 'retry-same' } });
    await new Promise((r) => setTimeout(r, Math.max(0, began + 2_500 - Date.now())));
    expect((await modem.send(encodeSubmit({ to: '+79161234567', text: 'on time' }).parts))[0]!.status).toBe('sent');
    expect(s.sim.records().map((r) => r.text)).toEqual(['on time']);
  });

  it("a send with no answer after its PDU is 'unknown' — and indeed the network took it", async () => {
    // The network answers long after the send gave up, and the prompt comes well within its budget.
    const s = await sim({ latencyMs: 3_000 });
    const modem = await open(s, undefined, { sendTimeoutMs: 1_000 });
    await modem.init();
    const [result] = await modem.send(encodeSubmit({ to: '+79161234567', text: 'maybe' }).parts);
    expect(result).toMatchObject({ status: 'failed', error: { code: 'AT_TIMEOUT', retry: 'unknown' } });
    await waitFor(() => s.sim.records().length === 1);
    s.sim.modem(0).latencyMs = 5;
    expect((await modem.send(encodeSubmit({ to: '+79161234567', text: 'next' }).parts))[0]!.status).toBe('sent');
    expect(s.sim.records().map((r) => r.text)).toEqual(['maybe', 'next']);
  });

  it('boot lines after a replug do not spoil the identity', async () => {
    const s = await sim({ flavour: 'quectel' });
    const info = await s.sim.replug(0);
    const modem = await open(s, info.ports[0]!.path);
    await new Promise((r) => setTimeout(r, 60)); // the boot lines arrive
    await modem.init();
    expect(await modem.identify()).toMatchObject({ imei: info.imei, imsi: info.imsi, iccid: info.iccid });
  });
});

describe('delivery reports', () => {
  it('receives the +CDS status report the network sends for a part sent with TP-SRR', async () => {
    const s = await sim({});
    const modem = await open(s);
    await modem.init();
    const reports: { line: string; pdu?: string }[] = [];
    modem.onUrc((u) => {
      if (u.line.startsWith('+CDS:')) reports.push(u);
    });
    const [sent] = await modem.send(encodeSubmit({ to: '+79161234567', text: 'report me', report: true }).parts);
    await waitFor(() => reports.length === 1);
    expect(decodePdu(reports[0]!.pdu!)).toMatchObject({
      type: 'status-report',
      reference: (sent as { reference: number }).reference,
      number: '+79161234567',
      status: 'delivered',
    });
  });
});

describe('inbox and USSD', () => {
  it('announces an incoming SMS with +CMTI, lists it from storage and deletes it', async () => {
    const s = await sim({ flavour: 'huawei', noise: true });
    const modem = await open(s);
    await modem.init();
    const urcs: string[] = [];
    modem.onUrc((u) => urcs.push(u.line));
    s.sim.modem(0).deliver('+79001234567', 'Входящее: код 4821');
    await waitFor(() => urcs.some((l) => l.startsWith('+CMTI:')));
    const stored = await modem.listMessages();
    expect(stored).toHaveLength(1);
    expect(decodePdu(stored[0]!.pdu)).toMatchObject({ type: 'deliver', number: '+79001234567', text: 'Входящее: код 4821' });
    await modem.deleteMessage(stored[0]!.memory, stored[0]!.index);
    expect(await modem.listMessages()).toEqual([]);
  });

  it('reads every stored message while a ZTE modem prints its status lines', async () => {
    const s = await sim({ flavour: 'zte', noise: true });
    const modem = await open(s);
    await modem.init();
    s.sim.modem(0).deliver('+79001234567', 'first');
    s.sim.modem(0).deliver('+79001234568', 'second');
    const texts = (await modem.listMessages()).map((m) => decodePdu(m.pdu).text);
    expect(texts).toEqual(['first', 'second']);
  });

  it('closes a USSD menu (status 1) so that the next request is not taken as a reply', async () => {
    const s = await sim({});
    const modem = await open(s);
    await modem.init();
    s.sim.modem(0).ussd.set('*111#', { text: '1 Balance 2 Tariff', status: 1 });
    expect(await modem.ussd('*111#')).toMatchObject({ status: 'action-required', text: '1 Balance 2 Tariff' });
    expect(s.sim.modem(0).ussdClosed).toBe(1);
  });

  it.each(['huawei', 'generic', 'zte'] as const)('reads a USSD balance answer (%s)', async (flavour) => {
    const s = await sim({ flavour });
    const modem = await open(s);
    await modem.init();
    s.sim.modem(0).ussd.set('*100#', flavour === 'generic' ? 'Balance 12.30 USD' : flavour === 'huawei' ? 'Balance: 99.50 EUR' : 'Баланс: 123,45 р.');
    const answer = await modem.ussd('*100#');
    expect(answer.status).toBe('done');
    expect(answer.text).toBe(flavour === 'generic' ? 'Balance 12.30 USD' : flavour === 'huawei' ? 'Balance: 99.50 EUR' : 'Баланс: 123,45 р.');
  });
});
