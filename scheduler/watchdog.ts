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
    let waiting = false;
    try {
      const { storage, log } = this.context;
      // A sibling channel of the modem in the middle of a send finishes it first (a restart would make it unknown).
      const siblings = await this.slotsOf(imei);
      for (let i = 0; i < 600 && siblings.some((s) => s !== slot && s.busy); i++) await new Promise((r) => setTimeout(r, 100));
      let command: string;
      try {
        command = await slot.sender.reset();
      } catch (error) {
        log(`watchdog: ${slot.sender.label} refused to restart: ${(error as Error).message}`, { channel: slot.sender.label });
        return;
      }
      await storage.logEvent({ kind: 'channel.reset', channelId: slot.channelId, simId: slot.simId, detail: { port: slot.sender.label, imei, command } }, this.context.clock());
      this.context.observe('reset');
      log(`watchdog: restarted the modem on ${slot.sender.label} (${command}); waiting for it to come back`, { channel: slot.sender.label, imei });
      // Every channel of that modem goes with it.
      for (const other of await this.slotsOf(imei)) await this.takeOut(other, imei);
      this.wait(imei);
      waiting = true;
    } finally {
      if (!waiting) this.waiting.delete(imei);
    }
  }

  /**
   * A channel's port closed by itself: wait for its modem to come back (with the other channels that went too). A
   * channel whose modem cannot be recognised (no IMEI, a remote box) is reported lost at once.
   */
  async lost(slot: ChannelSlot): Promise<void> {
    if (this.stopped) return;
    const imei = await this.imeiOf(slot.channelId);
    if (!imei) {
      this.context.remove(slot);
      await slot.sender.close().catch(() => undefined);
      const reason = `the port ${slot.sender.label} went away, and its modem has no IMEI to find it again by`;
      await this.context.storage.logEvent({ kind: 'channel.lost', channelId: slot.channelId, simId: slot.simId, detail: { port: slot.sender.label } }, this.context.clock());
      this.context.observe('lost');
      this.context.log(`watchdog: ${reason}`, { channel: slot.sender.label });
      this.options.onLost?.('', [slot.sender.label], reason);
      return;
    }
    const already = this.waiting.has(imei);
    if (!already) this.waiting.set(imei, []);
    try {
      await this.takeOut(slot, imei);
    } finally {
      if (!already) {
        this.context.log(`watchdog: the port ${slot.sender.label} went away; waiting for its modem (IMEI ${imei}) to come back`, { channel: slot.sender.label, imei });
        this.wait(imei);
      }
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

  /**
   * Looks for the modem until each channel that went away is back or the time is up. Ports are paired with the
   * channels in their natural order (ttyUSB2 before ttyUSB10), as USB enumerates a modem's interfaces; a modem that
   * comes back one port at a time is taken back one port at a time.
   */
  private async waitFor(imei: string): Promise<void> {
    const { storage, log } = this.context;
    const until = Date.now() + (this.options.reappearMs ?? 90_000);
    const natural = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });
    const taken = new Set<string>();
    let back = 0;
    while (!this.stopped && Date.now() < until) {
      await new Promise((r) => setTimeout(r, this.options.pollMs ?? 2_000));
      if (this.stopped) return;
      const gone = this.waiting.get(imei) ?? [];
      if (gone.length === 0) break;
      const ports = (await this.options.find(imei).catch(() => [] as string[])).filter((p) => !taken.has(p)).sort(natural);
      if (ports.length === 0) continue;
      gone.sort((a, b) => natural(a.port, b.port));
      for (const port of ports) {
        const old = gone[0];
        if (!old) break;
        let sender: SmsSender;
        try {
          sender = await this.options.open(port);
        } catch (error) {
          log(`watchdog: the modem (IMEI ${imei}) is back on ${port} but does not open yet: ${(error as Error).message}`, { imei, channel: port });
          continue;
        }
        try {
          const channel = await storage.moveChannel(old.channelId, port, this.context.clock());
          await storage.setChannelHealth(channel.id, true, null, this.context.clock());
          await storage.logEvent({ kind: 'channel.back', channelId: channel.id, simId: old.simId, detail: { imei, from: old.port, to: port } }, this.context.clock());
          this.context.add(channel.id, old.simId, sender);
        } catch (error) {
          await sender.close().catch(() => undefined);
          log(`watchdog: taking ${port} back failed: ${(error as Error).message}`, { imei, channel: port });
          continue;
        }
        gone.shift();
        taken.add(port);
        back++;
        this.context.observe('back');
        log(`watchdog: the modem (IMEI ${imei}) is back: ${old.port === port ? port : `${old.port} -> ${port}`}`, { imei, channel: port });
      }
    }
    if (this.stopped) return;
    const gone = this.waiting.get(imei) ?? [];
    if (gone.length === 0) return;
    const reason = `the modem (IMEI ${imei}) did not come back within ${Math.round((this.options.reappearMs ?? 90_000) / 1000)} s${back > 0 ? ` (${gone.length} of its ports)` : ''}`;
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
