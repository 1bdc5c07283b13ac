/**
 * The channel watchdog: what happens to a channel that stops answering, after re-initialising it failed, and to a
 * channel whose port vanished.
 *
 * Theory of operation. The dispatcher re-initialises an unhealthy channel first (AT, echo, PIN, PDU mode) — the
 * cheap step, often enough. When that fails, `escalate` restarts the modem (AT+CFUN=1,1, or the vendor's reset;
 * see modem.ts), takes every channel of that modem (same IMEI) out of service — their ports are about to go — and
 * waits for the modem to come back. A port that closes by itself (the kernel reset the USB device, a loose cable)
 * goes straight to the wait (`lost`). Waiting means looking for the modem's AT ports every `pollMs` by probing and
 * matching the IMEI, for up to `reappearMs`: USB re-enumeration often gives it new names (ttyUSB2 becomes ttyUSB5).
 * When it is back, the channel rows follow it to the new names (their ids and history stay), new senders are opened
 * and handed to the dispatcher, and traffic flows through it again. When it is not back in time, its channels are
 * marked unhealthy with the reason and an alert goes out; traffic keeps flowing around them. Every step is an
 * event (`channel.reset`, `channel.back`, `channel.lost`) and a metric.
 */
import type { SmsSender } from '../modem/sender.js';
import type { Storage } from '../sql/storage.js';
import type { ChannelSlot } from './dispatcher.js';

export type WatchdogAction = 'reinit' | 'reset' | 'back' | 'lost';

export interface WatchdogOptions {
  /** Restart a modem whose channel re-init failed (default true). */
  reset?: boolean;
  /** How long to wait for a modem to come back (default 90 s). */
  reappearMs?: number;
  /** How often to look for it meanwhile (default 2 s). */
  pollMs?: number;
  /** The AT ports where the modem with this IMEI answers now (probing); empty when it is not there. */
  find: (imei: string) => Promise<string[]>;
  /** Opens (and initialises) a channel on a port, as the first time. */
  open: (port: string) => Promise<SmsSender>;
  /** Told when a modem did not come back (the gateway alerts). */
  onLost?: (imei: string, ports: string[], reason: string) => void;
}

interface Context {
  storage: Storage;
  slots: () => ChannelSlot[];
  /** Takes slots out of the dispatcher (they are closed by the watchdog). */
  remove: (slot: ChannelSlot) => void;
  add: (channelId: number, simId: number, sender: SmsSender) => void;
  clock: () => number;
  log: (line: string, fields?: Record<string, unknown>) => void;
  observe: (action: WatchdogAction) => void;
}

