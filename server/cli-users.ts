/**
 * `smsgate user …`, `smsgate token …` and `smsgate config …`: the admin's verbs for people and credentials, run
 * over SSH against the database the service uses (SQLite or MariaDB: --config FILE, --data DIR or --db URL).
 *
 *   user add NAME [--admin] [--password-stdin]     a new password is generated and printed unless one is piped in
 *   user passwd NAME [--password-stdin]
 *   user list [--json]
 *   user disable NAME | user enable NAME
 *   token create USER [--label L]                  the token is printed once
 *   token list [USER] [--json]
 *   token revoke ID
 *   config example | config check
 */
import { randomBytes } from 'node:crypto';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import type { Storage, User } from '../sql/storage.js';
import { checkUserName, keepAnAdmin } from './api.js';
import { hashPassword, newToken, passwordProblem, tokenHash } from './auth.js';
import { type CliIo, UsageError, parseDbVerb, configOf, withStorage } from './cli-common.js';
import { exampleConfig, parseListen } from './config.js';

const iso = (t: number | null) => (t === null ? '-' : new Date(t).toISOString().replace(/\.\d+Z$/, 'Z'));


function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`takes one ${what}`);
  return positionals[0]!;
}

async function userNamed(storage: Storage, name: string): Promise<User> {
  const user = await storage.getUserByName(name);
  if (!user) throw new SmsgateError(ErrorCodes.NotFound, `no user "${name}"`, 'name');
  return user;
}

/** The new password: piped in (first line), or generated and shown. */
function newPassword(fromStdin: boolean, io: CliIo): { password: string; generated: boolean } {
  if (!fromStdin) return { password: randomBytes(12).toString('base64url'), generated: true };
  const password = io.readStdin().split(/\r?\n/)[0] ?? '';
  const problem = passwordProblem(password);
  if (problem) throw new SmsgateError(ErrorCodes.BadMessage, problem, 'password');
  return { password, generated: false };
}

export async function user(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case 'add': {
      const { values, positionals } = parseDbVerb(rest, { admin: { type: 'boolean' }, 'password-stdin': { type: 'boolean' } });
      const name = one(positionals, 'NAME');
      checkUserName(name);
      const config = configOf(values);
      const { password, generated } = newPassword(values['password-stdin'] === true, io);
      const created = await withStorage(values, async (storage) =>
        storage.createUser({ name, passwordHash: await hashPassword(password, config.auth.bcryptCost), role: values.admin ? 'admin' : 'user' }),
      );
      io.stdout(`user ${created.name} (id ${created.id}, ${created.role}) created`);
      if (generated) io.stdout(`password: ${password}`);
      return 0;
    }
    case 'passwd': {
      const { values, positionals } = parseDbVerb(rest, { 'password-stdin': { type: 'boolean' } });
      const name = one(positionals, 'NAME');
      const config = configOf(values);
      const { password, generated } = newPassword(values['password-stdin'] === true, io);
      await withStorage(values, async (storage) => {
        const target = await userNamed(storage, name);
        await storage.updateUser(target.id, { passwordHash: await hashPassword(password, config.auth.bcryptCost) });
        await storage.revokeSessions(target.id);
      });
      io.stdout(`password of ${name} changed`);
      if (generated) io.stdout(`password: ${password}`);
      return 0;
    }
    case 'list': {
      const { values } = parseDbVerb(rest, { json: { type: 'boolean' } });
      const users = await withStorage(values, (storage) => storage.listUsers());
      if (values.json) {
        io.stdout(JSON.stringify(users.map((u) => ({ id: u.id, name: u.name, role: u.role, disabled: u.disabled, createdAt: u.createdAt }))));
        return 0;
      }
      io.stdout(`${'ID'.padEnd(5)} ${'NAME'.padEnd(24)} ${'ROLE'.padEnd(6)} ${'STATE'.padEnd(9)} CREATED`);
      for (const u of users) io.stdout(`${String(u.id).padEnd(5)} ${u.name.padEnd(24)} ${u.role.padEnd(6)} ${(u.disabled ? 'disabled' : 'active').padEnd(9)} ${iso(u.createdAt)}`);
      return 0;
    }
    case 'disable':
    case 'enable': {
      const { values, positionals } = parseDbVerb(rest, {});
      const name = one(positionals, 'NAME');
      await withStorage(values, async (storage) => {
        const target = await userNamed(storage, name);
        if (verb === 'disable') await keepAnAdmin(storage, target, { disabled: true }, 'name');
        await storage.updateUser(target.id, { disabled: verb === 'disable' });
      });
      io.stdout(`user ${name} ${verb}d`);
      return 0;
    }
    default:
      throw new UsageError(verb ? `unknown user command "${verb}" (add, passwd, list, disable, enable)` : 'user needs add, passwd, list, disable or enable');
  }
}

