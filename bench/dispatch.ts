/**
 * Dispatch vs the physical limit: N simulated channels with a fixed send latency, M one-part messages queued at
 * once, drained by the real dispatcher over real ptys. Reports the achieved throughput against the ideal (N channels
 * / latency), and then, one at a time, the accept -> AT+CMGS latency of messages that find an idle channel
 * (p50/p99), as JSON and a short table.
 * Ratios are measured in one run, on whatever machine runs it; nothing here asserts a speed.
 *
 *   npm run bench:dispatch -- [--channels 1,4,8] [--latency 200] [--messages 400] [--idle-samples 50] [--inline-simulator]
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Simulator } from '../modem/simulator/simulator.js';
import { Dispatcher } from '../scheduler/dispatcher.js';
import { type FoundModem, attachModems } from '../scheduler/pool.js';
import { openStorage } from '../sql/index.js';
import { PROJECT_ROOT } from '../server/version.js';

interface Run {
  channels: number;
  latencyMs: number;
  messages: number;
  seconds: number;
  throughput: number;
  ideal: number;
  utilisation: number;
  /** How long storing the batch took (before the clock starts), ms. */
  storeMs: number;
  /** accept -> AT+CMGS of messages that found an idle channel (one at a time, after the drain), ms. */
  idleStartP50: number;
  idleStartP99: number;
  /**
   * Where the time between two sends of one channel goes, means over the drain, ms, as the modem saw it: from its
   * answer to the next AT+CMGS (the answer's way to the gateway, the next start, the command's way back), from
   * AT+CMGS to the PDU (the prompt's round trip), and from the PDU to the answer beyond the latency (the simulator's
   * own timer lag).
   */
  answerToNextCmgsMs: number;
  cmgsToPduMs: number;
  pduToAnswerOverLatencyMs: number;
  /** From the batch's commit to the first AT+CMGS the modems saw, ms. */
  firstCommandMs: number;
  /** How evenly the drain spread over the channels: the fewest and the most sends of one channel. */
  sendsPerChannel: { min: number; max: number };
}

