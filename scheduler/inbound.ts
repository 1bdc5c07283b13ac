/**
 * The inbound collector: takes received messages and stored status reports off the modems into the database.
 *
 * Theory of operation. Each SIM's storage is swept — AT+CMGL=4 over SM, ME and SR on one healthy channel of the
 * SIM — when the modem announces a message (+CMTI, +CDSI), when the gateway starts, and every `sweepMs` anyway
 * (some modems announce nothing, or only on one of their ports). Sweeps of one SIM run one at a time; requests
 * during a sweep fold into one more. For every received PDU: decode, store (sql/inbox.ts remembers the slot until
 * the delete), then delete it from the modem, then forget the slot — so a crash at any point neither loses a
 * message nor stores it twice. A status report found in storage goes to the dispatcher like a pushed +CDS. A
 * message pushed whole (+CMT) is stored as it comes. Stored outgoing messages (stat 2, 3) are not ours and stay.
 * A PDU that does not decode is stored as it is (encoding "pdu", the hex as its text, sender "(undecodable)") and
 * deleted like any other: nothing is lost, and a full SIM storage never blocks new messages.
 */
import { ErrorCodes, type SmsgateError } from '../modem/errors.js';
import type { StoredSms } from '../modem/modem.js';
import { decodePdu, type DecodedPdu } from '../modem/pdu/index.js';
import { type StatusReportEvent, reportOf } from '../modem/sender.js';
import type { DeliveryPlan, InboxMessage, ReceivedPart } from '../sql/inbox.js';
import type { Storage } from '../sql/storage.js';
import type { ChannelSlot } from './dispatcher.js';

export interface InboundOptions {
  /** How often each SIM is swept without an announcement (default 60 s). */
  sweepMs?: number;
  /** How long the parts of a concatenated message wait for the rest before it surfaces incomplete (default 1 h). */
  incompleteWaitMs?: number;
  /** The deliveries a received message calls for (webhooks, command, forwarding). */
  plan?: DeliveryPlan;
  /** Told of each message that became visible or changed (to wake the delivery worker). */
  onMessage?: (message: InboxMessage) => void;
}

export interface SweepResult {
  /** Messages that became visible or changed. */
  messages: number;
  /** Parts stored that wait for the rest of their set. */
  parts: number;
  /** PDUs that were already stored (deleted from the modem now). */
  duplicates: number;
  reports: number;
  /** PDUs left on the modem: undecodable, or not deleted (the next sweep tries again). */
  left: number;
}

interface Context {
  storage: Storage;
  channels: () => readonly ChannelSlot[];
  report: (slot: ChannelSlot, report: StatusReportEvent) => Promise<unknown>;
  clock: () => number;
  log: (line: string, fields?: Record<string, unknown>) => void;
}

const EMPTY: SweepResult = { messages: 0, parts: 0, duplicates: 0, reports: 0, left: 0 };

export class InboundCollector {
  private readonly running = new Map<number, Promise<SweepResult>>();
  private readonly queued = new Map<number, Promise<SweepResult>>();
  private readonly lastSweep = new Map<number, number>();
  private readonly reported = new Set<string>();
  private stopped = false;
  /** Sweeps wait for start(): the delivery plan may not be ready before. */
  private started = false;

  constructor(
    private readonly context: Context,
    private readonly options: InboundOptions = {},
  ) {}

  /** Listens to a channel's announcements. */
  attach(slot: ChannelSlot): void {
    slot.sender.inbox?.onNotice((notice) => {
      if (!this.started) return; // start() sweeps everything
      const done = notice.kind === 'pushed' ? this.storePushed(slot, notice.pdu) : this.sweep(slot.simId);
      done.catch((error: unknown) => this.context.log(`inbound: SIM ${slot.simId}: ${(error as Error).message}`, { sim: slot.simId, channel: slot.sender.label }));
    });
  }