export async function token(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case 'create': {
      const { values, positionals } = parseDbVerb(rest, { label: { type: 'string' } });
      const name = one(positionals, 'USER');
      const label = typeof values.label === 'string' ? values.label : null;
      const value = newToken();
      const stored = await withStorage(values, async (storage) =>
        storage.createToken((await userNamed(storage, name)).id, tokenHash(value), label),
      );
      io.stderr(`token ${stored.id} for ${name} created; it is shown once (use it as: Authorization: Bearer <token>)`);
      io.stdout(value);
      return 0;
    }
    case 'list': {
      const { values, positionals } = parseDbVerb(rest, { json: { type: 'boolean' } });
      if (positionals.length > 1) throw new UsageError('token list takes at most one USER');
      const rows = await withStorage(values, async (storage) => {
        const users = positionals[0] ? [await userNamed(storage, positionals[0])] : await storage.listUsers();
        const out = [];
        for (const u of users) for (const t of await storage.listTokens(u.id)) if (t.expiresAt === null) out.push({ ...t, user: u.name });
        return out;
      });
      if (values.json) {
        io.stdout(JSON.stringify(rows));
        return 0;
      }
      io.stdout(`${'ID'.padEnd(5)} ${'USER'.padEnd(16)} ${'LABEL'.padEnd(20)} ${'CREATED'.padEnd(20)} ${'LAST USED'.padEnd(20)} REVOKED`);
      for (const t of rows) {
        io.stdout(`${String(t.id).padEnd(5)} ${t.user.padEnd(16)} ${(t.label ?? '-').padEnd(20)} ${iso(t.createdAt).padEnd(20)} ${iso(t.lastUsedAt).padEnd(20)} ${iso(t.revokedAt)}`);
      }
      return 0;
    }
    case 'revoke': {
      const { values, positionals } = parseDbVerb(rest, {});
      const idText = one(positionals, 'ID');
      if (!/^\d+$/.test(idText)) throw new UsageError(`token revoke takes a token id, got "${idText}"`);
      const done = await withStorage(values, (storage) => storage.revokeToken(Number(idText)));
      if (!done) throw new SmsgateError(ErrorCodes.NotFound, `no live token ${idText}`, 'id');
      io.stdout(`token ${idText} revoked`);
      return 0;
    }
    default:
      throw new UsageError(verb ? `unknown token command "${verb}" (create, list, revoke)` : 'token needs create, list or revoke');
  }
}

export async function config(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case 'example':
      if (rest.length > 0) throw new UsageError('config example takes no arguments');
      io.stdout(exampleConfig());
      return 0;
    case 'check': {
      const { values } = parseDbVerb(rest, {});
      const loaded = configOf(values);
      parseListen(loaded.listen);
      io.stdout(`configuration is valid${values.config ? ` (${values.config})` : ''}`);
      return 0;
    }
    default:
      throw new UsageError(verb ? `unknown config command "${verb}" (example, check)` : 'config needs example or check');
  }
}
