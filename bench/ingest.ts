/**
 * HTTP ingest: how fast the gateway accepts messages into its durable queue. The real HTTP server (express, auth,
 * validation, storage) runs without a dispatcher, so nothing is sent and only acceptance is timed, once on SQLite (a
 * file in a temporary directory) and once on MariaDB (a throwaway server, bench/mariadb.ts). For each database:
 *
 * - `POST /api/v1/messages` with one recipient and a Bearer token, driven by autocannon at 1, 8 and 32 connections
 *   for --duration seconds each: requests per second (the mean of autocannon's per-second samples), latency p50 and
 *   p99, non-2xx answers and connection errors. Every request names a new recipient (+7916 and a 7-digit counter).
 * - The classic endpoint, `GET /smsc.php?login=…&pass=…&tel=…&msg=…`, at 8 connections: a password on every
 *   request, so this measures the verified-password cache rather than bcrypt.
 * - One `POST /api/v1/messages` with 1,000 recipients and one with 10,000, each 3 times in a row: the median time
 *   per request (until the whole answer is read) and messages per second (recipients / that time); each answer must
 *   be 201 with that many messages.
 * - A consistency check: the rows in the database against the messages the client saw accepted. A timed run ends
 *   by hanging up on the requests still in flight, which the server may still store; so stored may exceed accepted
 *   by at most the number of requests cut off that way (reported as cutOff), and never fall short of it.
 *
 * Before the reported runs, one second at 8 connections warms the server up (counted in the check, not reported).
 * The server runs in a worker thread of this process, so the load generator does not take turns with it on one
 * event loop. Numbers are measured in one run, on whatever machine runs it; nothing here asserts a speed. Prints the
 * results as JSON, writes them to bench/results/ingest.json, then prints a short table.
 *
 *   npm run bench:ingest -- [--duration 5] [--db sqlite|mariadb|both]
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, platform, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';
import { startServer } from '../server/app.js';
import { Authenticator, hashPassword, newToken, tokenHash } from '../server/auth.js';
import { defaultConfig } from '../server/config.js';
import { PROJECT_ROOT } from '../server/version.js';
import { openStorage } from '../sql/index.js';
import { MARIADB_TOOLS, startMariaDb } from './mariadb.js';

type Db = 'sqlite' | 'mariadb';

/** One measured scenario on one database. */
interface Scenario {
  db: Db;
  scenario: 'api-single' | 'classic-single' | 'api-bulk-1000' | 'api-bulk-10000';
  concurrency: number;
  recipientsPerRequest: number;
  /** Requests answered (a timed run), or made (a bulk one). */
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  messagesPerSecond: number;
  latencyP50Ms: number;
  /** null for the bulk runs: three requests have no 99th percentile (see timesMs). */
  latencyP99Ms: number | null;
  non2xx: number;
  errors: number;
  /** Each request's time, for the bulk runs. */
  timesMs?: number[];
}

/** Stored rows against accepted messages, for one database. */
interface Consistency {
  db: Db;
  /** Messages in the 2xx answers the client read (warm-up included). */
  accepted: number;
  /** Requests sent but not answered when a timed run stopped. */
  cutOff: number;
  /** Rows in the messages table once the server is idle. */
  stored: number;
  consistent: boolean;
}

/** What the server worker is started with. */
interface ServerData {
  dbUrl: string;
  password: string;
}

/** What the server worker says. */
type ServerMessage = { type: 'ready'; url: string; token: string } | { type: 'stored'; count: number };

const PASSWORD = 'bench-password';
const BULK_SIZES = [1000, 10_000] as const;
const BULK_REPEATS = 3;
const CONCURRENCIES = [1, 8, 32] as const;

// ---- the server (worker thread)

/**
 * Opens the storage, creates the bench user and its token, serves until told to finish, then waits for the
 * requests still in progress to be stored, answers the row count, and closes everything.
 */
