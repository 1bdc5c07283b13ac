/**
 * A throwaway MariaDB server (Debian's mariadb-server) for tests and benchmarks: its own data directory and a free
 * port on 127.0.0.1, started by whatever needs it and stopped after it. No mock stands in for it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import mysql from 'mysql2/promise';

export interface ThrowawayMariaDb {
  /** A URL for a new, empty database. */
  url(database: string): Promise<string>;
  stop(): Promise<void>;
}

/** The name the tests know it by. */
export type TestMariaDb = ThrowawayMariaDb;

/** The programs startMariaDb runs (Debian's mariadb-server). */
export const MARIADB_TOOLS = ['/usr/sbin/mariadbd', '/usr/bin/mariadb-install-db'] as const;

export async function startMariaDb(): Promise<ThrowawayMariaDb> {
  for (const tool of MARIADB_TOOLS) {
    if (!existsSync(tool)) throw new Error(`${tool} is missing: run "npm test" as root, its set-up installs mariadb-server`);
  }
  const root = mkdtempSync(join(tmpdir(), 'smsgate-mariadb-'));
  const data = join(root, 'data');
  mkdirSync(data);
  const asRoot = userInfo().uid === 0;
  const user = asRoot ? ['--user=mysql'] : [];
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'mysql'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'mysql'], { encoding: 'utf8' }).trim());
    chownSync(root, uid, gid);
    chownSync(data, uid, gid);
  }
  execFileSync('/usr/bin/mariadb-install-db', [...user, `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db'], {
    stdio: 'pipe',
  });
  const port = await freePort();
  const server: ChildProcess = spawn(
    '/usr/sbin/mariadbd',
    ['--no-defaults', ...user, `--datadir=${data}`, `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${join(root, 'mysqld.sock')}`, '--skip-log-bin'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const base = `mysql://root@127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const conn = await mysql.createConnection(base);
      await conn.end();
      break;
    } catch {
      if (i > 600 || server.exitCode !== null) throw new Error(`MariaDB did not start in 60 s: ${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url: async (database) => {
      const conn = await mysql.createConnection(base);
      await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await conn.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
      await conn.end();
      return `${base}/${database}`;
    },
    stop: async () => {
      if (server.exitCode === null) {
        const exited = new Promise((r) => server.once('exit', r));
        server.kill('SIGTERM');
        await exited;
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}
