/**
 * A whole gateway as the integration tests meet it: `startGateway` (HTTP on 127.0.0.1, dispatcher, callbacks) with
 * simulated modems on real ptys in a temporary data directory, users with passwords, API tokens, and the
 * simulator's record of what the network received (`DATA/sim/network.jsonl`, one record per part).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword, newToken, tokenHash } from '../../server/auth.js';
import { type Config, defaultConfig } from '../../server/config.js';
import { type Gateway, startGateway } from '../../server/gateway.js';
import type { Role, Storage, User } from '../../sql/storage.js';

/** One part as the simulated network received it. */
export interface NetworkRecord {
  to: string;
  text: string;
  imsi: string;
  report: boolean;
  concat: { ref: number; total: number; seq: number } | null;
}

export interface RunningGateway {
  gateway: Gateway;
  /** http://127.0.0.1:PORT */
  base: string;
  storage: Storage;
  dir: string;
  addUser(name: string, password: string, role?: Role): Promise<User>;
  /** A new API token for the user (as `smsgate token create` makes it). */
  addToken(user: User): Promise<string>;
  network(): NetworkRecord[];
  /** The records whose text is `text` (every part of a multipart text carries its own piece, so whole texts only). */
  received(text: string): NetworkRecord[];
  stop(): Promise<void>;
}

export async function startRunningGateway(tune: (config: Config) => void = () => undefined): Promise<RunningGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'smsgate-int-'));
  mkdirSync(join(dir, 'lock'));
  const config = defaultConfig();
  config.dataDir = dir;
  config.listen = '127.0.0.1:0';
  config.simulate = { modems: 2, latencyMs: 30 };
  config.modems.lockDir = join(dir, 'lock');
  config.auth.bcryptCost = 4;
  tune(config);
  let gateway: Gateway;
  try {
    gateway = await startGateway({ config, log: () => undefined });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const storage = gateway.services.storage;
  const network = (): NetworkRecord[] => {
    const file = join(dir, 'sim', 'network.jsonl');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as NetworkRecord);
  };
  return {
    gateway,
    base: gateway.url,
    storage,
    dir,
    addUser: async (name, password, role = 'user') => {
      const user = await storage.createUser({ name, passwordHash: await hashPassword(password, 4), role });
      // Every SIM is the user's, so messages of non-admins can go out too.
      for (const sim of await storage.listSims()) await storage.setSimOwners(sim.id, [...(await storage.simOwners(sim.id)), user.id]);
      return user;
    },
    addToken: async (user) => {
      const token = newToken();
      await storage.createToken(user.id, tokenHash(token), 'test');
      return token;
    },
    network,
    received: (text) => network().filter((r) => r.text === text),
    stop: async () => {
      await gateway.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` until `ok` holds for its value (default 15 s), then returns that value. */
export async function eventually<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`timed out; last value ${JSON.stringify(v)?.slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An answer read off the wire. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `request` byte for byte over one TCP connection to `base`'s host and port and reads one HTTP/1.1 answer
 * (by its Content-Length, or to the connection's end), so a test controls every header and every byte of the body.
 */
export function rawHttp(base: string, request: Buffer | string, ms = 10_000): Promise<RawAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no whole answer in time'));
    }, ms);
    const finish = (answer: RawAnswer) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const tryParse = (ended: boolean) => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return ended ? reject(new Error(`no HTTP answer: ${all.toString('latin1').slice(0, 200)}`)) : undefined;
      const [statusLine = '', ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
      const body = all.subarray(end + 4);
      const length = headers['content-length'] === undefined ? null : Number(headers['content-length']);
      if (length !== null && body.length >= length) finish({ status, headers, body: body.subarray(0, length).toString('utf8') });
      else if (ended) finish({ status, headers, body: body.toString('utf8') });
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.write(request);
  });
}