async function serve({ dbUrl, password }: ServerData): Promise<void> {
  const port = parentPort!;
  const storage = await openStorage(dbUrl);
  const user = await storage.createUser({ name: 'bench', passwordHash: await hashPassword(password, 4), role: 'admin' });
  const token = newToken();
  await storage.createToken(user.id, tokenHash(token), 'bench');
  const config = defaultConfig();
  config.send.maxRecipients = 10_000;
  config.auth.bcryptCost = 4;
  const services = { storage, config, auth: new Authenticator(storage, config.auth) };
  const server = await startServer('127.0.0.1', 0, { services, log: () => undefined });
  const finish = new Promise<void>((resolve) => port.once('message', () => resolve()));
  port.postMessage({ type: 'ready', url: server.url, token } satisfies ServerMessage);
  await finish;
  const total = async () => Object.values(await storage.countByState()).reduce((a, b) => a + b, 0);
  // Requests the client hung up on may still be on their way into the database: wait until the count holds still.
  let count = await total();
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const next = await total();
    if (next === count) break;
    count = next;
  }
  await server.close();
  await storage.close();
  port.postMessage({ type: 'stored', count } satisfies ServerMessage);
}

/** The server worker, started and ready: finish() stops it and answers the row count; terminate() after a failure. */
async function startServerWorker(data: ServerData): Promise<{ url: string; token: string; finish(): Promise<number>; terminate(): Promise<number> }> {
  const worker = new Worker(new URL(import.meta.url), { workerData: data });
  const next = () =>
    new Promise<ServerMessage>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      const onExit = (code: number) => reject(new Error(`the server worker exited (${code}) early`));
      worker.once('error', onError);
      worker.once('exit', onExit);
      worker.once('message', (m: ServerMessage) => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        resolve(m);
      });
    });
  const ready = await next();
  if (ready.type !== 'ready') throw new Error(`the server worker said ${ready.type} first`);
  return {
    url: ready.url,
    token: ready.token,
    finish: async () => {
      const exited = new Promise((r) => worker.once('exit', r));
      const stored = next();
      worker.postMessage('finish');
      const answer = await stored;
      if (answer.type !== 'stored') throw new Error(`the server worker said ${answer.type} at the end`);
      await exited;
      return answer.count;
    },
    terminate: () => worker.terminate(),
  };
}

// ---- the load (main thread)

