/**
 * The dispatcher: drains the durable queue through the channels.
 *
 * Theory of operation. `wake()` is called whenever something may let a message go — a new message, a channel
 * becoming free, a settings change — and a node-cron tick (every second, noOverlap) calls it anyway as a safety net;
 * wake-ups while a drain runs are folded into one more drain, so there is never more than one. A drain claims the
 * due messages (a lease per message, see sql/storage.ts), and for each asks the rules (rules.ts) which SIM can take
 * it now. A message no SIM can take goes back to the queue with the reason in words and the time to look again.
 * For a taken message the SIM's quota is reserved, the message is marked `sending` (before any AT+CMGS), and the
 * send runs on an idle channel of that SIM while the drain goes on; all parts go through that one channel.
 *
 * The send's outcome decides what follows, by the modem layer's retry class: sent -> `sent` with its part
 * references; `permanent` -> `failed` at once; `retry-other` -> queued again now, avoiding that SIM; `retry-same` ->
 * queued again after an exponential back-off; attempts used up -> `failed`; `unknown` (the PDU went out, no answer)
 * -> `unknown`, never resent by itself. A channel that fails three times running, or times out, is marked unhealthy
 * and re-initialised in the background; traffic flows around it meanwhile. A channel whose port closed (unplugged)
 * is dropped. Housekeeping (every 30 s): expired leases (`recoverStale`), history retention, and health checks of
 * the idle channels (a healthy one must answer; an unhealthy one is re-initialised).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import cron, { type ScheduledTask } from 'node-cron';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import type { PartResult } from '../modem/modem.js';
import type { SmsSender, StatusReportEvent } from '../modem/sender.js';
import type { Message, Sim, StartOutcome, StartVia, Storage } from '../sql/storage.js';
import { InboundCollector, type InboundOptions } from './inbound.js';
import { type RouteRule, type SimState, billingPeriod, selectSim } from './rules.js';
import { Watchdog, type WatchdogAction, type WatchdogOptions } from './watchdog.js';

export interface DispatcherOptions {
  storage: Storage;
  /** This process's lease owner name (default host:pid:random). */
  owner?: string;
  /** How long a claimed message is ours before someone else may take it (default 60 s). */
  leaseMs?: number;
  /** How long a message may be `sending` before a restart takes it for cut off (default 10 min). */
  sendLeaseMs?: number;
  /** First back-off after a transient error; doubles with each attempt (default 30 s). */
  retryBaseMs?: number;
  /** How soon to look again at a message no SIM can take now and that names no time (default 15 s). */
  recheckMs?: number;
  /** Failures in a row that make a channel unhealthy (default 3). */
  unhealthyAfter?: number;
  /** Days of finished history to keep (default 90; 0 keeps everything). */
  retentionDays?: number;
  routes?: RouteRule[];
  /** Keep a recipient on the SIM it last got a message from (default false). */
  affinity?: boolean;
  /**
   * What happens to a message whose fate is unknown (the PDU went out without an answer, or the gateway died while
   * sending): 'hold' (default) keeps it `unknown` until someone asks for a resend, accepting that it may not have
   * been sent; 'resend' queues it again at once, accepting that the recipient may get it twice.
   */
  onUnknown?: 'hold' | 'resend';
  /** Let a busy channel claim its next message in advance (default true). */
  prefetch?: boolean;
  /** Run the cron ticks (default true; tests may drive wake() themselves). */
  cron?: boolean;
  clock?: () => number;
  /** Log lines; `fields` carry the message id, SIM and channel of every line about a send. */
  log?: (line: string, fields?: Record<string, unknown>) => void;
  /** Told of each send as it starts and ends (metrics). */
  observer?: SendObserver;
  /** Received messages: how often to sweep, how long parts wait, what is delivered (inbound.ts). */
  inbound?: InboundOptions;
  /** Restart modems that stop answering and find them again by IMEI (watchdog.ts); without it, re-init only. */
  watchdog?: WatchdogOptions;
}

export interface SendObserver {
  /** A message's first AT+CMGS is about to go out, `waitedMs` after it was due (accepted, or its send_at). */
  started(waitedMs: number): void;
  /** How an attempt ended: sent, retry, failed or unknown. */
  finished(result: 'sent' | 'retry' | 'failed' | 'unknown', simId: number): void;
  /** A watchdog step: a channel re-initialised, a modem restarted, back, or lost. */
  watchdog?(action: WatchdogAction): void;
}

/** A channel the dispatcher sends through: a sender, the SIM behind it, and its state. */
export interface ChannelSlot {
  channelId: number;
  simId: number;
  sender: SmsSender;
  busy: boolean;
  healthy: boolean;
  failures: number;
  /** When re-init last brought it back: a channel failing again soon after is restarted, not re-initialised. */
  recoveredAt?: number;
  /** Busy with a send (not a health check or re-init): only then may it take its next message in advance. */
  sending?: boolean;
  /** The message this busy channel sends next, claimed in advance (see drainOnce). */
  next?: { message: Message; sim: Sim; period: string } | null;
}

