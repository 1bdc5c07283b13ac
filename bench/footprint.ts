/**
 * Footprint: the real gateway (`smsgate serve --simulate N`, dist/server/smsgate.js) as a child process, measured
 * from outside through /proc:
 *
 * - Cold start to healthy: from spawn to the first `GET /health` that answers 200, polled every 10 ms; --runs times
 *   (default 3), each on a new data directory (a new SQLite database), reported each and as the median. /health
 *   answers once storage, the simulated modems, the dispatcher and the HTTP server are all up.
 * - Resident memory idle: VmRSS and VmHWM (/proc/PID/status) --idle seconds (default 5) after the last start.
 * - Under load: a user and a token made with the CLI (`smsgate user add … --admin`, `smsgate token create …`, as
 *   the README says), then --messages one-recipient `POST /api/v1/messages` (default 2000) at --concurrency
 *   (default 4) while the N simulated channels send them at --latency ms each (default 200). VmRSS is sampled every
 *   200 ms from the first POST until the queue is empty (nothing queued or sending); reported: its mean and peak,
 *   VmHWM at the end, the messages accepted and sent in that window.
 * - After the load: VmRSS once more, --idle seconds after the queue emptied.
 *
 * The simulator's ptys are socat processes the gateway starts (one per port); their resident memory is reported
 * apart (a real modem needs none). The gateway's own log goes to a file in its temporary directory. Numbers are
 * measured in one run, on whatever machine runs it; nothing here asserts a size or a speed. Prints the results as
 * JSON, writes them to bench/results/footprint.json, then prints a short table.
 *
 *   npm run bench:footprint -- [--channels 4] [--latency 200] [--messages 2000] [--concurrency 4] [--runs 3]
 *                              [--idle 5] [--max-seconds 600]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, platform, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT, VERSION } from '../server/version.js';
import { freePort } from './net.js';

const SMSGATE = fileURLToPath(new URL('../server/smsgate.js', import.meta.url));
const POLL_MS = 10;
const SAMPLE_MS = 200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (kib: number) => Number((kib / 1024).toFixed(1));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// ---- /proc

interface Memory {
  rssKiB: number;
  hwmKiB: number;
}

/** VmRSS and VmHWM of a process, or null once it is gone. */
function memory(pid: number): Memory | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/** The processes whose parent is `pid`, with their command names. */
function children(pid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read from the last ')'.
      const close = stat.lastIndexOf(')');
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(entry), comm: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The gateway's child processes (the simulator's socat) and their resident memory together. */
function childMemory(pid: number): { processes: number; commands: string[]; rssMiB: number } {
  const kids = children(pid);
  const rss = kids.reduce((a, k) => a + (memory(k.pid)?.rssKiB ?? 0), 0);
  return { processes: kids.length, commands: [...new Set(kids.map((k) => k.comm))], rssMiB: mib(rss) };
}

// ---- the gateway

interface Running {
  child: ChildProcess;
  pid: number;
  url: string;
  root: string;
  data: string;
  logFile: string;
  coldStartMs: number;
  /** Channels /health listed on its first 200, and how many of them were healthy. */
  channels: number;
  healthyChannels: number;
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-8).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The environment without SMSGATE_* settings, so the gateway runs with its defaults and these flags only. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SMSGATE_')));
}