/** Distinct valid recipients: +7916 and a 7-digit counter. */
function recipients(): () => string {
  let n = 0;
  return () => `+7916${String(n++).padStart(7, '0')}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const round = (x: number, digits = 1) => Number(x.toFixed(digits));

/** What a timed run adds to the consistency check. */
interface Tally {
  accepted: number;
  cutOff: number;
}

/** An autocannon run and each answer's latency in ms (autocannon's own histogram keeps whole milliseconds). */
interface Run {
  result: autocannon.Result;
  latencies: number[];
}

/**
 * One timed autocannon run of `request` (rebuilt before every request) at `connections`; `okStatus` is the status
 * every answer must have, one message each.
 */
async function timed(url: string, connections: number, seconds: number, request: autocannon.Request, okStatus: number, tally: Tally): Promise<Run> {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({ url, connections, duration: seconds, requests: [request] }, (error: unknown, r) => (error ? reject(error) : resolve(r)));
    instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  });
  const byStatus = Object.entries(result.statusCodeStats ?? {}).map(([status, s]) => [Number(status), s.count ?? 0] as const);
  const answered = byStatus.reduce((a, [, n]) => a + n, 0);
  const ok = byStatus.filter(([status]) => status === okStatus).reduce((a, [, n]) => a + n, 0);
  const other = byStatus.filter(([status]) => status !== okStatus && status >= 200 && status < 300);
  if (other.length) console.error(`  ${other.map(([s, n]) => `${n} answers ${s}`).join(', ')} (expected ${okStatus})`);
  tally.accepted += byStatus.filter(([status]) => status >= 200 && status < 300).reduce((a, [, n]) => a + n, 0);
  tally.cutOff += Math.max(0, result.requests.sent - answered);
  if (ok !== answered) console.error(`  only ${ok} of ${answered} answers were ${okStatus}`);
  return { result, latencies };
}

function fromRun(db: Db, scenario: Scenario['scenario'], connections: number, { result, latencies }: Run): Scenario {
  return {
    db,
    scenario,
    concurrency: connections,
    recipientsPerRequest: 1,
    requests: result['2xx'] + result.non2xx,
    seconds: result.duration,
    requestsPerSecond: round(result.requests.mean),
    messagesPerSecond: round(result.requests.mean),
    latencyP50Ms: round(percentile(latencies, 50), 2),
    latencyP99Ms: round(percentile(latencies, 99), 2),
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** `size` recipients in one request, BULK_REPEATS times; every answer must be 201 with `size` messages. */
async function bulk(db: Db, url: string, token: string, size: number, next: () => string, tally: Tally): Promise<Scenario> {
  const times: number[] = [];
  let non2xx = 0;
  for (let i = 0; i < BULK_REPEATS; i++) {
    const body = JSON.stringify({ to: Array.from({ length: size }, next), text: 'bench' });
    const started = performance.now();
    const res = await fetch(`${url}/api/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });
    const answer = (await res.json()) as { messages?: unknown[] };
    times.push(performance.now() - started);
    const count = answer.messages?.length ?? 0;
    if (res.ok) tally.accepted += count;
    else non2xx++;
    if (res.status !== 201 || count !== size) console.error(`  bulk ${size}: answer ${res.status} with ${count} messages (expected 201 with ${size})`);
  }
  const ms = median(times);
  return {
    db,
    scenario: size === 1000 ? 'api-bulk-1000' : 'api-bulk-10000',
    concurrency: 1,
    recipientsPerRequest: size,
    requests: BULK_REPEATS,
    seconds: round(times.reduce((a, b) => a + b, 0) / 1000, 3),
    requestsPerSecond: round(1000 / ms, 2),
    messagesPerSecond: round((size * 1000) / ms),
    latencyP50Ms: round(ms),
    latencyP99Ms: null,
    non2xx,
    errors: 0,
    timesMs: times.map((t) => round(t)),
  };
}

/** Every scenario against a server on `dbUrl`, then the consistency check. */
async function measure(db: Db, dbUrl: string, seconds: number): Promise<{ scenarios: Scenario[]; consistency: Consistency }> {
  const server = await startServerWorker({ dbUrl, password: PASSWORD });
  const next = recipients();
  const tally: Tally = { accepted: 0, cutOff: 0 };
  const scenarios: Scenario[] = [];
  const api: autocannon.Request = {
    method: 'POST',
    path: '/api/v1/messages',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    setupRequest: (request) => ({ ...request, body: JSON.stringify({ to: next(), text: 'bench' }) }),
  };
  const classic: autocannon.Request = {
    method: 'GET',
    setupRequest: (request) => ({ ...request, path: `/smsc.php?login=bench&pass=${encodeURIComponent(PASSWORD)}&tel=${encodeURIComponent(next())}&msg=bench` }),
  };
  const progress = (what: string) => process.stderr.write(`${db}: ${what}\n`);

  try {
    progress('warm-up, 1 s at 8 connections');
    await timed(server.url, 8, 1, api, 201, tally);
    for (const c of CONCURRENCIES) {
      progress(`api single, ${c} connections, ${seconds} s`);
      scenarios.push(fromRun(db, 'api-single', c, await timed(server.url, c, seconds, api, 201, tally)));
    }
    progress(`classic single, 8 connections, ${seconds} s`);
    scenarios.push(fromRun(db, 'classic-single', 8, await timed(server.url, 8, seconds, classic, 200, tally)));
    for (const size of BULK_SIZES) {
      progress(`api bulk, ${size} recipients x ${BULK_REPEATS}`);
      scenarios.push(await bulk(db, server.url, server.token, size, next, tally));
    }
  } catch (error) {
    // Without this the server's thread would keep the process alive after the error.
    await server.terminate();
    throw error;
  }
  const stored = await server.finish();
  const consistent = stored >= tally.accepted && stored <= tally.accepted + tally.cutOff;
  const consistency: Consistency = { db, accepted: tally.accepted, cutOff: tally.cutOff, stored, consistent };
  progress(
    `stored ${stored}, accepted ${tally.accepted}, cut off in flight ${tally.cutOff}: ${consistent ? 'consistent' : 'INCONSISTENT'}` +
      (stored === tally.accepted ? ' (stored == accepted)' : ` (${stored - tally.accepted} stored after the client hung up)`),
  );
  return { scenarios, consistency };
}

