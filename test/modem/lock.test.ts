/** UUCP lock files: format, stale locks, other programs' locks, two names for one device. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lockNames, lockOwner, lockPort } from '../../modem/lock.js';
import { errorOf } from '../helpers/errors.js';

function dirs() {
  const root = mkdtempSync(join(tmpdir(), 'smsgate-lock-'));
  const device = join(root, 'ttyUSB3');
  writeFileSync(device, '');
  return { lockDir: root, device };
}

describe('lockPort', () => {
  it('writes our PID as ten ASCII characters and a newline, and removes the file on release', () => {
    const { lockDir, device } = dirs();
    const lock = lockPort(device, { lockDir });
    const file = join(lockDir, 'LCK..ttyUSB3');
    expect(readFileSync(file, 'latin1')).toBe(`${String(process.pid).padStart(10)}\n`);
    expect(lock.files).toEqual([file]);
    lock.release();
    lock.release();
    expect(existsSync(file)).toBe(false);
  });

  it("refuses a port whose lock file names a live process, Gammu's form included, and names it", () => {
    const { lockDir, device } = dirs();
    const sleeper = spawn('sleep', ['30']);
    try {
      writeFileSync(join(lockDir, 'LCK..ttyUSB3'), `${String(sleeper.pid).padStart(10)} gammu\n`);
      const error = errorOf(() => lockPort(device, { lockDir }));
      expect(error).toMatchObject({ code: 'PORT_LOCKED', retry: 'retry-other' });
      expect(error.message).toMatch(new RegExp(`in use by sleep \\(PID ${sleeper.pid}\\)`));
    } finally {
      sleeper.kill();
    }
  });

  it('removes a stale lock whose process is gone (ASCII and old binary forms) and takes the port', () => {
    for (const content of [`${String(999_999).padStart(10)}\n`, Buffer.from([0x3f, 0x42, 0x0f, 0x00])]) {
      const { lockDir, device } = dirs();
      writeFileSync(join(lockDir, 'LCK..ttyUSB3'), content);
      const lock = lockPort(device, { lockDir });
      expect(readFileSync(join(lockDir, 'LCK..ttyUSB3'), 'latin1').trim()).toBe(String(process.pid));
      lock.release();
    }
  });

  it('takes an unreadable lock file as held, unless it is older than a minute', () => {
    const { lockDir, device } = dirs();
    const file = join(lockDir, 'LCK..ttyUSB3');
    writeFileSync(file, '');
    expect(errorOf(() => lockPort(device, { lockDir })).code).toBe('PORT_LOCKED');
    const old = new Date(Date.now() - 120_000);
    utimesSync(file, old, old);
    lockPort(device, { lockDir }).release();
  });

  it('refuses a second owner in this process', () => {
    const { lockDir, device } = dirs();
    const lock = lockPort(device, { lockDir });
    expect(errorOf(() => lockPort(device, { lockDir })).message).toMatch(/already in use by this gateway/);
    lock.release();
    lockPort(device, { lockDir }).release();
  });

  it('says clearly when the lock directory cannot be written', () => {
    const { device } = dirs();
    expect(errorOf(() => lockPort(device, { lockDir: '/nonexistent/lock' })).message).toMatch(/cannot create the lock file/);
  });
});

describe('lockNames', () => {
  it('uses the name a program was given, plus the device name for a link to a device under /dev', () => {
    expect(lockNames('/dev/ttyUSB0')).toEqual(['LCK..ttyUSB0']);
    const { lockDir } = dirs();
    const link = join(lockDir, 'usb-Huawei_E3372-if00-port0');
    symlinkSync('/dev/null', link);
    expect(lockNames(link)).toEqual(['LCK..usb-Huawei_E3372-if00-port0', 'LCK..null']);
  });

  it('reports no owner for a missing lock file', () => {
    expect(lockOwner('/nonexistent/LCK..x')).toBeNull();
  });
});