  /**
   * Sweeps a SIM's storage now; resolves when a sweep that started after this call has run (a call during a sweep
   * waits for one more).
   */
  sweep(simId: number): Promise<SweepResult> {
    const queued = this.queued.get(simId);
    if (queued) return queued;
    const running = this.running.get(simId);
    const next = (running ?? Promise.resolve(EMPTY))
      .catch(() => EMPTY)
      .then(() => {
        this.queued.delete(simId);
        const run = this.sweepOnce(simId).finally(() => this.running.delete(simId));
        this.running.set(simId, run);
        return run;
      });
    this.queued.set(simId, next);
    return next;
  }

  /** The periodic part (housekeeping): sweeps the SIMs not swept for `sweepMs`, surfaces sets that waited too long. */
  async tick(): Promise<void> {
    if (!this.started) return;
    const now = this.context.clock();
    const sims = new Set(this.context.channels().filter((s) => s.sender.inbox).map((s) => s.simId));
    // In the background: a modem slow to list its storage must not hold up the housekeeping that calls this.
    for (const simId of sims) {
      if (now - (this.lastSweep.get(simId) ?? 0) >= (this.options.sweepMs ?? 60_000)) this.sweepInBackground(simId);
    }
    const surfaced = await this.context.storage.inbox.surfaceExpired(now, this.options.incompleteWaitMs ?? 3_600_000, this.plan);
    for (const message of surfaced) {
      this.context.log(`received message ${message.id} from ${message.sender} surfaced incomplete: ${message.partsReceived} of ${message.parts} parts came`, {
        inbox_id: message.id,
        sim: message.simId,
      });
      this.options.onMessage?.(message);
    }
  }

  /** From now on announcements and ticks sweep; sweeps every SIM once (what came while nobody listened). */
  start(): void {
    this.started = true;
    for (const simId of new Set(this.context.channels().filter((s) => s.sender.inbox).map((s) => s.simId))) this.sweepInBackground(simId);
  }

  /** Sweeps a SIM in the background (errors are logged). */
  sweepInBackground(simId: number): void {
    this.sweep(simId).catch((error: unknown) => this.context.log(`inbound: sweeping SIM ${simId} failed: ${(error as Error).message}`, { sim: simId }));
  }

  stop(): Promise<unknown> {
    this.stopped = true;
    return Promise.allSettled([...this.running.values(), ...this.queued.values()]);
  }

  private get plan(): DeliveryPlan {
    return this.options.plan ?? (() => []);
  }

  private async sweepOnce(simId: number): Promise<SweepResult> {
    const slot = this.context.channels().find((s) => s.simId === simId && s.sender.isOpen && s.healthy && s.sender.inbox);
    if (!slot || this.stopped || !this.started) return EMPTY;
    this.lastSweep.set(simId, this.context.clock());
    const result = { ...EMPTY };
    let stored: StoredSms[];
    try {
      stored = await slot.sender.inbox!.list();
    } catch (error) {
      if ((error as SmsgateError).code !== ErrorCodes.PortClosed) this.context.log(`inbound: reading the storage of ${slot.sender.label} failed: ${(error as Error).message}`, { sim: simId, channel: slot.sender.label });
      return result;
    }
    for (const sms of stored) {
      if (this.stopped) break;
      // Stored outgoing messages (2 unsent, 3 sent) are someone else's.
      if (sms.stat === 2 || sms.stat === 3) continue;
      const where = `${sms.memory}:${sms.index}`;
      let decoded: DecodedPdu | null;
      try {
        decoded = decodePdu(sms.pdu, { tpduLength: sms.length });
      } catch (error) {
        this.once(`${simId}:${where}:${sms.pdu}`, `inbound: the PDU in ${where} of ${slot.sender.label} does not decode (${(error as Error).message}); stored as it is`, simId);
        decoded = null;
      }
      if (decoded === null) {
        const outcome = await this.context.storage.inbox.storePart(rawPart(slot, where, sms.pdu), this.context.clock(), this.plan, this.late);
        if (outcome.outcome === 'duplicate') result.duplicates++;
        else result.messages++;
        this.announce(outcome.message, slot);
        await this.remove(slot, sms, where, result, true);
        continue;
      }
      if (decoded.type === 'status-report') {
        const report = reportOf(sms.pdu);
        if (report) await this.context.report(slot, report);
        result.reports++;
        await this.remove(slot, sms, where, result, false);
        continue;
      }
      if (decoded.type !== 'deliver') continue;
      const outcome = await this.context.storage.inbox.storePart(partOf(slot, where, sms.pdu, decoded), this.context.clock(), this.plan, this.late);
      if (outcome.outcome === 'duplicate') result.duplicates++;
      else if (outcome.outcome === 'part') result.parts++;
      else result.messages++;
      this.announce(outcome.message, slot);
      await this.remove(slot, sms, where, result, true);
    }
    return result;
  }

