/**
 * install.sh for real, into a throw-away Debian 12 root that the test builds itself (debootstrap --variant=minbase,
 * the base kept as a tarball under /var/cache/smsgate-test so later runs start in seconds). The installer installs
 * its Debian packages in there, builds the app with npm, writes the config, the unit, the udev rules, the user and
 * the first admin. Then the installed command line serves and /health answers; the admin logs in with the printed
 * password; a second run changes nothing; --uninstall leaves nothing but the data directory.
 *
 * systemd is not PID 1 here, so the installer says it cannot start the service and the test runs the service's
 * own command line (ExecStart) as its user. Needs root (chroot, mounts) and Debian's debootstrap.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';
import { freePort } from './helpers/net.js';

const CACHE = process.env.SMSGATE_TEST_CACHE ?? '/var/cache/smsgate-test';
const BASE = join(CACHE, 'bookworm-minbase.tar');
let root: string;
const mounts: string[] = [];

function sh(command: string, args: string[], options: { input?: string; timeout?: number } = {}): { status: number; out: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', input: options.input, timeout: options.timeout ?? 60_000, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** A command in the root with the clean environment of a root login there (nothing of this test's npm or vitest). */
const CLEAN_ENV = ['/usr/bin/env', '-i', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8', 'TERM=dumb'];

function inRoot(args: string[], timeout = 60_000): { status: number; out: string } {
  return sh('chroot', [root, ...CLEAN_ENV, ...args], { timeout });
}

function mount(args: string[], target: string): void {
  mkdirSync(target, { recursive: true });
  execFileSync('mount', [...args, target]);
  mounts.unshift(target);
}

/** Every installed file with its mode, owner and content hash (symlinks by target). */
function manifest(paths: string[]): string[] {
  const out: string[] = [];
  const walk = (path: string) => {
    if (!existsSync(path) && !isLink(path)) return;
    const st = lstatSync(path);
    if (st.isSymbolicLink()) out.push(`${path} -> ${readlinkSync(path)}`);
    else if (st.isDirectory()) {
      out.push(`${path}/ ${st.mode.toString(8)} ${st.uid}:${st.gid}`);
      for (const name of readdirSync(path).sort()) walk(join(path, name));
    } else out.push(`${path} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`);
  };
  for (const p of paths) walk(join(root, p));
  return out;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

const INSTALLED = ['opt/smsgate', 'etc/smsgate', 'etc/systemd/system/smsgate.service', 'etc/udev/rules.d/77-smsgate.rules', 'usr/local/bin/smsgate'];
let firstRun = '';

/** Mount points at or under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((target) => target === dir || target.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** A root an earlier, killed run left behind: its mounts undone first, then removed. */
function removeStaleRoots(): void {
  const base = realpathSync(tmpdir());
  for (const name of readdirSync(base).filter((n) => n.startsWith('smsgate-install-root-'))) {
    const dir = join(base, name);
    for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m]);
    if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(() => {
  if (userInfo().uid !== 0) throw new Error('the installer test needs root (chroot and mounts): run npm test as root');
  if (!existsSync('/usr/sbin/debootstrap')) throw new Error('debootstrap is missing: apt-get install debootstrap (test/prerequisites.sh does)');
  removeStaleRoots();
  mkdirSync(join(CACHE, 'apt'), { recursive: true });
  mkdirSync(join(CACHE, 'debootstrap'), { recursive: true });
  if (!existsSync(BASE)) {
    const build = mkdtempSync(join(tmpdir(), 'smsgate-debootstrap-'));
    const r = sh('debootstrap', ['--variant=minbase', `--cache-dir=${join(CACHE, 'debootstrap')}`, 'bookworm', build, 'http://deb.debian.org/debian'], { timeout: 900_000 });
    if (r.status !== 0) throw new Error(`debootstrap failed: ${r.out.slice(-2000)}`);
    execFileSync('tar', ['-cf', `${BASE}.part`, '-C', build, '.']);
    execFileSync('mv', [`${BASE}.part`, BASE]);
    rmSync(build, { recursive: true, force: true });
  }
  root = realpathSync(mkdtempSync(join(tmpdir(), 'smsgate-install-root-')));
  execFileSync('tar', ['-xf', BASE, '-C', root]);
  // A root directory, as "/" is: everyone may enter it (mkdtemp made it 0700).
  chmodSync(root, 0o755);
  // The box's Node (the installer finds it on PATH, as on a box that has one), its resolver, the project's files.
  cpSync(process.execPath, join(root, 'usr/local/bin/node'));
  const npmDir = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  if (!existsSync(npmDir)) throw new Error(`npm not found at ${npmDir}`);
  cpSync(npmDir, join(root, 'usr/local/lib/node_modules/npm'), { recursive: true });
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
  // Its headers, as a Node installation has them (native modules build against them without a download).
  const headers = join(dirname(process.execPath), '..', 'include', 'node');
  if (existsSync(join(headers, 'node.h'))) cpSync(headers, join(root, 'usr/local/include/node'), { recursive: true });
  cpSync('/etc/resolv.conf', join(root, 'etc/resolv.conf'), { dereference: true });
  // The local certificate authorities of this machine (a TLS-inspecting proxy's, say), as its admin would add them.
  if (existsSync('/usr/local/share/ca-certificates')) {
    cpSync('/usr/local/share/ca-certificates', join(root, 'usr/local/share/ca-certificates'), { recursive: true });
  }
  mkdirSync(join(root, 'root/src'), { recursive: true });
  execFileSync('sh', ['-c', `git -C "${ROOT}" ls-files -z | xargs -0 tar -cf - -C "${ROOT}" | tar -xf - -C "${join(root, 'root/src')}"`]);
  mount(['-t', 'proc', 'proc'], join(root, 'proc'));
  // A /dev of its own (not the host's: no real modem is in reach, and nothing of the host's /dev can be removed).
  mount(['-t', 'tmpfs', '-o', 'mode=0755,nosuid', 'tmpfs'], join(root, 'dev'));
  for (const [name, major, minor] of [['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0]] as const) {
    execFileSync('mknod', ['-m', '0666', join(root, 'dev', name), 'c', String(major), String(minor)]);
  }
  mount(['-t', 'devpts', '-o', 'newinstance,ptmxmode=0666,mode=0620', 'devpts'], join(root, 'dev/pts'));
  symlinkSync('pts/ptmx', join(root, 'dev/ptmx'));
  mount(['--bind', join(CACHE, 'apt')], join(root, 'var/cache/apt/archives'));
}, 900_000);

afterAll(() => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  if (!root) return;
  // Never delete through a mount that is still there: only a root with no mount under it goes.
  const stillMounted = mountsUnder(root);
  if (stillMounted.length > 0) throw new Error(`not removing ${root}: still mounted: ${stillMounted.join(', ')}`);
  rmSync(root, { recursive: true, force: true });
});

describe('install.sh into a fresh Debian 12 root', () => {
  it('installs: packages, app, user, config, unit, udev rules, first admin', () => {
    const r = inRoot(['/root/src/install.sh'], 1_500_000);
    firstRun = r.out;
    expect(r.status, r.out.slice(-3000)).toBe(0);
    expect(r.out).toMatch(/created the system user 'smsgate'/);
    expect(r.out).toMatch(/systemd is not running here/);
    expect(r.out).toMatch(/log in as 'admin' with the password: \S+/);
    expect(existsSync(join(root, 'opt/smsgate/app/dist/server/smsgate.js'))).toBe(true);
    expect(existsSync(join(root, 'opt/smsgate/app/node_modules/typescript'))).toBe(false);
    const config = statSync(join(root, 'etc/smsgate/smsgate.toml'));
    expect((config.mode & 0o777).toString(8)).toBe('640');
    expect(readFileSync(join(root, 'etc/smsgate/smsgate.toml'), 'utf8')).toMatch(/^data_dir = "\/var\/lib\/smsgate"$/m);
    expect(inRoot(['id', '-nG', 'smsgate']).out).toMatch(/\bdialout\b/);
    const unit = readFileSync(join(root, 'etc/systemd/system/smsgate.service'), 'utf8');
    expect(unit).toContain('ExecStart=/opt/smsgate/bin/smsgate serve --config /etc/smsgate/smsgate.toml');
    expect(readFileSync(join(root, 'etc/udev/rules.d/77-smsgate.rules'), 'utf8')).toContain('ENV{ID_MM_DEVICE_IGNORE}="1"');
    expect(inRoot(['sh', '-n', '/opt/smsgate/bin/smsgate']).status).toBe(0);
  }, 1_600_000);

  it("the service's command line serves a healthy /health, and the printed admin can log in", async () => {
    const password = /log in as 'admin' with the password: (\S+)/.exec(firstRun)![1]!;
    const port = await freePort();
    const child: ChildProcess = spawn('chroot', [root, ...CLEAN_ENV, 'runuser', '-u', 'smsgate', '--', '/opt/smsgate/bin/smsgate', 'serve', '--config', '/etc/smsgate/smsgate.toml', '--listen', `127.0.0.1:${port}`], {
      stdio: 'ignore',
    });
    try {
      const url = `http://127.0.0.1:${port}`;
      let health: Response | null = null;
      for (let i = 0; i < 300 && !health; i++) {
        health = await fetch(`${url}/health`).catch(() => null);
        if (!health) await new Promise((r) => setTimeout(r, 100));
      }
      expect(health?.status).toBe(200);
      expect(((await health!.json()) as { status: string }).status).toBe('ok');
      const login = await fetch(`${url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'admin', password }) });
      expect(login.status).toBe(200);
      // The admin command works as root on the service's database (it runs as the service user).
      const status = inRoot(['/usr/local/bin/smsgate', 'user', 'list']);
      expect(status.out).toMatch(/admin\s+admin\s+active/);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    // Files the service made in its data directory are its own.
    for (const name of readdirSync(join(root, 'var/lib/smsgate'))) {
      expect(statSync(join(root, 'var/lib/smsgate', name)).uid, name).toBe(Number(inRoot(['id', '-u', 'smsgate']).out.trim()));
    }
  }, 60_000);

  it('a second run changes nothing', () => {
    const before = manifest(INSTALLED);
    const r = inRoot(['/root/src/install.sh'], 600_000);
    expect(r.status, r.out.slice(-3000)).toBe(0);
    expect(r.out).toMatch(/the app under \/opt\/smsgate\/app is up to date/);
    expect(r.out).toMatch(/kept the existing \/etc\/smsgate\/smsgate.toml/);
    expect(r.out).not.toMatch(/password:/);
    expect(manifest(INSTALLED)).toEqual(before);
  }, 900_000);

  it('--help, a wrong option, and a prefix that is not its own', () => {
    expect(inRoot(['/root/src/install.sh', '--help'])).toMatchObject({ status: 0 });
    expect(inRoot(['/root/src/install.sh', '--frobnicate']).status).toBe(1);
    const shared = inRoot(['/root/src/install.sh', '--prefix', '/usr/local']);
    expect(shared.status).toBe(1);
    expect(shared.out).toMatch(/--prefix must be a directory of its own named smsgate/);
  });

  it('--uninstall leaves nothing but the data directory, and says so', () => {
    const r = inRoot(['/root/src/install.sh', '--uninstall']);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/kept the data directory \/var\/lib\/smsgate/);
    for (const p of INSTALLED) expect(existsSync(join(root, p)) || isLink(join(root, p)), p).toBe(false);
    expect(existsSync(join(root, 'var/lib/smsgate/smsgate.db'))).toBe(true);
    expect(inRoot(['id', 'smsgate']).status).not.toBe(0);
  }, 120_000);
});