export class Dispatcher {
  readonly owner: string;
  private readonly storage: Storage;
  private readonly slots: ChannelSlot[] = [];
  private readonly clock: () => number;
  private readonly log: (line: string, fields?: Record<string, unknown>) => void;
  private readonly tasks: ScheduledTask[] = [];
  private draining: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** Drain batches in a row that started no send and gave no channel its next message (see drainOnce). */
  private fruitless = 0;
  /** The next drain batch looks at 2^widen times as many messages as there are channels to fill (see drainOnce). */
  private widen = 0;
  /** When the messages no idle SIM may take were last looked at (at most once a second). */
  private lastUnroutableLook = 0;
  /**
   * Reports that matched no message yet: a part's report can come while the message's later parts are still being
   * sent (its references are stored when the last part is done). They are tried again after each send through the
   * SIM, for 10 minutes.
   */
  private readonly unmatchedReports: { slot: ChannelSlot; report: StatusReportEvent; at: number }[] = [];
  /** When a drain last ran to its end (liveness: the ticks keep this fresh while the dispatcher works). */
  lastDrainAt = 0;
  /** Takes received messages and stored reports off the channels' modems. */
  readonly inbound: InboundCollector;
  /** Restarts modems that stop answering and finds them again (null: re-init only). */
  readonly watchdog: Watchdog | null;

  constructor(private readonly options: DispatcherOptions) {
    this.storage = options.storage;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.clock = options.clock ?? Date.now;
    this.log = options.log ?? (() => undefined);
    this.inbound = new InboundCollector(
      { storage: this.storage, channels: () => this.slots, report: (slot, report) => this.statusReport(slot, report), clock: this.clock, log: this.log },
      options.inbound,
    );
    this.watchdog = options.watchdog
      ? new Watchdog(
          {
            storage: this.storage,
            slots: () => this.slots,
            remove: (slot) => {
              slot.healthy = false;
              if (this.slots.includes(slot)) this.slots.splice(this.slots.indexOf(slot), 1);
            },
            add: (channelId, simId, sender) => void this.addChannel(channelId, simId, sender),
            clock: this.clock,
            log: this.log,
            observe: (action) => this.options.observer?.watchdog?.(action),
          },
          options.watchdog,
        )
      : null;
  }

  /** Adds a channel; the dispatcher uses it from the next drain on. */
  addChannel(channelId: number, simId: number, sender: SmsSender): ChannelSlot {
    const slot: ChannelSlot = { channelId, simId, sender, busy: false, healthy: true, failures: 0 };
    this.slots.push(slot);
    sender.onReport?.((report) => {
      this.statusReport(slot, report).catch((error: unknown) => this.log(`dispatcher: a status report on ${sender.label} was not stored: ${(error as Error).message}`));
    });
    this.inbound.attach(slot);
    // What came in while nobody listened (the gateway was down, the modem was elsewhere).
    if (this.lastDrainAt > 0 && sender.inbox) this.inbound.sweepInBackground(simId);
    this.wake();
    return slot;
  }

  get channels(): readonly ChannelSlot[] {
    return this.slots;
  }

  /**
   * Recovers what a previous run left behind — expired leases, and every lease of a process of this host that is
   * no longer alive (a gateway killed and restarted) — then starts the ticks.
   */
  async start(): Promise<void> {
    const now = this.clock();
    let unknown = (await this.storage.recoverStale(now)).unknown;
    for (const owner of await this.storage.leaseOwners()) {
      if (owner !== this.owner && deadLocalOwner(owner)) unknown += (await this.storage.recoverOwner(owner, now)).unknown;
    }
    if (unknown > 0) {
      this.log(`dispatcher: ${unknown} message(s) were being sent when the gateway stopped: now 'unknown'`);
      if (this.options.onUnknown === 'resend') {
        for (const m of await this.storage.listMessages({ state: 'unknown', limit: 1000 })) {
          if (m.attempts < m.maxAttempts) await this.storage.resend(m.id, now, { keepAttempts: true });
        }
      }
    }
    this.lastDrainAt = now;
    this.inbound.start();
    if (this.options.cron !== false) {
      this.tasks.push(cron.schedule('* * * * * *', () => this.wake(), { noOverlap: true, name: 'dispatch-tick' }));
      this.tasks.push(cron.schedule('*/30 * * * * *', () => this.housekeeping(), { noOverlap: true, name: 'housekeeping' }));
    }
    this.wake();
  }

  /** Stops the ticks, lets the sends in flight finish, and closes the channels. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const task of this.tasks.splice(0)) await task.stop();
    await this.watchdog?.stop();
    await this.inbound.stop();
    await this.draining;
    // Sends may start more (a channel's next message, a give-back) while they end: wait until none is left.
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    for (const slot of this.slots.splice(0)) await slot.sender.close().catch(() => undefined);
  }

  /** Something changed that may let a message go: drain now (one drain at a time, wake-ups folded). */
  wake(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = (async () => {
      this.fruitless = 0;
      this.widen = 0;
      do {
        this.again = false;
        try {
          await this.drainOnce();
          this.lastDrainAt = this.clock();
        } catch (error) {
          this.log(`dispatcher: drain failed: ${(error as Error).message}`);
        }
      } while (this.again && !this.stopped);
      this.draining = null;
    })();
  }

