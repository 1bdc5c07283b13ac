/**
 * A real OpenSSH server (Debian's openssh-server) on 127.0.0.1 for tests: its own host key, one authorised client
 * key, key authentication only, and its log kept so tests can count logins. Stopped after the tests.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

export interface TestSshd {
  host: string;
  port: number;
  username: string;
  clientKey: string;
  /** The host key's fingerprint as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  log(): string;
  stop(): Promise<void>;
}

export async function startSshd(): Promise<TestSshd> {
  if (!existsSync('/usr/sbin/sshd')) throw new Error('/usr/sbin/sshd is missing: run "npm test" as root, its set-up installs openssh-server');
  const dir = mkdtempSync(join(tmpdir(), 'smsgate-sshd-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_ed25519')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')));
  const fingerprint = execFileSync('ssh-keygen', ['-lf', join(dir, 'host_ed25519.pub')], { encoding: 'utf8' }).split(' ')[1]!;
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_ed25519')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      `PidFile ${join(dir, 'sshd.pid')}`,
      'LogLevel VERBOSE',
    ].join('\n') + '\n',
  );
  mkdirSync('/run/sshd', { recursive: true }); // its privilege-separation directory
  const server: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  for (let i = 0; !/Server listening on 127\.0\.0\.1/.test(log); i++) {
    if (i > 600 || server.exitCode !== null) throw new Error(`sshd did not start in 30 s: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: '127.0.0.1',
    port,
    username: userInfo().username,
    clientKey: readFileSync(join(dir, 'client'), 'utf8'),
    fingerprint,
    log: () => log,
    stop: async () => {
      if (server.exitCode === null) {
        const exited = new Promise((r) => server.once('exit', r));
        server.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
