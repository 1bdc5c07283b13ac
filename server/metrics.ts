/**
 * Prometheus metrics at /metrics (prom-client, the registry and text format Prometheus' own Node client keeps).
 * What the database knows is read at each scrape — messages by state, queue depth and age, parts sent and quota
 * per SIM, each channel's signal and health — so several gateway processes on one database report one truth. What
 * only this process sees is counted here: how long a due message waited for its AT+CMGS, and how attempts ended.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { billingPeriod } from '../scheduler/rules.js';
import type { SendObserver } from '../scheduler/dispatcher.js';
import { MESSAGE_STATES, type Storage } from '../sql/storage.js';

export interface Metrics {
  registry: Registry;
  observer: SendObserver;
}

export function createMetrics(storage: Storage, live: () => { channelId: number; healthy: boolean; busy: boolean }[] = () => []): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'smsgate_' });
  const simLabel = (s: { id: number; label: string | null; number: string | null }) => ({ sim: String(s.id), sim_name: s.label ?? s.number ?? '' });

  new Gauge({
    name: 'smsgate_messages',
    help: 'Messages in the database, by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await storage.countByState();
      for (const state of MESSAGE_STATES) this.set({ state }, counts[state] ?? 0);
    },
  });
  new Gauge({
    name: 'smsgate_queue_depth',
    help: 'Messages waiting to be sent (queued)',
    registers: [registry],
    async collect() {
      this.set((await storage.countByState()).queued ?? 0);
    },
  });
  new Gauge({
    name: 'smsgate_queue_oldest_age_seconds',
    help: 'Age of the oldest queued message that is due (0 when none)',
    registers: [registry],
    async collect() {
      const oldest = await storage.oldestDue(Date.now());
      this.set(oldest === null ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
    },
  });
  new Counter({
    name: 'smsgate_sim_parts_sent_total',
    help: 'Message parts the network took, per SIM (all billing periods)',
    labelNames: ['sim', 'sim_name'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of await storage.listSims()) this.inc(simLabel(s), await storage.partsSent(s.id));
    },
  });
  const quota = async (which: 'used' | 'left', set: (labels: Record<string, string>, value: number) => void) => {
    const now = Date.now();
    for (const s of await storage.listSims()) {
      const usage = await storage.usage(s.id, billingPeriod(s.billingDay, now));
      const used = usage.used + usage.reserved;
      if (which === 'used') set(simLabel(s), used);
      else if (s.monthlyQuota !== null) set(simLabel(s), Math.max(0, s.monthlyQuota - used));
    }
  };
  new Gauge({
    name: 'smsgate_sim_quota_used_parts',
    help: 'Parts used (and reserved) of this billing period, per SIM',
    labelNames: ['sim', 'sim_name'],
    registers: [registry],
    async collect() {
      this.reset();
      await quota('used', (l, v) => this.set(l, v));
    },
  });
  new Gauge({
    name: 'smsgate_sim_quota_left_parts',
    help: 'Parts left of this billing period, per SIM with a quota',
    labelNames: ['sim', 'sim_name'],
    registers: [registry],
    async collect() {
      this.reset();
      await quota('left', (l, v) => this.set(l, v));
    },
  });
  new Gauge({
    name: 'smsgate_channel_signal_dbm',
    help: 'Signal at the last health check, dBm',
    labelNames: ['channel', 'port', 'sim'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const c of await storage.listChannels()) {
        if (c.signalDbm !== null) this.set({ channel: String(c.id), port: c.port, sim: c.simId === null ? '' : String(c.simId) }, c.signalDbm);
      }
    },
  });
  new Gauge({
    name: 'smsgate_channel_healthy',
    help: '1 when the channel answers and sends, 0 when not (channels this process uses)',
    labelNames: ['channel'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of live()) this.set({ channel: String(s.channelId) }, s.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'smsgate_channel_busy',
    help: '1 while the channel is sending (this process)',
    labelNames: ['channel'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of live()) this.set({ channel: String(s.channelId) }, s.busy ? 1 : 0);
    },
  });

  const latency = new Histogram({
    name: 'smsgate_dispatch_latency_seconds',
    help: 'From a message being due (accepted, or its send_at) to its first AT+CMGS',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const watchdog = new Counter({
    name: 'smsgate_watchdog_actions_total',
    help: 'Watchdog steps on channels that stopped answering: reinit, reset (modem restarted), back (found again), lost',
    labelNames: ['action'],
    registers: [registry],
  });
  const attempts = new Counter({
    name: 'smsgate_send_attempts_total',
    help: 'Send attempts by how they ended (sent, retry, failed, unknown), per SIM',
    labelNames: ['result', 'sim'],
    registers: [registry],
  });
  return {
    registry,
    observer: {
      started: (waitedMs) => latency.observe(waitedMs / 1000),
      finished: (result, simId) => attempts.inc({ result, sim: String(simId) }),
      watchdog: (action) => watchdog.inc({ action }),
    },
  };
}