  /**
   * Whether the dispatcher is alive: its ticks keep draining (a drain stuck on the database or a lock stops them).
   * Always true without ticks (tests drive it) and before start.
   */
  alive(now = this.clock()): boolean {
    if (this.options.cron === false || this.tasks.length === 0 || this.stopped) return true;
    return now - this.lastDrainAt < 15_000;
  }

  /** Resolves when no drain and no send is running (tests, graceful stop). */
  async idle(): Promise<void> {
    while (this.draining || this.inFlight.size > 0) {
      await this.draining;
      await Promise.allSettled([...this.inFlight]);
    }
  }

  /** A SIM setting changed (quota, quiet hours, owners): look at the waiting messages at once. */
  async settingsChanged(): Promise<void> {
    await this.storage.wakeWaiting(this.clock());
    this.wake();
  }

  private async housekeeping(): Promise<void> {
    const now = this.clock();
    await this.storage.checkpoint();
    await this.storage.recoverStale(now);
    const days = this.options.retentionDays ?? 90;
    if (days > 0) await this.storage.purgeHistory(now - days * 86_400_000);
    if (days > 0) await this.storage.inbox.purge(now - days * 86_400_000);
    await this.checkChannels();
    await this.inbound.tick();
  }


  /**
   * Health checks of the idle channels: a healthy one must still answer, an unhealthy one is re-initialised. A
   * channel is held (busy) while it is checked, so no send meets the check.
   */
  async checkChannels(): Promise<void> {
    // A port that closed while idle (unplugged, reset by the kernel): the watchdog waits for it to come back.
    for (const slot of this.slots.filter((s) => !s.busy && !s.sender.isOpen)) await this.portClosed(slot, 'the port closed');
    for (const slot of this.slots.filter((s) => !s.busy && s.sender.isOpen)) {
      // A send may have taken it while the channels before it were checked.
      if (slot.busy || !this.slots.includes(slot)) continue;
      slot.busy = true;
      let escalate = false;
      try {
        if (slot.healthy) {
          const radio = await slot.sender.check();
          if (radio) await this.storage.setChannelRadio(slot.channelId, radio, this.clock());
        } else {
          this.options.observer?.watchdog?.('reinit');
          await slot.sender.recover();
        }
        if (!slot.healthy) {
          slot.healthy = true;
          slot.failures = 0;
          await this.storage.logEvent({ kind: 'channel.recovered', channelId: slot.channelId });
        }
        await this.storage.setChannelHealth(slot.channelId, true, null, this.clock());
      } catch (error) {
        if ((error as SmsgateError).code === ErrorCodes.PortClosed || !slot.sender.isOpen) {
          // The port went away under the check: the watchdog's business, not a re-init's.
          slot.busy = false;
          await this.portClosed(slot, (error as Error).message);
          continue;
        }
        if (slot.healthy) await this.storage.logEvent({ kind: 'channel.unhealthy', channelId: slot.channelId, detail: { error: (error as Error).message } });
        // A healthy channel that stops answering is re-initialised at the next check; one that re-init could not
        // bring back is escalated.
        else escalate = true;
        slot.healthy = false;
        await this.storage.setChannelHealth(slot.channelId, false, (error as Error).message, this.clock());
      } finally {
        slot.busy = false;
      }
      if (escalate) this.escalate(slot);
    }
    this.wake();
  }

  /** Hands a channel re-init could not bring back to the watchdog (in the background). */
  private escalate(slot: ChannelSlot): void {
    this.watchdog?.escalate(slot).catch((error: unknown) => this.log(`watchdog: ${slot.sender.label}: ${(error as Error).message}`, { channel: slot.sender.label }));
  }

  /** A channel whose port is gone: out of service; the watchdog (if any) waits for the modem to come back. */
  private async portClosed(slot: ChannelSlot, why: string): Promise<void> {
    slot.healthy = false;
    if (slot.next && !slot.sending) {
      this.giveBack(slot.next.message);
      slot.next = null;
    }
    await this.storage.setChannelHealth(slot.channelId, false, `port closed: ${why}`, this.clock());
    if (this.watchdog) await this.watchdog.lost(slot);
    if (this.slots.includes(slot)) this.slots.splice(this.slots.indexOf(slot), 1);
  }

