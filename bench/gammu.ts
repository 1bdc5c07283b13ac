/**
 * smsgate side by side with gammu-smsd (Debian's `gammu-smsd`, SQL backend on SQLite, one daemon per channel) on the
 * same simulated modems, the same per-send latency and the same messages. Each system starts as a process with the
 * messages already waiting in its database — gammu-smsd's put there by `gammu-smsd-inject`, smsgate's by its storage
 * (as `smsgate send` does) — and the clock runs from the process start to the last part the simulated network
 * received. Reported: the time to drain, throughput against the ideal (channels / latency), and the ratio of the two
 * systems' times, measured in one run on one machine. gammu-smsd runs twice: with its default timing settings, and
 * tuned for throughput (the settings are recorded with the results).
 *
 *   npm run bench:gammu -- [--channels 4] [--latency 200] [--messages 200]
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Simulator } from '../modem/simulator/simulator.js';
import { openStorage } from '../sql/index.js';
import { PROJECT_ROOT, VERSION } from '../server/version.js';

const SCHEMA = '/usr/share/doc/gammu-smsd/examples/sqlite.sql';

interface Run {
  system: string;
  settings: Record<string, string | number>;
  channels: number;
  latencyMs: number;
  messages: number;
  /** Process start to the last part on the network. */
  seconds: number;
  /** Process start to the first part on the network (start-up, modem init). */
  firstSendSeconds: number;
  throughput: number;
  ideal: number;
  utilisation: number;
  /** Parts the network received more than once (a resend). */
  duplicates: number;
  /** Parts each channel sent, in port order: every channel must share the work, or the comparison means nothing. */
  perChannel: number[];
}

function need(command: string, packages: string): void {
  if (spawnSync('sh', ['-c', `command -v ${command}`]).status !== 0) throw new Error(`${command} is missing: apt-get install ${packages}`);
}

function recipients(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `+7916${String(500_000 + i).padStart(7, '0')}`);
}