/** Spawns the gateway on a new data directory and waits for its first healthy answer. */
async function start(channels: number, latencyMs: number, maxSeconds: number): Promise<Running> {
  const root = mkdtempSync(join(tmpdir(), 'smsgate-bench-footprint-'));
  const data = join(root, 'data');
  const lock = join(root, 'lock');
  mkdirSync(lock, { recursive: true });
  const logFile = join(root, 'gateway.log');
  const log = openSync(logFile, 'a');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [SMSGATE, 'serve', '--simulate', String(channels), '--data', data, '--listen', `127.0.0.1:${port}`, '--lock-dir', lock, '--sim-latency', String(latencyMs), '--log-format', 'json'];
  const started = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', log, log], env: cleanEnv() });
  closeSync(log);
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = signal ?? `status ${code}`));
  for (;;) {
    if (exited) throw new Error(`the gateway exited (${exited}) before it was healthy; its log:\n${logTail(logFile)}`);
    if (performance.now() - started > maxSeconds * 1000) {
      child.kill('SIGKILL');
      throw new Error(`the gateway was not healthy after ${maxSeconds} s; its log:\n${logTail(logFile)}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { channels?: { healthy: boolean }[] };
      if (res.status === 200) {
        const coldStartMs = performance.now() - started;
        const list = body.channels ?? [];
        return { child, pid: child.pid!, url, root, data, logFile, coldStartMs, channels: list.length, healthyChannels: list.filter((c) => c.healthy).length };
      }
    } catch {
      // not listening yet
    }
    await sleep(POLL_MS);
  }
}

/** SIGTERM, then SIGKILL after 30 s; ends the socat processes it leaves behind (by pid), removes its directory. */
async function stop(gateway: Running): Promise<void> {
  const socats = children(gateway.pid).filter((k) => k.comm === 'socat');
  if (gateway.child.exitCode === null && gateway.child.signalCode === null) {
    const exited = new Promise((r) => gateway.child.once('exit', r));
    gateway.child.kill('SIGTERM');
    const timer = setTimeout(() => gateway.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  await sleep(200);
  for (const s of socats) {
    if (existsSync(`/proc/${s.pid}`)) {
      try {
        process.kill(s.pid, 'SIGTERM');
      } catch {
        // gone meanwhile
      }
    }
  }
  rmSync(gateway.root, { recursive: true, force: true });
}

/** Runs the smsgate CLI on the gateway's data directory; answers its stdout. */
function cli(data: string, args: string[]): string {
  const run = spawnSync(process.execPath, [SMSGATE, ...args, '--data', data], { encoding: 'utf8', env: cleanEnv() });
  if (run.status !== 0) throw new Error(`smsgate ${args.join(' ')} failed (${run.status}): ${run.stderr.trim()}`);
  return run.stdout;
}

/** The queue's states as /health reports them. */
async function queue(url: string): Promise<Record<string, number>> {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as { queue?: Record<string, number> }).queue ?? {};
}

// ---- the load

interface Load {
  messages: number;
  concurrency: number;
  accepted: number;
  refused: number;
  firstRefusal: string | null;
  /** First POST to the last answer. */
  acceptSeconds: number;
  /** First POST until nothing is queued or sending (or --max-seconds). */
  windowSeconds: number;
  drained: boolean;
  /** Messages in state sent at the end of the window. */
  sent: number;
  sentPerSecond: number;
  states: Record<string, number>;
  samples: number;
  rssMeanMiB: number;
  rssPeakMiB: number;
  /**
   * VmHWM at the end of the window: the most the process ever held resident, start included, as the kernel keeps
   * it. The kernel updates its mark lazily, so it can read a little below the sampled peak.
   */
  hwmMiB: number;
}

async function load(gateway: Running, token: string, messages: number, concurrency: number, maxSeconds: number): Promise<Load> {
  const samples: number[] = [];
  const sample = () => {
    const m = memory(gateway.pid);
    if (m) samples.push(m.rssKiB);
  };
  const started = performance.now();
  sample();
  const sampler = setInterval(sample, SAMPLE_MS);
  let next = 0;
  let accepted = 0;
  let refused = 0;
  let firstRefusal: string | null = null;
  const worker = async () => {
    while (next < messages) {
      const i = next++;
      try {
        const res = await fetch(`${gateway.url}/api/v1/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ to: `+7916${String(i).padStart(7, '0')}`, text: `Footprint bench message ${i}: your code is ${String(100000 + i)}.` }),
        });
        const body = await res.text();
        if (res.status === 201) accepted++;
        else {
          refused++;
          firstRefusal ??= `${res.status} ${body.slice(0, 200)}`;
        }
      } catch (error) {
        refused++;
        firstRefusal ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const acceptSeconds = (performance.now() - started) / 1000;
  let states: Record<string, number> = {};
  let drained = false;
  while (performance.now() - started < maxSeconds * 1000) {
    states = await queue(gateway.url);
    if (!states.queued && !states.sending) {
      drained = true;
      break;
    }
    await sleep(500);
  }
  clearInterval(sampler);
  sample();
  const windowSeconds = (performance.now() - started) / 1000;
  const end = memory(gateway.pid);
  if (!drained) states = await queue(gateway.url);
  const sent = states.sent ?? 0;
  return {
    messages,
    concurrency,
    accepted,
    refused,
    firstRefusal,
    acceptSeconds: Number(acceptSeconds.toFixed(2)),
    windowSeconds: Number(windowSeconds.toFixed(2)),
    drained,
    sent,
    sentPerSecond: Number((sent / windowSeconds).toFixed(2)),
    states,
    samples: samples.length,
    rssMeanMiB: mib(samples.reduce((a, b) => a + b, 0) / samples.length),
    rssPeakMiB: mib(Math.max(...samples)),
    hwmMiB: mib(end?.hwmKiB ?? NaN),
  };
}

