/** `smsgate user …` and `smsgate token …` on a real database file, as an admin runs them over SSH. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenHash } from '../server/auth.js';
import { defaultDbUrl, openStorage } from '../sql/index.js';
import { runCli } from './helpers/cli.js';
import { type TestMariaDb, startMariaDb } from './helpers/mariadb.js';

const dir = mkdtempSync(join(tmpdir(), 'smsgate-cli-users-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const data = ['--data', dir];

async function withDb<T>(fn: (s: Awaited<ReturnType<typeof openStorage>>) => Promise<T>): Promise<T> {
  const storage = await openStorage(defaultDbUrl(dir));
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

describe('smsgate user', () => {
  it('add prints a generated password that is stored as a bcrypt hash', async () => {
    const r = runCli(['user', 'add', 'root', '--admin', ...data]);
    expect(r.status, r.stderr).toBe(0);
    const password = /password: (\S+)/.exec(r.stdout)![1]!;
    expect(password.length).toBeGreaterThanOrEqual(16);
    const user = await withDb((s) => s.getUserByName('root'));
    expect(user!.role).toBe('admin');
    expect(user!.passwordHash).toMatch(/^\$2b\$/);
    expect(await bcrypt.compare(password, user!.passwordHash)).toBe(true);
  });

  it('add with --password-stdin takes the piped password, and checks it', async () => {
    expect(runCli(['user', 'add', 'ann', '--password-stdin', ...data], 'correct horse\n')).toMatchObject({ status: 0 });
    expect(await bcrypt.compare('correct horse', (await withDb((s) => s.getUserByName('ann')))!.passwordHash)).toBe(true);
    const weak = runCli(['user', 'add', 'ben', '--password-stdin', ...data], 'short\n');
    expect(weak.status).toBe(1);
    expect(weak.stderr).toMatch(/at least 8 characters/);
    expect(await withDb((s) => s.getUserByName('ben'))).toBeNull();
  });

  it('refuses a taken name, a bad name and wrong usage with clear lines and exit codes', () => {
    const taken = runCli(['user', 'add', 'ann', ...data]);
    expect(taken.status).toBe(1);
    expect(taken.stderr).toMatch(/exists already \[CONFLICT\]/);
    expect(runCli(['user', 'add', 'a b', ...data]).status).toBe(1);
    expect(runCli(['user', 'add', ...data]).status).toBe(2);
    expect(runCli(['user', 'frobnicate', ...data]).status).toBe(2);
    expect(runCli(['user', 'add', 'x', '--bogus', ...data]).status).toBe(2);
  });

  it('passwd, list, disable and enable; the last admin cannot be disabled', async () => {
    const p = runCli(['user', 'passwd', 'ann', ...data]);
    expect(p.status).toBe(0);
    const password = /password: (\S+)/.exec(p.stdout)![1]!;
    expect(await bcrypt.compare(password, (await withDb((s) => s.getUserByName('ann')))!.passwordHash)).toBe(true);
    expect(runCli(['user', 'disable', 'ann', ...data]).status).toBe(0);
    const list = JSON.parse(runCli(['user', 'list', '--json', ...data]).stdout) as { name: string; disabled: boolean }[];
    expect(list.find((u) => u.name === 'ann')!.disabled).toBe(true);
    const table = runCli(['user', 'list', ...data]).stdout.split('\n');
    expect(table[0]).toMatch(/^ID\s+NAME\s+ROLE\s+STATE\s+CREATED/);
    expect(table.every((l) => l.length <= 80)).toBe(true);
    expect(runCli(['user', 'enable', 'ann', ...data]).status).toBe(0);
    const last = runCli(['user', 'disable', 'root', ...data]);
    expect(last.status).toBe(1);
    expect(last.stderr).toMatch(/last enabled admin/);
    expect(runCli(['user', 'passwd', 'nobody', ...data])).toMatchObject({ status: 1 });
  });
});

describe('smsgate token', () => {
  it('create prints the token once and stores only its hash; list and revoke', async () => {
    const r = runCli(['token', 'create', 'ann', '--label', 'billing', ...data]);
    expect(r.status, r.stderr).toBe(0);
    const token = r.stdout.trim();
    expect(token).toMatch(/^sg_[A-Za-z0-9_-]{43}$/);
    expect(r.stderr).toMatch(/shown once/);
    const found = await withDb((s) => s.findToken(tokenHash(token)));
    expect(found!.user.name).toBe('ann');
    expect(found!.token.label).toBe('billing');
    const listed = JSON.parse(runCli(['token', 'list', 'ann', '--json', ...data]).stdout) as { id: number; label: string }[];
    expect(listed.map((t) => t.label)).toEqual(['billing']);
    expect(JSON.stringify(listed)).not.toContain(token);
    expect(runCli(['token', 'revoke', String(listed[0]!.id), ...data]).status).toBe(0);
    expect(await withDb((s) => s.findToken(tokenHash(token)))).toBeNull();
    expect(runCli(['token', 'revoke', String(listed[0]!.id), ...data]).status).toBe(1);
    expect(runCli(['token', 'revoke', 'x', ...data]).status).toBe(2);
    expect(runCli(['token', 'create', 'ghost', ...data]).status).toBe(1);
  });
});

describe('--help on every verb', () => {
  it.each(['serve', 'user', 'token', 'status', 'sim', 'queue', 'send', 'box', 'config', 'pdu', 'identify', 'probe', 'sendsms', 'simulate'])('smsgate %s --help', (verb) => {
    const r = runCli([verb, '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: smsgate ${verb} `));
    expect(r.stdout.split('\n').filter((l) => l.startsWith(`  ${verb}`)).length).toBeGreaterThan(0);
  });
});

describe('user and token on MariaDB', () => {
  let mariadb: TestMariaDb;
  beforeAll(async () => {
    mariadb = await startMariaDb();
  }, 60_000);
  afterAll(async () => {
    await mariadb?.stop();
  });

  it('adds, lists, disables users and creates and revokes tokens there too', async () => {
    const url = await mariadb.url('smsgate_cli_users');
    const db = ['--db', url];
    expect(runCli(['user', 'add', 'ops', '--admin', '--password-stdin', ...db], 'a long password\n')).toMatchObject({ status: 0 });
    expect(runCli(['user', 'add', 'dev', ...db]).status).toBe(0);
    expect(runCli(['user', 'disable', 'dev', ...db]).status).toBe(0);
    const users = JSON.parse(runCli(['user', 'list', '--json', ...db]).stdout) as { name: string; role: string; disabled: boolean }[];
    expect(users.map((u) => [u.name, u.role, u.disabled])).toEqual([
      ['dev', 'user', true],
      ['ops', 'admin', false],
    ]);
    const token = runCli(['token', 'create', 'ops', ...db]).stdout.trim();
    const storage = await openStorage(url);
    try {
      expect((await storage.findToken(tokenHash(token)))!.user.name).toBe('ops');
      const [listed] = JSON.parse(runCli(['token', 'list', 'ops', '--json', ...db]).stdout) as { id: number }[];
      expect(runCli(['token', 'revoke', String(listed!.id), ...db]).status).toBe(0);
      expect(await storage.findToken(tokenHash(token))).toBeNull();
    } finally {
      await storage.close();
    }
  });
});