export class Watchdog {
  /** The modems being waited for, by IMEI: the channels that went away with them. */
  private readonly waiting = new Map<string, { channelId: number; simId: number; port: string }[]>();
  private readonly tasks = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly context: Context,
    private readonly options: WatchdogOptions,
  ) {}

  /** Whether the modem of this channel is being waited for (its slot is gone meanwhile). */
  isWaiting(imei: string): boolean {
    return this.waiting.has(imei);
  }

  /** Re-init did not help: restart the modem and wait for it. Resolves when the reset went out (not when it is back). */
  async escalate(slot: ChannelSlot): Promise<void> {
    const imei = await this.imeiOf(slot.channelId);
    if (!imei || this.waiting.has(imei) || this.options.reset === false || !slot.sender.reset || this.stopped) return;
    this.waiting.set(imei, []);
    const { storage, log } = this.context;
    let command: string;
    try {
      command = await slot.sender.reset();
    } catch (error) {
      this.waiting.delete(imei);
      log(`watchdog: ${slot.sender.label} refused to restart: ${(error as Error).message}`, { channel: slot.sender.label });
      return;
    }
    await storage.logEvent({ kind: 'channel.reset', channelId: slot.channelId, simId: slot.simId, detail: { port: slot.sender.label, imei, command } }, this.context.clock());
    this.context.observe('reset');
    log(`watchdog: restarted the modem on ${slot.sender.label} (${command}); waiting for it to come back`, { channel: slot.sender.label, imei });
    // Every channel of that modem goes with it.
    for (const other of await this.slotsOf(imei)) await this.takeOut(other, imei);
    this.wait(imei);
  }

  /** A channel's port closed by itself: wait for its modem to come back (with the other channels that went too). */
  async lost(slot: ChannelSlot): Promise<void> {
    const imei = await this.imeiOf(slot.channelId);
    if (!imei || this.stopped) return;
    const waiting = this.waiting.has(imei);
    if (!waiting) this.waiting.set(imei, []);
    await this.takeOut(slot, imei);
    if (!waiting) {
      this.context.log(`watchdog: the port ${slot.sender.label} went away; waiting for its modem (IMEI ${imei}) to come back`, { channel: slot.sender.label, imei });
      this.wait(imei);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.tasks]);
  }

  private async takeOut(slot: ChannelSlot, imei: string): Promise<void> {
    if (!this.context.slots().includes(slot)) return;
    this.context.remove(slot);
    this.waiting.get(imei)?.push({ channelId: slot.channelId, simId: slot.simId, port: slot.sender.label });
    await this.context.storage.setChannelHealth(slot.channelId, false, 'the modem is restarting; waiting for it to come back', this.context.clock());
    await slot.sender.close().catch(() => undefined);
  }

  private wait(imei: string): void {
    const task = this.waitFor(imei)
      .catch((error: unknown) => this.context.log(`watchdog: waiting for IMEI ${imei} failed: ${(error as Error).message}`, { imei }))
      .finally(() => {
        this.waiting.delete(imei);
        this.tasks.delete(task);
      });
    this.tasks.add(task);
  }

  private async waitFor(imei: string): Promise<void> {
    const { storage, log } = this.context;
    const until = Date.now() + (this.options.reappearMs ?? 90_000);
    while (!this.stopped && Date.now() < until) {
      await new Promise((r) => setTimeout(r, this.options.pollMs ?? 2_000));
      if (this.stopped) return;
      const ports = (await this.options.find(imei).catch(() => [] as string[])).sort();
      if (ports.length === 0) continue;
      const gone = [...(this.waiting.get(imei) ?? [])].sort((a, b) => a.port.localeCompare(b.port));
      if (gone.length === 0) return;
      const simId = gone[0]!.simId;
      const moved: { from: string; to: string }[] = [];
      for (let i = 0; i < ports.length; i++) {
        const port = ports[i]!;
        const old = gone[i];
        let sender: SmsSender;
        try {
          sender = await this.options.open(port);
        } catch (error) {
          log(`watchdog: the modem (IMEI ${imei}) is back on ${port} but does not open: ${(error as Error).message}`, { imei, channel: port });
          continue;
        }
        const channel = old ? await storage.moveChannel(old.channelId, port, this.context.clock()) : await storage.upsertChannel({ port, imei, simId });
        await storage.setChannelHealth(channel.id, true, null, this.context.clock());
        this.context.add(channel.id, old?.simId ?? simId, sender);
        moved.push({ from: old?.port ?? '', to: port });
        await storage.logEvent({ kind: 'channel.back', channelId: channel.id, simId: old?.simId ?? simId, detail: { imei, from: old?.port ?? null, to: port } }, this.context.clock());
      }
      if (moved.length === 0) continue;
      this.context.observe('back');
      log(`watchdog: the modem (IMEI ${imei}) is back: ${moved.map((m) => (m.from && m.from !== m.to ? `${m.from} -> ${m.to}` : m.to)).join(', ')}`, { imei });
      return;
    }
    if (this.stopped) return;
    const gone = this.waiting.get(imei) ?? [];
    const reason = `the modem (IMEI ${imei}) did not come back within ${Math.round((this.options.reappearMs ?? 90_000) / 1000)} s`;
    for (const g of gone) {
      await storage.setChannelHealth(g.channelId, false, reason, this.context.clock());
      await storage.logEvent({ kind: 'channel.lost', channelId: g.channelId, simId: g.simId, detail: { imei, port: g.port } }, this.context.clock());
    }
    this.context.observe('lost');
    log(`watchdog: ${reason}; its channels stay out of service`, { imei });
    this.options.onLost?.(imei, gone.map((g) => g.port), reason);
  }

  private async slotsOf(imei: string): Promise<ChannelSlot[]> {
    const channels = await this.context.storage.listChannels();
    const ids = new Set(channels.filter((c) => c.imei === imei && c.boxId === 0).map((c) => c.id));
    return this.context.slots().filter((s) => ids.has(s.channelId));
  }

  private async imeiOf(channelId: number): Promise<string | null> {
    const channel = (await this.context.storage.listChannels()).find((c) => c.id === channelId);
    return channel && channel.boxId === 0 ? channel.imei : null;
  }
}
