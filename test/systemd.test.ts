/**
 * The service unit and the notify protocol: `systemd-analyze verify` finds nothing wrong with the unit, its
 * hardening rates as systemd-analyze security's "OK" or better, and a real `smsgate serve` speaks sd_notify to a
 * socket as systemd's would be: READY=1, WATCHDOG=1 while it is well, STOPPING=1 on SIGTERM, then a clean exit that
 * leaves no lock file behind.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemdNotifier } from '../server/systemd.js';
import { BIN, ROOT } from './helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'smsgate-systemd-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A datagram socket like systemd's notify socket; what it receives, line by line. Resolves once it listens. */
async function notifySocket(name: string): Promise<{ path: string; messages: () => string[]; stop: () => void }> {
  const path = join(tmp, `${name}.sock`);
  const out = join(tmp, `${name}.log`);
  writeFileSync(out, '');
  const receiver: ChildProcess = spawn('/usr/bin/python3', [
    '-c',
    `import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
f=open(sys.argv[2],'a')
while True:
    f.write(s.recv(4096).decode()+'\\n'); f.flush()`,
    path,
    out,
  ]);
  const stop = () => receiver.kill();
  try {
    await until(() => existsSync(path));
  } catch (error) {
    stop();
    throw error;
  }
  return { path, messages: () => readFileSync(out, 'utf8').split('\n').filter(Boolean), stop };
}

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('systemd/smsgate.service', () => {
  const prefix = join(tmp, 'opt');
  mkdirSync(join(prefix, 'bin'), { recursive: true });
  symlinkSync(BIN, join(prefix, 'bin', 'smsgate'));
  const unit = join(tmp, 'smsgate.service');
  writeFileSync(unit, readFileSync(join(ROOT, 'systemd', 'smsgate.service'), 'utf8').replaceAll('@PREFIX@', prefix));

  it('passes systemd-analyze verify without a word', () => {
    const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.stderr.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('is hardened: systemd-analyze security rates its exposure 3.0 or lower (OK)', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', unit], { encoding: 'utf8' });
    const m = /Overall exposure level for smsgate\.service: (\d+\.\d+)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(3.0);
  });

  it('asks for dialout, the tty devices, the lock directory and a watchdog', () => {
    const text = readFileSync(unit, 'utf8');
    for (const line of ['Type=notify', 'WatchdogSec=30', 'Restart=on-failure', 'SupplementaryGroups=dialout', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'DevicePolicy=closed', 'DeviceAllow=char-ttyUSB rw']) {
      expect(text).toContain(`\n${line}\n`);
    }
    expect(text).toMatch(/\nReadWritePaths=.*\/var\/lib\/smsgate.*\/run\/lock/);
    expect(text).toMatch(/\nSystemCallFilter=@system-service\n/);
  });
});

describe('sd_notify', () => {
  it('pings the watchdog only while healthy', async () => {
    const socket = await notifySocket('unit');
    try {
      let healthy = true;
      const notifier = systemdNotifier({ ...process.env, NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '1000000' });
      notifier.notify('READY=1');
      notifier.startWatchdog(async () => healthy);
      await until(() => socket.messages().filter((m) => m === 'WATCHDOG=1').length >= 2);
      healthy = false;
      // A ping decided before the change may still be on its way: the count is taken once it holds still.
      const count = () => socket.messages().filter((m) => m === 'WATCHDOG=1').length;
      let pings = count();
      for (let before = -1; pings !== before; pings = count()) {
        before = pings;
        await new Promise((r) => setTimeout(r, 300));
      }
      await new Promise((r) => setTimeout(r, 1500));
      expect(socket.messages().filter((m) => m === 'WATCHDOG=1').length).toBe(pings);
      expect(socket.messages()[0]).toBe('READY=1');
      notifier.close();
    } finally {
      socket.stop();
    }
  });

  it('does nothing outside systemd', () => {
    const notifier = systemdNotifier({});
    notifier.notify('READY=1');
    notifier.startWatchdog(async () => true);
    notifier.close();
  });

  it('a real serve: READY=1, watchdog pings, STOPPING=1 on SIGTERM, exit 0, no lock file left', async () => {
    const socket = await notifySocket('serve');
    const data = join(tmp, 'data');
    const lockDir = join(tmp, 'lock');
    mkdirSync(lockDir, { recursive: true });
    const child = spawn(process.execPath, [BIN, 'serve', '--simulate', '1', '--sim-latency', '20', '--data', data, '--listen', '127.0.0.1:0', '--lock-dir', lockDir], {
      env: { ...process.env, NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '1000000' },
      stdio: 'ignore',
    });
    try {
      await until(() => socket.messages().includes('READY=1'));
      await until(() => socket.messages().filter((m) => m === 'WATCHDOG=1').length >= 2);
      expect(readdirSync(lockDir).some((f) => f.startsWith('LCK..'))).toBe(true);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await until(() => socket.messages().includes('STOPPING=1'), 5_000);
      expect(readdirSync(lockDir).filter((f) => f.startsWith('LCK..'))).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      socket.stop();
    }
  });

});