async function sqlite(seconds: number) {
  const root = mkdtempSync(join(tmpdir(), 'smsgate-bench-ingest-'));
  try {
    return await measure('sqlite', `sqlite:${join(root, 'bench.db')}`, seconds);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function mariadb(seconds: number) {
  const server = await startMariaDb();
  try {
    return await measure('mariadb', await server.url('smsgate_bench'), seconds);
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { duration: { type: 'string' }, db: { type: 'string' } } });
  const seconds = Number(values.duration ?? 5);
  const which = values.db ?? 'both';
  if (!Number.isInteger(seconds) || seconds < 1) {
    console.error(`bench/ingest: --duration must be a whole number of seconds, at least 1 (not "${values.duration}")`);
    process.exit(2);
  }
  if (which !== 'sqlite' && which !== 'mariadb' && which !== 'both') {
    console.error(`bench/ingest: --db must be sqlite, mariadb or both (not "${which}")`);
    process.exit(2);
  }
  const dbs: Db[] = which === 'both' ? ['sqlite', 'mariadb'] : [which];
  const missing = MARIADB_TOOLS.filter((tool) => !existsSync(tool));
  if (dbs.includes('mariadb') && missing.length) {
    console.error(`bench/ingest: MariaDB is not installed (${missing.join(', ')} missing); install mariadb-server, or run with --db sqlite`);
    process.exit(1);
  }

  const results: Awaited<ReturnType<typeof measure>>[] = [];
  for (const db of dbs) results.push(db === 'sqlite' ? await sqlite(seconds) : await mariadb(seconds));

  const cpu = cpus();
  const result = {
    bench: 'ingest',
    date: new Date().toISOString(),
    durationSeconds: seconds,
    machine: { cpus: cpu.length, model: cpu[0]?.model, memGiB: round(totalmem() / 2 ** 30), node: process.version, platform: platform() },
    results,
  };
  const out = join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'ingest.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result));
  console.log('\ndb       scenario        concurrency     req/s     msgs/s   p50 ms   p99 ms  non-2xx  errors');
  for (const s of results.flatMap((r) => r.scenarios)) {
    console.log(
      `${s.db.padEnd(7)}  ${s.scenario.padEnd(14)}  ${String(s.concurrency).padStart(11)}  ${s.requestsPerSecond.toFixed(1).padStart(8)}  ${s.messagesPerSecond.toFixed(0).padStart(9)}  ${s.latencyP50Ms.toFixed(2).padStart(7)}  ${(s.latencyP99Ms === null ? '-' : s.latencyP99Ms.toFixed(2)).padStart(7)}  ${String(s.non2xx).padStart(7)}  ${String(s.errors).padStart(6)}`,
    );
  }
  for (const c of results.map((r) => r.consistency)) {
    console.log(`${c.db}: stored ${c.stored}, accepted ${c.accepted}, cut off in flight ${c.cutOff}: ${c.consistent ? 'consistent' : 'INCONSISTENT'}`);
  }
  // Not a speed: a message answered as accepted but not stored (or stored from nowhere) is a bug.
  if (results.some((r) => !r.consistency.consistent)) process.exitCode = 1;
}

if (isMainThread) await main();
else await serve(workerData as ServerData);