/** Waits for `count` network records (or gives up after `limitMs`); returns the times of the first and last. */
async function drained(sim: Simulator, count: number, limitMs: number): Promise<{ first: number; last: number; records: number; duplicates: number; perChannel: number[] }> {
  const until = Date.now() + limitMs;
  for (;;) {
    const records = sim.records();
    if (records.length >= count || Date.now() > until) {
      const times = records.map((r) => Date.parse(r.time));
      const distinct = new Set(records.map((r) => r.to)).size;
      const ports = sim.info().map((m) => m.ports[0]!.path);
      const perChannel = ports.map((port) => records.filter((r) => r.port === port).length);
      return { first: Math.min(...times), last: Math.max(...times), records: records.length, duplicates: records.length - distinct, perChannel };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function result(system: string, settings: Run['settings'], channels: number, latencyMs: number, messages: number, start: number, d: Awaited<ReturnType<typeof drained>>): Run {
  const seconds = (d.last - start) / 1000;
  const throughput = d.records / seconds;
  const ideal = channels / (latencyMs / 1000);
  if (d.records < messages) throw new Error(`${system}: only ${d.records} of ${messages} messages reached the network in time`);
  return {
    system,
    settings,
    channels,
    latencyMs,
    messages,
    seconds: Number(seconds.toFixed(2)),
    firstSendSeconds: Number(((d.first - start) / 1000).toFixed(2)),
    throughput: Number(throughput.toFixed(2)),
    ideal: Number(ideal.toFixed(2)),
    utilisation: Number((throughput / ideal).toFixed(3)),
    duplicates: d.duplicates,
    perChannel: d.perChannel,
  };
}

async function runGammu(label: string, tuning: Record<string, number>, channels: number, latencyMs: number, messages: number): Promise<Run> {
  const root = mkdtempSync(join(tmpdir(), 'smsgate-bench-gammu-'));
  const sim = await Simulator.start({ dir: join(root, 'dev'), modems: channels, latencyMs, firstIndex: 6000 });
  const daemons: ChildProcess[] = [];
  try {
    const db = new Database(join(root, 'smsd.db'));
    db.exec(readFileSync(SCHEMA, 'utf8'));
    db.close();
    const storage = ['[smsd]', 'service = sql', 'driver = sqlite3', 'sql = sqlite', 'database = smsd.db', `dbdir = ${root}`];
    const configs = sim.info().map((modem, i) => {
      const path = join(root, `smsd${i}.rc`);
      const lines = [
        '[gammu]',
        `device = ${modem.ports[0]!.path}`,
        'connection = at',
        ...storage,
        `phoneid = ch${i}`,
        `logfile = ${join(root, `smsd${i}.log`)}`,
        'debuglevel = 0',
        ...Object.entries(tuning).map(([k, v]) => `${k} = ${v}`),
      ];
      writeFileSync(path, `${lines.join('\n')}\n`);
      return path;
    });
    // The messages, as gammu-smsd users queue them: through a configuration without a PhoneID, so that their
    // SenderID is empty and any daemon may take them (gammu-smsd-inject copies the PhoneID of the configuration it is
    // given into SenderID, and a daemon takes only messages with an empty SenderID or its own).
    // (It reads a [gammu] section too, though it never opens the device.)
    const inject = join(root, 'inject.rc');
    writeFileSync(inject, `${['[gammu]', `device = ${sim.info()[0]!.ports[0]!.path}`, 'connection = at', ...storage].join('\n')}\n`);
    for (const [i, to] of recipients(messages).entries()) {
      execFileSync('gammu-smsd-inject', ['-c', inject, 'TEXT', to, '-text', `bench ${i}`], { stdio: 'ignore' });
    }
    const check = new Database(join(root, 'smsd.db'), { readonly: true });
    const senders = check.prepare("SELECT COUNT(*) AS n FROM outbox WHERE SenderID IS NOT NULL AND SenderID <> ''").get() as { n: number };
    check.close();
    if (senders.n > 0) throw new Error(`gammu-smsd-inject pinned ${senders.n} messages to one daemon (SenderID set)`);
    const start = Date.now();
    for (const config of configs) daemons.push(spawn('gammu-smsd', ['-c', config], { stdio: 'ignore' }));
    const d = await drained(sim, messages, Math.max(120_000, (messages / channels) * 5_000));
    return result(label, tuning, channels, latencyMs, messages, start, d);
  } finally {
    for (const daemon of daemons) await stopChild(daemon);
    await sim.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

async function runSmsgate(channels: number, latencyMs: number, messages: number): Promise<Run> {
  const root = mkdtempSync(join(tmpdir(), 'smsgate-bench-side-'));
  mkdirSync(join(root, 'lock'));
  const sim = await Simulator.start({ dir: join(root, 'dev'), modems: channels, latencyMs, firstIndex: 6100 });
  let child: ChildProcess | null = null;
  try {
    const storage = await openStorage(`sqlite:${join(root, 'data', 'smsgate.db')}`);
    const admin = await storage.createUser({ name: 'bench', passwordHash: 'x', role: 'admin' });
    await storage.enqueue(recipients(messages).map((to, i) => ({ userId: admin.id, recipient: to, text: `bench ${i}`, encoding: 'gsm7', parts: 1 })));
    await storage.close();
    const bin = join(PROJECT_ROOT, 'dist', 'server', 'smsgate.js');
    const start = Date.now();
    child = spawn(process.execPath, [bin, 'serve', '--data', join(root, 'data'), '--listen', '127.0.0.1:0', '--glob', join(root, 'dev', 'ttyUSB*'), '--lock-dir', join(root, 'lock')], {
      stdio: 'ignore',
      env: { ...process.env, SMSGATE_LOG_FORMAT: 'json' },
    });
    const d = await drained(sim, messages, Math.max(120_000, (messages / channels) * 5_000));
    return result('smsgate', { config: 'defaults' }, channels, latencyMs, messages, start, d);
  } finally {
    if (child) await stopChild(child);
    await sim.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

need('gammu-smsd', 'gammu-smsd libdbd-sqlite3');
need('gammu-smsd-inject', 'gammu-smsd');
if (!existsSync(SCHEMA)) throw new Error(`${SCHEMA} is missing: apt-get install gammu-smsd`);
if (!existsSync(join(PROJECT_ROOT, 'dist', 'server', 'smsgate.js'))) throw new Error('build first: npm run build');

const { values } = parseArgs({ options: { channels: { type: 'string' }, latency: { type: 'string' }, messages: { type: 'string' } } });
const channels = Number(values.channels ?? 4);
const latencyMs = Number(values.latency ?? 200);
const messages = Number(values.messages ?? 200);
const runs: Run[] = [];
runs.push(await runSmsgate(channels, latencyMs, messages));
// gammu-smsd as installed (its documented defaults), then tuned for throughput as its manual suggests: no status
// polling, no receive checks while sending, no signal, battery, network or PIN checks. LoopSleep stays at its default
// of 1 s: gammu-smsd 1.42 does not sleep between messages that wait anyway, and LoopSleep = 0 makes every idle
// daemon spin a core.
runs.push(await runGammu('gammu-smsd (defaults)', {}, channels, latencyMs, messages));
runs.push(
  await runGammu('gammu-smsd (tuned)', { commtimeout: 1, statusfrequency: 0, receivefrequency: 3600, checksignal: 0, checkbattery: 0, checknetwork: 0, checksecurity: 0 }, channels, latencyMs, messages),
);
const smsgate = runs[0]!;
const versions = {
  smsgate: VERSION,
  gammuSmsd: execFileSync('gammu-smsd', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim(),
  node: process.version,
};
const ratios = runs.slice(1).map((r) => ({ against: r.system, smsgateOverGammuTime: Number((smsgate.seconds / r.seconds).toFixed(3)), speedup: Number((r.seconds / smsgate.seconds).toFixed(2)) }));
const out = { bench: 'gammu-smsd', date: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, versions, runs, ratios };
mkdirSync(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(PROJECT_ROOT, 'bench', 'results', 'gammu.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out));
console.log(`\n${channels} channels, ${latencyMs} ms per send, ${messages} messages; clock from process start to the last part on the network`);
console.log('system                   seconds  first-send  msg/s   ideal   utilisation  duplicates  per channel');
for (const r of runs) {
  console.log(
    `${r.system.padEnd(23)}  ${r.seconds.toFixed(2).padStart(7)}  ${r.firstSendSeconds.toFixed(2).padStart(10)}  ${r.throughput.toFixed(1).padStart(5)}  ${r.ideal.toFixed(1).padStart(6)}  ${r.utilisation.toFixed(3).padStart(11)}  ${String(r.duplicates).padStart(10)}  ${r.perChannel.join(' / ')}`,
  );
}
for (const r of ratios) console.log(`smsgate time / ${r.against} time: ${r.smsgateOverGammuTime} (smsgate ${r.speedup}x as fast)`);