  private async drainOnce(): Promise<void> {
    const idle = this.slots.filter(ready);
    // A busy channel takes its next message in advance (claimed, not yet started), so that it starts the moment the
    // modem is done: no claim between two sends on the busiest path.
    const spare = this.options.prefetch === false ? [] : this.slots.filter((s) => spareFor(s) && this.prefetchSims.has(s.simId));
    if (idle.length + spare.length === 0) return;
    const now = this.clock();
    const leaseMs = this.options.leaseMs ?? 60_000;
    // What the idle SIMs may take first; then, once a second, up to MAX_LOOK that none may take and that have no
    // reason yet, to tell their users why they wait (once told, they are claimed again only when a SIM they may use
    // has a free channel, so they never crowd out the messages that can go).
    const simIds = [...new Set([...idle, ...spare].map((s) => s.simId))];
    // As many as there are channels to fill. When all came and channels are still idle after (some could not go:
    // pacing, quota), the drain runs again, and looks at twice as many each time nothing started but messages
    // learned why they wait (those that cannot go are given back in one commit however many): a backlog learns why
    // in a few batches, not a few per second.
    const limit = Math.min(Math.max(MAX_LOOK, idle.length + spare.length), (idle.length + spare.length) * 2 ** this.widen);
    const claimed = await this.storage.claimDue(this.owner, now, leaseMs, limit, { simIds });
    const full = claimed.length === limit;
    let started = 0;
    if (now - this.lastUnroutableLook >= 1000) {
      this.lastUnroutableLook = now;
      claimed.push(...(await this.storage.claimDue(this.owner, now, leaseMs, MAX_LOOK, { simIds, unroutable: true })));
    }
    if (claimed.length === 0) return;
    // Launched together, not one after the other: each channel's AT+CMGS goes out at once, and their starts share
    // one commit (requestStart). A start that does not happen (another process took the quota) is known only then;
    // until then this batch counts its parts as taken, which can only hold a message back, never overrun a quota.
    const launches: Promise<{ started: boolean } | { error: unknown }>[] = [];
    // The messages that cannot go now, given back with their reason in one commit once the launches have theirs —
    // also when the batch breaks off on an error (they are not left claimed until their lease runs out).
    const releases: { id: number; reason: string; nextAttemptAt: number }[] = [];
    let outcomes: Awaited<(typeof launches)[number]>[];
    try {
      const sims = await this.simStates(now);
      const admins = new Map<number, boolean>();
      for (const message of claimed) {
        if (!admins.has(message.userId)) admins.set(message.userId, (await this.storage.getUser(message.userId))?.role === 'admin');
        const affinitySimId = this.options.affinity ? await this.storage.lastSimFor(message.recipient) : null;
        const choice = selectSim(
          {
            userId: message.userId,
            isAdmin: admins.get(message.userId),
            parts: message.parts,
            recipient: message.recipient,
            avoidSimId: message.avoidSimId,
            wantSimId: message.wantSimId,
          },
          sims,
          now,
          { routes: this.options.routes, affinitySimId },
        );
        if (choice.sim === null) {
          releases.push({
            id: message.id,
            reason: choice.reason,
            nextAttemptAt: choice.reason === 'all channels are busy' ? now : (choice.retryAt ?? now + (this.options.recheckMs ?? 15_000)),
          });
          continue;
        }
        const state = sims.find((s) => s.sim.id === choice.sim.id)!;
        const period = billingPeriod(choice.sim.billingDay, now);
        // What this batch has taken counts for the next messages of the batch.
        state.taken += message.parts;
        state.sim = { ...state.sim, lastSentAt: now };
        const slot = this.slots.find((s) => s.simId === choice.sim.id && ready(s));
        // Only a busy channel of this SIM could take it (see simStates): that channel's next message — if the view
        // the choice was made on still holds (a health check may have taken the idle channel meanwhile).
        const spareSlot = slot || !this.mayPrefetch(choice.sim) ? undefined : this.slots.find((s) => s.simId === choice.sim.id && spareFor(s));
        if (slot) {
          launches.push(
            // Settled into a value at once: a rejection must not sit unhandled while the drain goes on.
            this.launch(message, slot, choice.sim, period, now).then(
              (launched) => {
                if (!launched) state.taken -= message.parts;
                return { started: launched !== null };
              },
              (error: unknown) => ({ error }),
            ),
          );
        } else if (spareSlot) {
          spareSlot.next = { message, sim: choice.sim, period };
          started++;
        } else {
          state.taken -= message.parts;
          releases.push({ id: message.id, reason: 'all channels are busy', nextAttemptAt: now });
        }
        state.idleChannel = this.freeChannel(state.sim);
      }
    } finally {
      outcomes = await Promise.all(launches);
      await this.storage.releaseMany(this.owner, releases, now);
    }
    started += outcomes.filter((o) => 'started' in o && o.started).length;
    const failed = outcomes.find((o) => 'error' in o);
    if (failed && 'error' in failed) throw failed.error;
    // Channels still idle after a full batch: the next messages may go (or get their reason). A few batches in a
    // row that start nothing are the limit: messages handed back for "now" must not make the drain spin. The next
    // batch looks at twice as many only while batches tell messages something new (a first reason, or another):
    // looking again at messages that wait for the same reason as before learns nothing and costs writes.
    const before = new Map(claimed.map((m) => [m.id, m.reason]));
    const learned = releases.some((r) => before.get(r.id) !== r.reason);
    this.fruitless = started > 0 ? 0 : this.fruitless + 1;
    this.widen = started > 0 || !learned ? 0 : Math.min(this.widen + 1, 6);
    if (full && this.fruitless < 8 && this.slots.some(ready)) this.again = true;
  }

