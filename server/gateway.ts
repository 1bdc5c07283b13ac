/**
 * The running gateway: storage, the modems (found by probing, or simulated), the dispatcher and the HTTP server,
 * started in that order and stopped in the reverse one.
 */
import { join } from 'node:path';
import { DEFAULT_GLOBS, probe } from '../modem/probe.js';
import { Simulator } from '../modem/simulator/simulator.js';
import { Dispatcher } from '../scheduler/dispatcher.js';
import { attachModems, attachRemoteChannels, type FoundModem } from '../scheduler/pool.js';
import { defaultDbUrl, openStorage } from '../sql/index.js';
import { type RunningServer, startServer } from './app.js';

export interface GatewayOptions {
  dataDir: string;
  db?: string;
  host: string;
  port: number;
  /** Run N simulated one-port modems under DATA/sim instead of probing. */
  simulate?: number;
  /** The simulated network's send latency (default 2000 ms). */
  simLatencyMs?: number;
  globs?: string[];
  lockDir?: string;
  pin?: string;
  /** What to do with messages whose fate is unknown: hold them (default) or resend them. */
  onUnknown?: 'hold' | 'resend';
  /** Days of finished history to keep (default 90; 0 = for ever). */
  retentionDays?: number;
  log: (line: string) => void;
}

export interface Gateway {
  url: string;
  stop(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { log } = options;
  const storage = await openStorage(options.db ?? defaultDbUrl(options.dataDir));
  const dispatcher = new Dispatcher({ storage, log, onUnknown: options.onUnknown, retentionDays: options.retentionDays });
  let sim: Simulator | null = null;
  let server: RunningServer | null = null;
  try {
    let modems: FoundModem[];
    if (options.simulate !== undefined) {
      sim = await Simulator.start({ dir: join(options.dataDir, 'sim'), modems: options.simulate, latencyMs: options.simLatencyMs ?? 2000, control: true });
      modems = sim.modemsFound();
      log(`simulating ${options.simulate} modem(s) in ${sim.dir} (network record: ${sim.networkFile})`);
    } else {
      const report = await probe({ globs: options.globs ?? DEFAULT_GLOBS, lockDir: options.lockDir, pin: options.pin });
      modems = report.modems;
      for (const s of report.skipped) log(`skipped ${s.path}: ${s.detail}`);
    }
    const local = await attachModems(storage, dispatcher, modems, { lockDir: options.lockDir, pin: options.pin });
    const remote = await attachRemoteChannels(storage, dispatcher);
    for (const c of [...local.channels, ...remote.channels]) log(`channel ${c.port}: SIM ${c.simId}`);
    for (const p of [...local.problems, ...remote.problems]) log(`channel ${p.port} not used: ${p.error}`);
    if (local.channels.length + remote.channels.length === 0) log('no channel: messages will wait in the queue until a modem is found');
    await dispatcher.start();
    server = await startServer(options.host, options.port, { storage, dispatcher });
  } catch (error) {
    await dispatcher.stop().catch(() => undefined);
    await sim?.stop().catch(() => undefined);
    await storage.close().catch(() => undefined);
    throw error;
  }
  return {
    url: server.url,
    stop: async () => {
      await server!.close();
      await dispatcher.stop();
      await sim?.stop();
      await storage.close();
    },
  };
}
