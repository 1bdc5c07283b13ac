/** The modem verbs of `smsgate` as a user runs them: simulate, identify, probe, sendsms. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSendsms } from '../server/cli-modem.js';
import { BIN, runCli } from './helpers/cli.js';
import { simControl } from './helpers/sim.js';

interface SimInfo {
  dir: string;
  network: string;
  control: string;
  modems: { imei: string; imsi: string; iccid: string; ports: { path: string; at: boolean }[] }[];
}

let root: string;
let lockDir: string;
let child: ChildProcess;
let info: SimInfo;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'smsgate-cli-'));
  lockDir = join(root, 'lock');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(lockDir);
  const first = String(3000 + (process.pid % 500) * 10);
  child = spawn(process.execPath, [BIN, 'simulate', '--dir', join(root, 'dev'), '--ports', '3', '--at-ports', '0,2', '--latency', '5', '--flavour', 'quectel', '--first', first]);
  info = await new Promise<SimInfo>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as SimInfo);
    });
    child.once('exit', (code) => reject(new Error(`simulate exited with ${code}`)));
  });
});

afterAll(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  rmSync(root, { recursive: true, force: true });
});

const control = (request: object) => simControl(info.control, request);

/** runCli blocks this process; the simulator is a separate process, so that is fine here. */
const cli = (...args: string[]) => runCli([...args, '--lock-dir', lockDir]);

describe('smsgate simulate', () => {
  it('prints its modems, ports and files as JSON and makes the AT ports answer', () => {
    expect(info.modems).toHaveLength(1);
    expect(info.modems[0]!.ports.map((p) => p.at)).toEqual([true, false, true]);
    expect(info.network).toBe(join(root, 'dev', 'network.jsonl'));
  });
});

describe('smsgate identify', () => {
  it('prints the modem and SIM as JSON', () => {
    const { status, stdout, stderr } = cli('identify', '--port', info.modems[0]!.ports[0]!.path);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      port: info.modems[0]!.ports[0]!.path,
      manufacturer: 'Quectel',
      model: 'EC25',
      revision: 'EC25EFAR06A08M4G',
      imei: info.modems[0]!.imei,
      imsi: info.modems[0]!.imsi,
      iccid: info.modems[0]!.iccid,
      number: expect.stringMatching(/^\+7916\d{7}$/),
      operator: 'MegaFon',
      registration: 'home',
      signal: -73,
      rssi: 20,
    });
  });

  it('fails in one line, status 1, on a silent port', () => {
    const result = cli('identify', '--port', info.modems[0]!.ports[1]!.path);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^smsgate: identify: .*no answer to AT.*\[AT_TIMEOUT\]\n$/);
  });
});

describe('smsgate probe', () => {
  it('lists the modem with its two AT ports, and the silent one', () => {
    const { status, stdout } = cli('probe', '--glob', join(root, 'dev', 'ttyUSB*'), '--json');
    expect(status).toBe(0);
    const report = JSON.parse(stdout) as { modems: { imei: string; ports: string[] }[]; silent: string[] };
    expect(report.modems.map((m) => [m.imei, m.ports])).toEqual([[info.modems[0]!.imei, [info.modems[0]!.ports[0]!.path, info.modems[0]!.ports[2]!.path]]]);
    expect(report.silent).toEqual([info.modems[0]!.ports[1]!.path]);
    const text = cli('probe', '--glob', join(root, 'dev', 'ttyUSB*'));
    expect(text.stdout).toContain(`IMEI ${info.modems[0]!.imei}`);
  });
});

describe('smsgate sendsms (Gammu-compatible)', () => {
  it('sends every part, prints the references, exits 0', () => {
    const { status, stdout, stderr } = cli('sendsms', 'TEXT', '+79161234567', '-unicode', '-autolen', '5', '-flash', '-text', 'Тест '.repeat(20), '--port', info.modems[0]!.ports[2]!.path);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout).toMatch(/^Sending SMS 1\/2\.+waiting for network answer\.\.OK, message reference=\d+\nSending SMS 2\/2.*reference=\d+\n$/);
  });

  it('fails with the modem error code, its meaning and class in one line', async () => {
    expect((await control({ op: 'fault', modem: 0, fault: { type: 'cms', code: 42 } })).ok).toBe(true);
    const result = cli('sendsms', 'TEXT', '+79161234567', '-text', 'congested', '--port', info.modems[0]!.ports[0]!.path);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('smsgate: sendsms: part 1/1 not sent: AT+CMGS=22: +CMS ERROR 42: congestion (retry-same) [AT_CMS]\n');
  });

  it('reads the text from stdin when -text is absent', () => {
    const result = runCli(['sendsms', 'TEXT', '+79161234567', '--port', info.modems[0]!.ports[0]!.path, '--lock-dir', lockDir], 'from stdin\n');
    expect(result.status).toBe(0);
  });

  it.each([
    [['TEXT'], /needs the recipient number/],
    [['TEXT', '+7916'], /needs --port P or -s N/],
    [['EMS', '+7916', '--port', 'x'], /supports the TEXT message type/],
    [['TEXT', '+7916', '--port', 'x', '-bogus'], /unknown option "-bogus"/],
    [['TEXT', '+7916', '--port', 'x', '-validity', 'FORTNIGHT'], /-validity/],
  ])('refuses %j with status 2', (args, message) => {
    const result = cli('sendsms', ...args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it("maps Gammu's options", () => {
    expect(parseSendsms(['TEXT', '123', '-validity', 'DAY', '-replacemessages', '3', '-report', '-16bit', '-len', '10', '-s', '1'])).toMatchObject({
      number: '123',
      validity: 1440,
      replace: 3,
      report: true,
      concat16: true,
      len: 10,
      section: 1,
    });
  });
});