function mean(values: number[]): number {
  return values.length === 0 ? NaN : Number((values.reduce((a, b) => a + b, 0) / values.length).toFixed(2));
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** The simulator's record of a part the network received (modem/simulator/sim-modem.ts, NetworkRecord). */
interface SimRecord {
  time: string;
  commandAt: number;
  pduAt: number;
  port: string;
}

interface Modems {
  modemsFound(): FoundModem[];
  records(): SimRecord[];
  stop(): Promise<void>;
}

/**
 * The simulated modems: in a process of their own by default (`smsgate simulate`), as real modems are outside the
 * gateway — their pty traffic and timers then do not share the gateway's event loop; or in this process.
 */
async function startModems(dir: string, channels: number, latencyMs: number, separate: boolean): Promise<Modems> {
  if (!separate) {
    const sim = await Simulator.start({ dir, modems: channels, latencyMs, firstIndex: 5000 });
    return { modemsFound: () => sim.modemsFound(), records: () => sim.records(), stop: () => sim.stop() };
  }
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'server', 'smsgate.js'), 'simulate', '--dir', dir, '--modems', String(channels), '--latency', String(latencyMs), '--first', '5000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Whatever ends this benchmark, the simulator goes with it.
  process.once('exit', () => child.kill('SIGTERM'));
  const info = await new Promise<{ network: string; modems: { imei: string; imsi: string; iccid: string; number: string | null; ports: { path: string; at: boolean }[] }[] }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))));
    });
    child.once('exit', (code) => reject(new Error(`smsgate simulate exited (${code}) before it printed its modems`)));
  });
  // The network's record, read as it grows: only what was appended since the last look (this loop shares the
  // gateway's event loop, so re-reading the whole file every few ms would cost the gateway time), whole lines only.
  const seen: SimRecord[] = [];
  let offset = 0;
  let fd: number | null = null;
  const chunk = Buffer.alloc(1 << 16);
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return {
    modemsFound: () => info.modems.map((m) => ({ imei: m.imei, identity: { imsi: m.imsi, iccid: m.iccid, number: m.number, operator: 'MegaFon' }, ports: m.ports.filter((p) => p.at).map((p) => p.path) })),
    records: () => {
      if (fd === null) {
        if (!existsSync(info.network)) return seen;
        fd = openSync(info.network, 'r');
      }
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.length, offset);
        if (n === 0) break;
        offset += n;
        partial += decoder.write(chunk.subarray(0, n));
      }
      const end = partial.lastIndexOf('\n');
      if (end >= 0) {
        for (const line of partial.slice(0, end).split('\n')) if (line.trim() !== '') seen.push(JSON.parse(line) as SimRecord);
        partial = partial.slice(end + 1);
      }
      return seen;
    },
    stop: async () => {
      if (fd !== null) closeSync(fd);
      fd = null;
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function run(channels: number, latencyMs: number, messages: number, idleSamples: number, separate: boolean): Promise<Run> {
  const root = mkdtempSync(join(tmpdir(), 'smsgate-bench-'));
  const lockDir = join(root, 'lock');
  mkdirSync(lockDir);
  const sim = await startModems(join(root, 'dev'), channels, latencyMs, separate);
  const storage = await openStorage(`sqlite:${join(root, 'bench.db')}`);
  const admin = await storage.createUser({ name: 'bench', passwordHash: 'x', role: 'admin' });
  const dispatcher = new Dispatcher({ storage, cron: false });
  await attachModems(storage, dispatcher, sim.modemsFound(), { lockDir });
  await dispatcher.start();
  const items = Array.from({ length: messages }, (_, i) => ({ userId: admin.id, recipient: `+7916${String(i).padStart(7, '0')}`, text: `bench ${i}`, encoding: 'gsm7', parts: 1 }));
  // The clock starts when the batch is accepted: stored in one transaction, none of it visible before the commit.
  const storingAt = Date.now();
  await storage.enqueue(items, storingAt);
  const acceptedAt = Date.now();
  const storeMs = acceptedAt - storingAt;
  // One wake-up, as the API gives one per request; the dispatcher finds the rest of the batch by itself.
  dispatcher.wake();
  while (sim.records().length < messages) await new Promise((r) => setTimeout(r, 20));
  const records = sim.records();
  const seconds = (Math.max(...records.map((r) => Date.parse(r.time))) - acceptedAt) / 1000;
  const firstCommandMs = Math.min(...records.map((r) => r.commandAt)) - acceptedAt;
  const answerToNext: number[] = [];
  const cmgsToPdu: number[] = [];
  const overLatency: number[] = [];
  const byPort = new Map<string, { answeredAt: number; commandAt: number; pduAt: number }[]>();
  for (const r of records) {
    const list = byPort.get(r.port) ?? [];
    list.push({ answeredAt: Date.parse(r.time), commandAt: r.commandAt, pduAt: r.pduAt });
    byPort.set(r.port, list);
  }
  const perChannel = [...byPort.values()].map((list) => list.length);
  for (const list of byPort.values()) {
    list.sort((a, b) => a.commandAt - b.commandAt);
    list.forEach((r, i) => {
      cmgsToPdu.push(r.pduAt - r.commandAt);
      overLatency.push(r.answeredAt - r.pduAt - latencyMs);
      if (i > 0) answerToNext.push(r.commandAt - list[i - 1]!.answeredAt);
    });
  }
  // Then messages one at a time onto idle channels, as the API hands them over (stored, then a wake-up): how soon
  // after its acceptance each one's AT+CMGS reaches the modem.
  const idleStarts: number[] = [];
  for (let i = 0; i < idleSamples; i++) {
    await dispatcher.idle();
    await new Promise((r) => setTimeout(r, latencyMs + 50));
    const before = sim.records().length;
    const at = Date.now();
    await storage.enqueue([{ userId: admin.id, recipient: `+7917${String(i).padStart(7, '0')}`, text: `idle ${i}`, encoding: 'gsm7', parts: 1 }], at);
    dispatcher.wake();
    while (sim.records().length <= before) await new Promise((r) => setTimeout(r, 5));
    idleStarts.push(sim.records()[before]!.commandAt - at);
  }
  await dispatcher.stop();
  await storage.close();
  await sim.stop();
  rmSync(root, { recursive: true, force: true });
  const throughput = messages / seconds;
  const ideal = channels / (latencyMs / 1000);
  return {
    channels,
    latencyMs,
    messages,
    seconds: Number(seconds.toFixed(3)),
    throughput: Number(throughput.toFixed(2)),
    ideal: Number(ideal.toFixed(2)),
    utilisation: Number((throughput / ideal).toFixed(3)),
    storeMs,
    idleStartP50: percentile(idleStarts, 50),
    idleStartP99: percentile(idleStarts, 99),
    answerToNextCmgsMs: mean(answerToNext),
    sendsPerChannel: { min: Math.min(...perChannel), max: Math.max(...perChannel) },
    firstCommandMs,
    cmgsToPduMs: mean(cmgsToPdu),
    pduToAnswerOverLatencyMs: mean(overLatency),
  };
}

const { values } = parseArgs({
  options: { channels: { type: 'string' }, latency: { type: 'string' }, messages: { type: 'string' }, 'idle-samples': { type: 'string' }, 'inline-simulator': { type: 'boolean' } },
});
const separate = !values['inline-simulator'];
const channelCounts = (values.channels ?? '1,4,8').split(',').map(Number);
const latencyMs = Number(values.latency ?? 200);
const messages = Number(values.messages ?? 400);
const runs: Run[] = [];
const idleSamples = Number(values['idle-samples'] ?? 50);
for (const n of channelCounts) runs.push(await run(n, latencyMs, messages, idleSamples, separate));
const result = { bench: 'dispatch', simulator: separate ? 'separate process' : 'in process', date: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, runs };
mkdirSync(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(PROJECT_ROOT, 'bench', 'results', 'dispatch.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result));
console.log('\nchannels  latency  messages  seconds  msg/s   ideal   utilisation  idle-start p50/p99 ms  between sends ms: answer->AT+CMGS / ->PDU / ->answer-latency');
for (const r of runs) {
  console.log(
    `${String(r.channels).padStart(8)}  ${String(r.latencyMs).padStart(7)}  ${String(r.messages).padStart(8)}  ${r.seconds.toFixed(2).padStart(7)}  ${r.throughput.toFixed(1).padStart(6)}  ${r.ideal.toFixed(1).padStart(6)}  ${r.utilisation.toFixed(3).padStart(11)}  ${`${r.idleStartP50}/${r.idleStartP99}`.padStart(21)}  ${r.answerToNextCmgsMs} / ${r.cmgsToPduMs} / ${r.pduToAnswerOverLatencyMs}`,
  );
}