  /**
   * Starts a claimed message on a channel. Null when it cannot start (quota taken by another process, or the message
   * no longer ours): the channel is freed once the modem is done with the called-off command. Else `submitted`
   * resolves when the modem has the message (its PDU written) or the send ended without that.
   *
   * The start — quota reserved, the message `sending` — is committed before any of the message goes out, but while
   * AT+CMGS travels to the modem and the prompt comes back: the send asks for it (`ready`) once the command is
   * written and holds the PDU back until it is committed; if it is not to be, ESC calls the message off. Channels
   * that start together share one commit (requestStart).
   */
  private async launch(message: Message, slot: ChannelSlot, sim: Sim, period: string, now: number): Promise<{ submitted: Promise<void> } | null> {
    slot.busy = true;
    // From here until the modem has the message, this channel is on the busiest path (see quiet()).
    const leave = this.enterStart();
    const launchedAt = this.clock();
    const via: StartVia = { simId: sim.id, channelId: slot.channelId, leaseMs: this.options.sendLeaseMs ?? 600_000, period, parts: message.parts, quota: sim.monthlyQuota };
    let start: Promise<StartOutcome> | null = null;
    let asked!: () => void;
    const askedFor = new Promise<void>((resolve) => (asked = resolve));
    const begin = (): Promise<StartOutcome> => {
      start ??= this.requestStart({ id: message.id, owner: this.owner, via, now });
      asked();
      return start;
    };
    let resolveSubmitted!: () => void;
    const submitted = new Promise<void>((resolve) => (resolveSubmitted = resolve));
    const markSubmitted = () => {
      leave();
      resolveSubmitted();
    };
    const sending = (async () =>
      slot.sender.send(
        {
          to: message.recipient,
          text: message.text,
          encoding: message.encoding === 'gsm7' || message.encoding === 'ucs2' ? message.encoding : 'auto',
          flash: message.flash,
          replace: message.replaceId ?? undefined,
          report: message.report,
        },
        {
          ready: async () => {
            const outcome = await begin();
            if (outcome !== 'started') throw new SendCalledOff(message.id, outcome);
          },
          submitted: markSubmitted,
        },
      ))();
    const settled = sending.then(
      () => undefined,
      () => undefined,
    );
    // The outcome is needed now: asked for by the send — or here, when the send ended before it got that far (it
    // could not be encoded, the port failed: nothing went out) or the channel is still busy with something else.
    await firstOf([askedFor, settled], 20);
    let outcome: StartOutcome;
    try {
      outcome = await begin();
    } catch (error) {
      // The database failed us before the send: nothing goes out (the send is called off); the message's lease runs
      // out by itself.
      this.afterCalledOff(slot, settled, leave);
      throw error;
    }
    if (outcome !== 'started') {
      this.afterCalledOff(slot, settled, leave);
      // The SIM's quota was used up meanwhile (by another gateway process, or a message claimed for another channel
      // of this SIM): chosen again at once, on the usage as it now is — another SIM may have room, else the reason
      // says none has. A lost message is no longer ours (cancelled, lease taken).
      if (outcome === 'quota') await this.storage.release(message.id, this.owner, { reason: `the quota of SIM ${sim.id} was used up meanwhile`, nextAttemptAt: this.clock() });
      return null;
    }
    slot.sending = true;
    if (message.attempts === 0) this.options.observer?.started(Math.max(0, launchedAt - (message.sendAt ?? message.createdAt)));
    // Once the modem has this message, the channel waits for the network: the time for work that must not sit
    // between two sends — the previous messages' bookkeeping (see send) and claiming this channel's next message.
    void submitted
      .then(() => this.quiet(QUIET_MAX_MS))
      .then(() => {
        if (this.options.prefetch !== false && spareFor(slot) && this.prefetchSims.has(slot.simId)) this.wake();
      });
    // Frees the channel once, when the modem is done with this message (the bookkeeping may go on after it): the
    // channel's next message, if it has one, starts at once; else the channel is idle and the dispatcher wakes.
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      slot.sending = false;
      const next = slot.next;
      slot.next = null;
      if (next && slot.healthy && slot.sender.isOpen && !this.stopped && this.slots.includes(slot)) {
        const starting: Promise<void> = this.launch(next.message, slot, next.sim, next.period, this.clock())
          .then(
            () => undefined,
            (error: unknown) => {
              this.log(`dispatcher: message ${next.message.id}: ${(error as Error).message}`);
            },
          )
          .finally(() => this.inFlight.delete(starting));
        // Tracked from now on: stop() and idle() wait for it as for any send.
        this.inFlight.add(starting);
        return;
      }
      slot.busy = false;
      if (next) this.giveBack(next.message);
      this.wake();
    };
    const send = this.send(message, slot, sim, period, launchedAt, sending, release)
      .catch((error: unknown) => {
        // The database failed us mid-send: the message stays under its lease, and becomes 'unknown' (if it went
        // out) or is released when the lease expires — never lost, never resent by itself.
        this.log(`dispatcher: message ${message.id}: ${(error as Error).message}`);
      })
      .finally(() => {
        this.inFlight.delete(send);
        markSubmitted();
        release();
      });
    this.inFlight.add(send);
    return { submitted };
  }

  /** A send that did not start: its channel is free once the modem is done with the called-off command. */
  private afterCalledOff(slot: ChannelSlot, settled: Promise<void>, leave: () => void): void {
    leave();
    const done: Promise<void> = settled.finally(() => {
      this.inFlight.delete(done);
      slot.busy = false;
      slot.sending = false;
      this.wake();
    });
    this.inFlight.add(done);
  }

  /** Starts that came together, waiting for their one commit. */
  private startBatch: { start: { id: number; owner: string; via: StartVia; now: number }; resolve: (outcome: StartOutcome) => void; reject: (error: unknown) => void }[] = [];

  /**
   * A send's start, committed with the others asked for in the same turn of the event loop: channels whose modems
   * answer together (as they do under load) then share one commit — a commit is the slow part on an SD card.
   */
  private requestStart(start: { id: number; owner: string; via: StartVia; now: number }): Promise<StartOutcome> {
    return new Promise((resolve, reject) => {
      this.startBatch.push({ start, resolve, reject });
      if (this.startBatch.length === 1) setImmediate(() => void this.flushStarts());
    });
  }

  private async flushStarts(): Promise<void> {
    const batch = this.startBatch.splice(0);
    try {
      const outcomes = await this.storage.startSendingMany(batch.map((b) => b.start));
      batch.forEach((b, i) => b.resolve(outcomes[i]!));
    } catch (error) {
      for (const b of batch) b.reject(error);
    }
  }

  /** A message claimed in advance that its channel will not send after all: back to the queue at once. */
  private giveBack(message: Message): void {
    const done: Promise<void> = this.storage
      .release(message.id, this.owner, { nextAttemptAt: this.clock() })
      .then(
        () => undefined,
        (error: unknown) => this.log(`dispatcher: message ${message.id} stays claimed until its lease ends: ${(error as Error).message}`),
      )
      .finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }

  /** How many channels are starting a send: from its start until the modem has the message. */
  private starting = 0;
  private quietWaiters: (() => void)[] = [];

  /** A channel starts a send; the function returned says it is through (once, whatever is called after). */
  private enterStart(): () => void {
    this.starting++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.starting--;
      if (this.starting === 0) for (const waiter of this.quietWaiters.splice(0)) waiter();
    };
  }

  /**
   * Resolves when no channel is starting a send — between a modem's answer and its next PDU every millisecond counts
   * against throughput, so work that may wait (bookkeeping of a sent message, claims in advance) waits for that —
   * or after `maxMs` at the latest.
   */
  private quiet(maxMs: number): Promise<void> {
    if (this.starting === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const index = this.quietWaiters.indexOf(done);
        if (index >= 0) this.quietWaiters.splice(index, 1);
        resolve();
      }, maxMs);
      this.quietWaiters.push(done);
    });
  }

  /** Whether this SIM's busy channels may claim their next message in advance (see prefetchable). */
  private mayPrefetch(sim: Sim): boolean {
    return this.options.prefetch !== false && prefetchable(sim);
  }

  /** Whether a channel of this SIM can take a message now: idle, or sending and free to claim its next one. */
  private freeChannel(sim: Sim): boolean {
    return this.slots.some((s) => s.simId === sim.id && (ready(s) || (spareFor(s) && this.mayPrefetch(sim))));
  }

  /** The SIMs whose channels may claim a next message in advance, as the last look at the SIMs found them. */
  private prefetchSims = new Set<number>();

  /** Every SIM as the rules see it now: three queries, however many SIMs. */
  private async simStates(now: number): Promise<SimState[]> {
    const sims = await this.storage.listSims();
    this.prefetchSims = new Set(sims.filter(prefetchable).map((sim) => sim.id));
    const owners = await this.storage.allSimOwners();
    const usages = await this.storage.usages(sims.map((sim) => ({ simId: sim.id, period: billingPeriod(sim.billingDay, now) })));
    return sims.map((sim) => {
      const usage = usages.get(`${sim.id}:${billingPeriod(sim.billingDay, now)}`)!;
      return {
        sim,
        owners: owners.get(sim.id) ?? [],
        idleChannel: this.freeChannel(sim),
        healthyChannel: this.slots.some((s) => s.simId === sim.id && s.sender.isOpen && s.healthy),
        taken: usage.used + usage.reserved,
      };
    });
  }

  /** A started send's outcome, recorded: sent, retried, failed or unknown. */
  private async send(message: Message, slot: ChannelSlot, sim: Sim, period: string, start: number, sending: Promise<PartResult[]>, release: () => void): Promise<void> {
    let results: PartResult[];
    try {
      results = await sending;
    } catch (error) {
      // Nothing went out: the message itself cannot be encoded (bad number or option). Refuse it for good.
      await this.storage.commitParts(sim.id, period, message.parts, 0);
      const code = error instanceof SmsgateError ? error.code : 'ENCODE';
      await this.storage.markFailed(message.id, this.owner, { errorCode: code, errorText: (error as Error).message, reason: `the message cannot be sent: ${(error as Error).message}` });
      this.log(`message ${message.id} failed: it cannot be encoded: ${(error as Error).message}`, { message_id: message.id, sim: sim.id, channel: slot.sender.label, result: 'failed' });
      this.options.observer?.finished('failed', sim.id);
      return;
    }
    const refs = results.flatMap((r) => (r.status === 'sent' ? [r.reference] : []));
    const failed = results.find((r) => r.status === 'failed');
    const now = this.clock();
    if (!failed) {
      slot.failures = 0;
      // The channel is free now: its next message goes first, and this one's bookkeeping waits until no channel is
      // starting a send (a commit is not cheap on an SD card). The state stays `sending` meanwhile, as during the
      // send: a crash now leaves it `unknown`, never resent.
      release();
      await this.quiet(QUIET_MAX_MS);
      await this.storage.completeSend(
        message.id,
        this.owner,
        refs,
        { simId: sim.id, period, reserved: message.parts },
        { kind: 'message.sent', messageId: message.id, simId: sim.id, channelId: slot.channelId, detail: { refs } },
        now,
      );
      this.log(`message ${message.id} sent: ${refs.length} part(s) in ${now - start} ms`, { message_id: message.id, sim: sim.id, channel: slot.sender.label, result: 'sent', refs });
      if (message.report && this.unmatchedReports.length > 0) await this.retryReports(sim.id);
      this.options.observer?.finished('sent', sim.id);
      // While the channels wait for the network: the moment to fold the database's log back, when it has grown.
      await this.quiet(QUIET_MAX_MS);
      await this.storage.checkpoint();
      return;
    }
    await this.storage.commitParts(sim.id, period, message.parts, refs.length);
    const error = (failed as { error: SmsgateError }).error;
    const errorText = error.message;
    const attempts = message.attempts + 1;
    await this.storage.logEvent(
      { kind: 'message.attempt-failed', messageId: message.id, simId: sim.id, channelId: slot.channelId, detail: { code: error.code, modemCode: error.modemCode, retry: error.retry, text: errorText, partsSent: refs.length } },
      now,
    );
    let result: 'retry' | 'failed' | 'unknown' = 'retry';
    if (error.retry === 'unknown' && this.options.onUnknown === 'resend' && attempts < message.maxAttempts) {
      // Resent as the setting asks — within the message's attempts, as any retry.
      await this.storage.markRetry(message.id, this.owner, { errorCode: error.code, errorText, nextAttemptAt: now, reason: `resending (the last attempt's fate is unknown): ${errorText}` }, now);
    } else if (error.retry === 'unknown') {
      result = 'unknown';
      await this.storage.markUnknown(message.id, this.owner, { errorCode: error.code, errorText, partRefs: refs }, now);
    } else if (error.retry === 'permanent') {
      result = 'failed';
      await this.storage.markFailed(message.id, this.owner, { errorCode: error.code, errorText, reason: `rejected: ${errorText}` }, now);
    } else if (attempts >= message.maxAttempts) {
      result = 'failed';
      await this.storage.markFailed(message.id, this.owner, { errorCode: error.code, errorText, reason: `gave up after ${attempts} attempt(s): ${errorText}` }, now);
    } else if (error.retry === 'retry-other') {
      await this.storage.markRetry(message.id, this.owner, { errorCode: error.code, errorText, nextAttemptAt: now, reason: `retrying on another SIM: ${errorText}`, avoidSimId: sim.id }, now);
    } else {
      const backoff = (this.options.retryBaseMs ?? 30_000) * 2 ** (attempts - 1);
      await this.storage.markRetry(message.id, this.owner, { errorCode: error.code, errorText, nextAttemptAt: now + backoff, reason: `retrying in ${Math.round(backoff / 1000)} s: ${errorText}` }, now);
    }
    this.log(`message ${message.id} attempt ${attempts} ${result === 'retry' ? 'failed, will retry' : `ended ${result}`}: ${errorText}`, {
      message_id: message.id,
      sim: sim.id,
      channel: slot.sender.label,
      result,
      code: error.code,
      modem_code: error.modemCode ?? null,
    });
    this.options.observer?.finished(result, sim.id);
    await this.channelFailed(slot, error);
  }

  /** A status report from a channel: the part it is about gets its status, and the message its rolled-up state. */
  private async statusReport(slot: ChannelSlot, report: StatusReportEvent, retry = false): Promise<boolean> {
    const now = this.clock();
    const message = await this.storage.applyStatusReport(
      { simId: slot.simId, reference: report.reference, recipient: report.recipient, status: report.status, code: report.statusCode, text: report.statusText },
      now,
    );
    const fields = { message_id: message?.id ?? null, sim: slot.simId, channel: slot.sender.label, reference: report.reference, status: report.status, code: report.statusCode };
    if (!message) {
      if (retry) return false;
      if (this.unmatchedReports.length >= 1000) this.unmatchedReports.shift();
      this.unmatchedReports.push({ slot, report, at: now });
      this.log(`status report for reference ${report.reference} to ${report.recipient} matches no sent message yet; kept for 10 minutes`, fields);
      return false;
    }
    await this.storage.logEvent(
      { kind: 'message.report', messageId: message.id, simId: slot.simId, channelId: slot.channelId, detail: { reference: report.reference, status: report.status, code: report.statusCode, text: report.statusText, dischargedAt: report.dischargedAt } },
      now,
    );
    this.log(`message ${message.id}: part ${report.reference} ${report.status} (${report.statusText}); the message is ${message.state}`, fields);
    return true;
  }

  /** Tries the reports kept for this SIM again (a message through it was just marked sent). */
  private async retryReports(simId: number): Promise<void> {
    const now = this.clock();
    for (const kept of [...this.unmatchedReports]) {
      if (now - kept.at > 600_000) this.unmatchedReports.splice(this.unmatchedReports.indexOf(kept), 1);
      else if (kept.slot.simId === simId && (await this.statusReport(kept.slot, kept.report, true))) {
        this.unmatchedReports.splice(this.unmatchedReports.indexOf(kept), 1);
      }
    }
  }

  /** Counts a channel's failure; after too many, or a timeout, it rests and is re-initialised. */
  private async channelFailed(slot: ChannelSlot, error: SmsgateError): Promise<void> {
    if (error.code === ErrorCodes.PortClosed || !slot.sender.isOpen) {
      await this.portClosed(slot, error.message);
      return;
    }
    // Errors about the message or the recipient say nothing about the channel.
    if (error.retry === 'permanent') return;
    slot.failures++;
    if (slot.failures < (this.options.unhealthyAfter ?? 3) && error.code !== ErrorCodes.AtTimeout) return;
    slot.healthy = false;
    await this.storage.setChannelHealth(slot.channelId, false, error.message, this.clock());
    await this.storage.logEvent({ kind: 'channel.unhealthy', channelId: slot.channelId, detail: { error: error.message } });
    // Failing again within 10 minutes of a re-init: re-init does not help this channel; the watchdog restarts it.
    if (this.watchdog && slot.recoveredAt !== undefined && this.clock() - slot.recoveredAt < 600_000) {
      this.log(`dispatcher: ${slot.sender.label} keeps failing after re-init; restarting its modem`, { channel: slot.sender.label });
      slot.recoveredAt = undefined;
      this.escalate(slot);
      return;
    }
    try {
      this.options.observer?.watchdog?.('reinit');
      await slot.sender.recover();
      slot.healthy = true;
      slot.failures = 0;
      slot.recoveredAt = this.clock();
      await this.storage.setChannelHealth(slot.channelId, true, null, this.clock());
      await this.storage.logEvent({ kind: 'channel.recovered', channelId: slot.channelId });
    } catch (recoverError) {
      this.log(`dispatcher: ${slot.sender.label} stays unhealthy: ${(recoverError as Error).message}`);
      this.escalate(slot);
    }
  }
}

