/**
 * The running gateway: storage, the modems (found by probing, or simulated), the dispatcher, the callback worker
 * and the HTTP server, started in that order and stopped in the reverse one.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { probe } from '../modem/probe.js';
import { ModemSender, type SmsSender } from '../modem/sender.js';
import { Simulator } from '../modem/simulator/simulator.js';
import cron, { type ScheduledTask } from 'node-cron';
import { BalanceChecker } from '../scheduler/balance.js';
import { Dispatcher } from '../scheduler/dispatcher.js';
import { attachModems, attachRemoteChannels, type FoundModem } from '../scheduler/pool.js';
import { defaultDbUrl, openStorage } from '../sql/index.js';
import { type RunningServer, startServer } from './app.js';
import { Authenticator } from './auth.js';
import { CallbackWorker } from './callbacks.js';
import { type Config, parseListen } from './config.js';
import { DeliveryWorker } from './deliveries.js';
import { type InboundSetup, alertSender, inboundSetup } from './inbox.js';
import type { Services } from './http.js';
import type { LogFn } from './log.js';
import { createMetrics } from './metrics.js';

export interface GatewayOptions {
  config: Config;
  log: LogFn;
}

export interface Gateway {
  url: string;
  services: Services;
  /** The database answers within 5 s and the dispatcher's ticks run (the systemd watchdog's test). */
  healthy(): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { log, config } = options;
  const { host, port } = parseListen(config.listen);
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const storage = await openStorage(config.db || defaultDbUrl(dataDir));
  let dispatcher: Dispatcher;
  const metrics = createMetrics(storage, () => dispatcher.channels.map((c) => ({ channelId: c.channelId, healthy: c.healthy, busy: c.busy })));
  // The inbound plan needs the SIMs, which are known once the modems are attached (before the dispatcher starts).
  let inbound: InboundSetup | null = null;
  let balanceTask: ScheduledTask | null = null;
  let deliveries: DeliveryWorker | null = null;
  dispatcher = new Dispatcher({
    storage,
    log,
    onUnknown: config.dispatch.onUnknown,
    retentionDays: config.dispatch.retentionDays,
    observer: metrics.observer,
    inbound: {
      sweepMs: config.inbound.sweepS * 1000,
      incompleteWaitMs: config.inbound.incompleteWaitS * 1000,
      plan: (message, event) => inbound?.plan(message, event) ?? [],
      onMessage: () => void deliveries?.wake(),
    },
    // Set below, once the modem options (and the simulator's directory) are known.
    watchdog: { reset: config.watchdog.reset, reappearMs: config.watchdog.reappearS * 1000, find: (imei) => findModem(imei), open: (port) => openChannel(port), onLost: (imei, ports, reason) => lostModem(imei, ports, reason) },
  });
  let findModem: (imei: string) => Promise<string[]> = async () => [];
  let openChannel: (port: string) => Promise<SmsSender> = async (port) => {
    throw new Error(`${port}: the gateway is not started yet`);
  };
  let lostModem: (imei: string, ports: string[], reason: string) => void = () => undefined;
  let sim: Simulator | null = null;
  let server: RunningServer | null = null;
  let callbacks: CallbackWorker | null = null;
  try {
    const secret = config.callbacks.secret || (await storage.ensureSetting('callback_secret', randomBytes(32).toString('hex')));
    callbacks = new CallbackWorker({ storage, secret, maxAttempts: config.callbacks.maxAttempts, timeoutMs: config.callbacks.timeoutMs, log });
    const debugAt = config.log.debugAt;
    const modemOptions = {
      lockDir: config.modems.lockDir,
      pin: config.modems.pin || undefined,
      trace: debugAt ? (path: string, direction: string, text: string) => path === debugAt && log(`AT ${direction} ${text}`, { channel: path }) : undefined,
    };
    let modems: FoundModem[];
    if (config.simulate.modems > 0) {
      sim = await Simulator.start({ dir: join(dataDir, 'sim'), modems: config.simulate.modems, latencyMs: config.simulate.latencyMs, control: true });
      modems = sim.modemsFound();
      log(`simulating ${config.simulate.modems} modem(s) in ${sim.dir} (network record: ${sim.networkFile})`);
    } else {
      const report = await probe({ globs: config.modems.globs, ...modemOptions });
      modems = report.modems;
      for (const s of report.skipped) log(`skipped ${s.path}: ${s.detail}`);
    }
    // The watchdog looks for a restarted modem where modems are probed (the simulator's directory when simulating).
    const globs = sim ? [join(sim.dir, 'ttyUSB*')] : config.modems.globs;
    findModem = async (imei) => (await probe({ globs, lockDir: modemOptions.lockDir, pin: modemOptions.pin })).modems.find((m) => m.imei === imei)?.ports ?? [];
    openChannel = (port) => ModemSender.open(port, modemOptions);
    const local = await attachModems(storage, dispatcher, modems, modemOptions);
    const remote = await attachRemoteChannels(storage, dispatcher);
    for (const c of [...local.channels, ...remote.channels]) log(`channel ${c.port}: SIM ${c.simId}`);
    for (const p of [...local.problems, ...remote.problems]) log(`channel ${p.port} not used: ${p.error}`);
    if (local.channels.length + remote.channels.length === 0) {
      log('no modem found: messages are accepted and wait in the queue until one is attached');
      log('to try smsgate without a modem, run: smsgate serve --simulate 2   (simulated modems on pseudo-terminals)');
    }
    if ((await storage.listUsers()).length === 0) {
      log(`no user yet: create the first admin with: smsgate user add admin --admin --data ${dataDir}`);
    }
    inbound = await inboundSetup(config, storage, log);
    const setup = inbound;
    deliveries = new DeliveryWorker({
      storage,
      secret,
      maxAttempts: config.inbound.maxAttempts,
      timeoutMs: config.callbacks.timeoutMs,
      command: config.inbound.command,
      commandTimeoutMs: config.inbound.commandTimeoutS * 1000,
      forward: (delivery, message, text) => setup.forward(delivery, message, text),
      log,
    });
    const alerts = alertSender(config, storage, log, () => deliveries?.wake());
    lostModem = (imei, ports, reason) =>
      void alerts('channel.lost', { imei, ports, reason }, `smsgate: ${reason} (ports ${ports.join(', ')})`).catch((e: Error) => log(`alert failed: ${e.message}`));
    const balance = new BalanceChecker({ storage, dispatcher, defaults: config.balance, alert: alerts, log });
    await dispatcher.start();
    callbacks.start();
    deliveries.start();
    if (config.balance.schedule) {
      balanceTask = cron.schedule(config.balance.schedule, () => void balance.checkAll().catch((e: Error) => log(`balance checks failed: ${e.message}`)), { noOverlap: true, name: 'balance' });
    }
    const services: Services = {
      storage,
      config,
      dispatcher,
      callbacks,
      deliveries,
      balance,
      metrics,
      auth: new Authenticator(storage, config.auth),
    };
    server = await startServer(host, port, { services, log });
    const running = server;
    return {
      url: running.url,
      services,
      healthy: async () => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), 5_000);
        });
        try {
          const db = storage.countByState().then(
            () => true,
            () => false,
          );
          return (await Promise.race([db, timeout])) && dispatcher.alive();
        } finally {
          clearTimeout(timer);
        }
      },
      stop: async () => {
        await running.close();
        await balanceTask?.stop();
        await callbacks!.stop();
        await deliveries!.stop();
        await dispatcher.stop();
        await sim?.stop();
        await storage.close();
      },
    };
  } catch (error) {
    await balanceTask?.stop();
    await callbacks?.stop().catch(() => undefined);
    await deliveries?.stop().catch(() => undefined);
    await dispatcher.stop().catch(() => undefined);
    await sim?.stop().catch(() => undefined);
    await storage.close().catch(() => undefined);
    throw error;
  }
}
