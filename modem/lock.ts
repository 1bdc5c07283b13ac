/**
 * Channel locks: one owner per serial port, across this process and across programs.
 *
 * Theory of operation. Inside the process a registry of locked device paths keeps two channels of ours off one
 * port. Across programs we use UUCP lock files, as Gammu (with UseLocking), minicom, cu and ModemManager do:
 * `/var/lock/LCK..<name>` holding the owner's PID as ten ASCII characters and a newline (the HDB UUCP form; Gammu
 * adds its name after the PID, which readers ignore). <name>
 * is the basename of the path the program was given, so a port opened as `/dev/serial/by-id/usb-…-if00` and as
 * `/dev/ttyUSB0` would be two names for one device: we take the lock under both the given name and, when the path
 * is a link to a device directly under /dev, the device's own name. A lock file whose PID is dead is stale and is
 * removed; one whose content cannot be read is taken as held (it may be half written this instant) unless it is
 * older than a minute. Files are created with O_EXCL, so two programs can never both win.
 */
import { closeSync, constants, openSync, readFileSync, realpathSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { ErrorCodes, SmsgateError } from './errors.js';

export const DEFAULT_LOCK_DIR = '/var/lock';

export interface PortLock {
  readonly path: string;
  readonly files: string[];
  /** Idempotent. */
  release(): void;
}

const held = new Map<string, string>();

/** The lock files for a device path: its own name and, for a link to a device under /dev, the device's name. */
export function lockNames(devicePath: string): string[] {
  const names = [basename(devicePath)];
  try {
    const real = realpathSync(devicePath);
    if (dirname(real) === '/dev' && !names.includes(basename(real))) names.push(basename(real));
  } catch {
    // a path that does not exist (yet) has just its own name
  }
  return names.map((n) => `LCK..${n}`);
}

/** Who holds a lock file: the PID and, when readable, the program's name; null when the lock is stale. */
export function lockOwner(file: string): { pid: number | null; program: string | null } | null {
  let content: Buffer;
  try {
    content = readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  // HDB form: the PID in ASCII, which Gammu follows with its name ("     18104 gammu"); old binary form: 4 bytes.
  const text = content.toString('latin1');
  const ascii = /^\s*(\d+)/.exec(text);
  const pid = ascii ? Number(ascii[1]) : content.length === 4 ? content.readInt32LE(0) : NaN;
  if (!Number.isInteger(pid) || pid <= 0) {
    const age = Date.now() - statSync(file).mtimeMs;
    return age > 60_000 ? null : { pid: null, program: null };
  }
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return null;
  }
  let program: string | null = null;
  try {
    program = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    // not Linux, or gone this instant
  }
  return { pid, program };
}

/** Takes the lock of `devicePath` or throws PORT_LOCKED naming the holder. */
export function lockPort(devicePath: string, options: { lockDir?: string } = {}): PortLock {
  const key = resolvePath(devicePath);
  const holder = held.get(key);
  if (holder !== undefined) {
    throw new SmsgateError(ErrorCodes.PortLocked, `${devicePath}: already in use by this gateway (${holder})`, { retry: 'retry-other' });
  }
  const dir = options.lockDir ?? DEFAULT_LOCK_DIR;
  const taken: string[] = [];
  const release = () => {
    for (const file of taken.splice(0)) removeIfOurs(file);
    if (held.get(key) === devicePath) held.delete(key);
  };
  try {
    for (const name of lockNames(devicePath)) {
      const file = resolve(dir, name);
      createLockFile(file, devicePath);
      taken.push(file);
    }
  } catch (error) {
    release();
    throw error;
  }
  held.set(key, devicePath);
  let released = false;
  return {
    path: devicePath,
    files: [...taken],
    release: () => {
      if (released) return;
      released = true;
      release();
    },
  };
}

function createLockFile(file: string, devicePath: string): void {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      try {
        writeSync(fd, `${String(process.pid).padStart(10)}\n`);
      } finally {
        closeSync(fd);
      }
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES' || code === 'EROFS') {
        throw new SmsgateError(ErrorCodes.PortLocked, `${devicePath}: cannot create the lock file ${file}: ${(error as Error).message}`, {
          retry: 'retry-other',
        });
      }
      if (code !== 'EEXIST') throw error;
      const seen = inodeOf(file);
      const owner = lockOwner(file);
      if (owner === null) {
        // Stale: its owner is dead. Remove it — but only the very file we judged: if another program replaced it
        // with a fresh lock meanwhile (a new inode), that one stands.
        try {
          if (seen !== null && inodeOf(file) === seen) unlinkSync(file);
        } catch {
          // someone else removed it first
        }
        continue;
      }
      const who = owner.pid === null ? 'another program' : `${owner.program ?? 'process'} (PID ${owner.pid})`;
      throw new SmsgateError(ErrorCodes.PortLocked, `${devicePath}: in use by ${who}, lock file ${file}`, { retry: 'retry-other' });
    }
  }
  throw new SmsgateError(ErrorCodes.PortLocked, `${devicePath}: could not take the lock file ${file}`, { retry: 'retry-other' });
}

function inodeOf(file: string): number | null {
  try {
    return statSync(file).ino;
  } catch {
    return null;
  }
}

function removeIfOurs(file: string): void {
  try {
    if (Number(readFileSync(file, 'latin1').trim()) === process.pid) unlinkSync(file);
  } catch {
    // already gone
  }
}

function resolvePath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}