/**
 * How long work kept off the busiest path (see quiet()) waits at most: short, since a sent message stays `sending`
 * meanwhile (a crash then leaves it `unknown`).
 */
const QUIET_MAX_MS = 200;

/** The most messages one look of a drain takes: a widened batch, or the look at those no idle SIM may take. */
const MAX_LOOK = 64;

/** A send called off before its PDU went out: its start was not to be. */
class SendCalledOff extends Error {
  constructor(id: number, outcome: StartOutcome) {
    super(`message ${id} was called off before it went out (${outcome === 'quota' ? 'no quota left' : 'no longer ours'})`);
  }
}

/** Resolves when the first of `promises` settles, or after `ms` at the latest. */
async function firstOf(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([...promises.map((p) => p.catch(() => undefined)), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A channel busy sending that has no next message yet (it may take one in advance). */
function spareFor(slot: ChannelSlot): boolean {
  return slot.busy && slot.sending === true && slot.healthy && slot.sender.isOpen && !slot.next;
}

/** A SIM whose next message may be claimed in advance: no pacing and no quiet hours to respect between two sends. */
function prefetchable(sim: Sim): boolean {
  return sim.pacingMs === 0 && sim.quietStart === null && sim.enabled;
}

/** A channel that can take a message now: idle, healthy, its port open. */
function ready(slot: ChannelSlot): boolean {
  return !slot.busy && slot.healthy && slot.sender.isOpen;
}

/** An owner name "host:pid:…" of this host whose process is gone. */
function deadLocalOwner(owner: string): boolean {
  const [host, pid] = owner.split(':');
  if (host !== hostname() || !/^\d+$/.test(pid ?? '')) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