// ---- main

function wholeNumber(value: string | undefined, fallback: number, name: string, min: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < min) {
    console.error(`bench/footprint: --${name} takes a whole number of at least ${min} (not "${value}")`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      channels: { type: 'string' },
      latency: { type: 'string' },
      messages: { type: 'string' },
      concurrency: { type: 'string' },
      runs: { type: 'string' },
      idle: { type: 'string' },
      'max-seconds': { type: 'string' },
    },
  });
  const channels = wholeNumber(values.channels, 4, 'channels', 1);
  const latencyMs = wholeNumber(values.latency, 200, 'latency', 0);
  const messages = wholeNumber(values.messages, 2000, 'messages', 1);
  const concurrency = wholeNumber(values.concurrency, 4, 'concurrency', 1);
  const runs = wholeNumber(values.runs, 3, 'runs', 1);
  const idleSeconds = wholeNumber(values.idle, 5, 'idle', 0);
  const maxSeconds = wholeNumber(values['max-seconds'], 600, 'max-seconds', 1);
  if (!existsSync(SMSGATE)) {
    console.error(`bench/footprint: ${SMSGATE} is missing; build first (npm run build)`);
    process.exit(1);
  }
  const progress = (what: string) => process.stderr.write(`footprint: ${what}\n`);

  const coldStarts: { ms: number; channels: number; healthyChannels: number }[] = [];
  let gateway: Running | null = null;
  try {
    for (let i = 0; i < runs; i++) {
      gateway = await start(channels, latencyMs, maxSeconds);
      coldStarts.push({ ms: Math.round(gateway.coldStartMs), channels: gateway.channels, healthyChannels: gateway.healthyChannels });
      progress(`cold start ${i + 1}/${runs}: healthy after ${Math.round(gateway.coldStartMs)} ms (${gateway.healthyChannels}/${gateway.channels} channels healthy)`);
      if (i < runs - 1) {
        await stop(gateway);
        gateway = null;
      }
    }
    const running = gateway!;
    progress(`idle for ${idleSeconds} s`);
    await sleep(idleSeconds * 1000);
    const idle = memory(running.pid)!;
    const idleChildren = childMemory(running.pid);

    progress('user and token with the CLI');
    cli(running.data, ['user', 'add', 'bench', '--admin']);
    const token = cli(running.data, ['token', 'create', 'bench', '--label', 'footprint']).trim();

    progress(`load: ${messages} messages at ${concurrency} concurrent requests, ${channels} channels at ${latencyMs} ms per send`);
    const loaded = await load(running, token, messages, concurrency, maxSeconds);
    const loadChildren = childMemory(running.pid);
    progress(`load: ${loaded.accepted} accepted in ${loaded.acceptSeconds} s, ${loaded.sent} sent in ${loaded.windowSeconds} s; idle for ${idleSeconds} s`);
    await sleep(idleSeconds * 1000);
    const after = memory(running.pid)!;
    await stop(running);
    gateway = null;

    const cpu = cpus();
    const result = {
      bench: 'footprint',
      date: new Date().toISOString(),
      machine: { cpus: cpu.length, model: cpu[0]?.model, memGiB: Number((totalmem() / 2 ** 30).toFixed(1)), node: process.version, platform: platform() },
      versions: { smsgate: VERSION, node: process.version },
      settings: { channels, latencyMs, messages, concurrency, runs, idleSeconds, healthPollMs: POLL_MS, rssSampleMs: SAMPLE_MS },
      coldStart: { runs: coldStarts, medianMs: median(coldStarts.map((c) => c.ms)) },
      idle: { afterSeconds: idleSeconds, rssMiB: mib(idle.rssKiB), hwmMiB: mib(idle.hwmKiB), simulatorProcesses: idleChildren },
      load: { ...loaded, simulatorProcesses: loadChildren },
      afterLoad: { afterSeconds: idleSeconds, rssMiB: mib(after.rssKiB), hwmMiB: mib(after.hwmKiB) },
    };
    const out = join(PROJECT_ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'footprint.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result));
    console.log(`\ngateway: smsgate ${VERSION} serve --simulate ${channels} --sim-latency ${latencyMs}, Node ${process.version}`);
    console.log(`cold start to healthy: ${coldStarts.map((c) => `${c.ms} ms`).join(', ')} (median ${result.coldStart.medianMs} ms)`);
    const row = (when: string, rss: string, hwm: number) => console.log(`${when.padEnd(26)}  ${rss.padStart(13)}  ${hwm.toFixed(1).padStart(9)}`);
    console.log(`\n${'when'.padEnd(26)}  ${'VmRSS MiB'.padStart(13)}  ${'VmHWM MiB'.padStart(9)}`);
    row(`idle, ${idleSeconds} s after start`, result.idle.rssMiB.toFixed(1), result.idle.hwmMiB);
    row('under load, mean / peak', `${loaded.rssMeanMiB.toFixed(1)} / ${loaded.rssPeakMiB.toFixed(1)}`, loaded.hwmMiB);
    row(`after load, ${idleSeconds} s later`, result.afterLoad.rssMiB.toFixed(1), result.afterLoad.hwmMiB);
    console.log(
      `\nload: ${loaded.accepted} of ${messages} accepted in ${loaded.acceptSeconds} s (${concurrency} at a time), ${loaded.sent} sent in ${loaded.windowSeconds} s ` +
        `(${loaded.sentPerSecond} msg/s; ideal ${((channels * 1000) / Math.max(latencyMs, 1)).toFixed(1)}), ${loaded.samples} RSS samples`,
    );
    console.log(`simulator (${idleChildren.commands.join(', ') || 'none'}): ${idleChildren.processes} processes, ${idleChildren.rssMiB} MiB idle, ${loadChildren.rssMiB} MiB after the load (not the gateway's)`);
    if (loaded.refused > 0) console.log(`refused: ${loaded.refused}, the first: ${loaded.firstRefusal}`);
    if (!loaded.drained) console.log(`the queue was not empty after ${maxSeconds} s: ${JSON.stringify(loaded.states)}`);
    // Not a size: a refused message, or one left unsent, means the run did not measure what it says.
    if (loaded.refused > 0 || !loaded.drained || loaded.sent !== loaded.accepted) process.exitCode = 1;
  } finally {
    if (gateway) await stop(gateway);
  }
}

await main();