  /** Deletes a message from the modem after it is stored, then forgets its slot; a failed delete is tried next sweep. */
  private async remove(slot: ChannelSlot, sms: StoredSms, where: string, result: SweepResult, remembered: boolean): Promise<void> {
    try {
      await slot.sender.inbox!.delete(sms.memory, sms.index);
    } catch (error) {
      result.left++;
      this.once(`${slot.simId}:${where}:delete`, `inbound: deleting ${where} on ${slot.sender.label} failed (${(error as Error).message}); it is stored, and the next sweep deletes it`, slot.simId);
      return;
    }
    if (remembered) await this.context.storage.inbox.forgetSlot(slot.simId, where);
  }

  /** A message the modem pushed whole (+CMT): stored as it comes; the modem keeps no copy. */
  private async storePushed(slot: ChannelSlot, pdu: string): Promise<void> {
    let part: ReceivedPart;
    try {
      const decoded = decodePdu(pdu);
      if (decoded.type !== 'deliver') return;
      part = partOf(slot, null, pdu, decoded);
    } catch (error) {
      this.context.log(`inbound: a pushed PDU on ${slot.sender.label} does not decode (${(error as Error).message}); stored as it is`, { sim: slot.simId });
      part = rawPart(slot, null, pdu);
    }
    const outcome = await this.context.storage.inbox.storePart(part, this.context.clock(), this.plan, this.late);
    this.announce(outcome.message, slot);
  }

  /** How long after its first part a set surfaced incomplete still takes late parts: twice the wait. */
  private get late(): { lateMs: number } {
    return { lateMs: 2 * (this.options.incompleteWaitMs ?? 3_600_000) };
  }

  private announce(message: InboxMessage | null, slot: ChannelSlot): void {
    if (!message) return;
    this.context.log(
      `received message ${message.id} from ${message.sender} on SIM ${slot.simId}${message.complete ? '' : ` (${message.partsReceived} of ${message.parts} parts)`}`,
      { inbox_id: message.id, sim: slot.simId, channel: slot.sender.label, sender: message.sender, parts: message.parts },
    );
    this.options.onMessage?.(message);
  }

  private once(key: string, line: string, simId: number): void {
    if (this.reported.has(key)) return;
    if (this.reported.size > 10_000) this.reported.clear();
    this.reported.add(key);
    this.context.log(line, { sim: simId });
  }
}

/** A PDU that does not decode, kept whole: its hex is the text. */
function rawPart(slot: ChannelSlot, where: string | null, pdu: string): ReceivedPart {
  return { simId: slot.simId, channelId: slot.channelId, slot: where, pdu, sender: UNDECODABLE, text: pdu.toUpperCase(), encoding: 'pdu', class: null, sentAt: null, concat: null };
}

/** The sender of a message whose PDU did not decode. */
export const UNDECODABLE = '(undecodable)';

/** A decoded SMS-DELIVER as the inbox stores it; 8-bit data is kept as its hex. */
function partOf(slot: ChannelSlot, where: string | null, pdu: string, decoded: DecodedPdu): ReceivedPart {
  return {
    simId: slot.simId,
    channelId: slot.channelId,
    slot: where,
    pdu,
    sender: decoded.number,
    text: decoded.text ?? decoded.data ?? '',
    encoding: decoded.encoding,
    class: decoded.class,
    sentAt: decoded.timestamp,
    concat: decoded.concat ? { ref: decoded.concat.ref, total: decoded.concat.total, seq: decoded.concat.seq, bits: decoded.concat.bits } : null,
  };
}
