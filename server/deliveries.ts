/**
 * The deliveries worker: pushes received messages (and alerts) out, from the `deliveries` outbox that
 * sql/inbox.ts fills in the same transaction as the message itself.
 *
 * - `webhook`: a signed JSON POST (the same headers and HMAC as message callbacks, see callbacks.ts) of
 *   `{"event":"inbox.received"|"inbox.updated","message":{…}}`, or for an alert its own payload.
 * - `command`: the configured program, run without a shell, with the message id as its last argument and the
 *   message in the environment (Gammu RunOnReceive's names, plus SMSGATE_*; see `commandEnv`). Exit status 0 is
 *   success; anything else, or running longer than the timeout (the process is killed), is a failure.
 * - `forward`: the text, prefixed with its sender, queued as a new outgoing message to the rule's number, as the
 *   rule's user, with a msg_id of its own so that a retry never queues it twice.
 *
 * A failure is retried after 10 s, doubling up to 1 h, up to the configured attempts, then marked failed (and
 * logged). Each pass takes what is due under a lease, so several gateway processes never push one thing twice.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Delivery, InboxMessage } from '../sql/inbox.js';
import type { Sim, Storage } from '../sql/storage.js';
import { backoff, postSigned } from './callbacks.js';
import { PassWorker, type PassWorkerOptions } from './pass-worker.js';
import { inboxView, simMap } from './requests.js';

export interface DeliveryWorkerOptions extends PassWorkerOptions {
  storage: Storage;
  secret: string;
  maxAttempts: number;
  /** Webhook receivers' time to answer. */
  timeoutMs: number;
  /** The command hook: program and arguments (empty: none). */
  command: string[];
  commandTimeoutMs: number;
  /** Queues a forwarded text; resolves when it is stored (throws when it cannot be). */
  forward: (delivery: Delivery, message: InboxMessage, text: string) => Promise<void>;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** The environment a command hook gets for a message: Gammu's RunOnReceive variables and ours. */
export function commandEnv(m: InboxMessage, sim: Sim | undefined, event: string): Record<string, string> {
  return {
    // As gammu-smsd's RunOnReceive sets them, for scripts written for it (one message, already decoded).
    SMS_MESSAGES: '1',
    SMS_1_NUMBER: m.sender,
    SMS_1_TEXT: m.text,
    SMS_1_CLASS: String(m.class ?? -1),
    DECODED_PARTS: '1',
    DECODED_1_TEXT: m.text,
    SMSGATE_EVENT: event,
    SMSGATE_ID: String(m.id),
    SMSGATE_FROM: m.sender,
    SMSGATE_TEXT: m.text,
    SMSGATE_ENCODING: m.encoding,
    SMSGATE_CLASS: m.class === null ? '' : String(m.class),
    SMSGATE_PARTS: String(m.parts),
    SMSGATE_PARTS_RECEIVED: String(m.partsReceived),
    SMSGATE_COMPLETE: m.complete ? '1' : '0',
    SMSGATE_SENT_AT: m.sentAt ?? '',
    SMSGATE_RECEIVED_AT: new Date(m.receivedAt).toISOString(),
    SMSGATE_SIM_ID: m.simId === null ? '' : String(m.simId),
    SMSGATE_SIM_NUMBER: sim?.number ?? '',
    SMSGATE_SIM_IMSI: sim?.imsi ?? '',
    SMSGATE_SIM_LABEL: sim?.label ?? '',
  };
}

/**
 * The whole environment of a hook: a few of the gateway's own (PATH, HOME, locale, time zone) and the message's —
 * not the rest of the gateway's (its database URL may hold a password). NUL cannot be in an environment: dropped.
 */
function hookEnv(message: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'USER', 'LOGNAME']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  for (const [name, value] of Object.entries(message)) env[name] = value.replace(/\0/g, '');
  return env;
}

/** The text a forwarding rule sends: the sender, then the message. */
export function forwardText(m: InboxMessage): string {
  return `From ${m.sender}: ${m.text}`;
}

export class DeliveryWorker extends PassWorker {
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  constructor(private readonly options: DeliveryWorkerOptions) {
    super('deliveries', options);
  }

  /**
   * One pass: 4 at a time, each batch claimed just before it runs (so a lease never ages while its delivery
   * waits its turn), until nothing is due or 100 went.
   */
  async runOnce(): Promise<void> {
    const longest = Math.max(this.options.timeoutMs, this.options.commandTimeoutMs);
    for (let done = 0; done < 100 && !this.stopped; ) {
      const due = await this.options.storage.inbox.claimDeliveries(this.owner, this.clock(), longest + 30_000, 4);
      if (due.length === 0) return;
      const sims = await simMap(this.options.storage);
      await Promise.all(due.map((d) => this.deliver(d, sims)));
      done += due.length;
    }
  }

  private async deliver(d: Delivery, sims: Map<number, Sim>): Promise<void> {
    const { storage } = this.options;
    let message: InboxMessage | null = null;
    let problem: string | null;
    try {
      message = d.inboxId === null ? null : await storage.inbox.get(d.inboxId);
      problem = await this.attempt(d, message, sims);
    } catch (error) {
      // Whatever went wrong counts as a failed attempt: a delivery never loops on an exception.
      problem = (error as Error).message;
    }
    const attempt = d.attempts + 1;
    const now = this.clock();
    const fields = { delivery_id: d.id, inbox_id: d.inboxId, kind: d.kind, target: d.target, attempt };
    if (problem === null) {
      await storage.inbox.finishDelivery(d.id, this.owner, { error: null, retryAt: null }, now);
      return;
    }
    if (attempt >= this.options.maxAttempts) {
      await storage.inbox.finishDelivery(d.id, this.owner, { error: `${problem}; gave up after ${attempt} attempt(s)`, retryAt: null }, now);
      await storage.logEvent({ kind: 'delivery.failed', simId: message?.simId ?? null, detail: { delivery: d.id, inbox: d.inboxId, kind: d.kind, target: d.target, error: problem, attempts: attempt } }, now);
      this.log(`${d.kind} delivery ${d.id} to ${d.target} given up after ${attempt} attempt(s): ${problem}`, fields);
      return;
    }
    const retryAt = now + backoff(attempt, this.options.baseDelayMs ?? 10_000, this.options.maxDelayMs ?? 3_600_000);
    await storage.inbox.finishDelivery(d.id, this.owner, { error: problem, retryAt }, now);
    this.log(`${d.kind} delivery ${d.id} to ${d.target} failed (attempt ${attempt}), retrying: ${problem}`, fields);
  }

  /** One try at a delivery; null when it went through, else what went wrong. */
  private async attempt(d: Delivery, message: InboxMessage | null, sims: Map<number, Sim>): Promise<string | null> {
    const event = d.payload ?? 'inbox.received';
    if (d.kind !== 'alert' && !message) return `received message ${d.inboxId} is gone`;
    if (d.kind === 'webhook' || d.kind === 'alert') {
      // The delivery id lets a receiver drop a repeat (a post that went through but whose answer was lost).
      const body = d.kind === 'alert' ? d.payload! : JSON.stringify({ event, delivery_id: d.id, message: inboxView(message!, sims) });
      const name = d.kind === 'alert' ? String((JSON.parse(d.payload!) as { event?: unknown }).event ?? 'alert') : event;
      return postSigned(d.target, body, { secret: this.options.secret, event: name, timeoutMs: this.options.timeoutMs, at: this.clock(), agent: 'smsgate-inbox' });
    }
    if (d.kind === 'command') return this.runCommand(message!, sims.get(message!.simId ?? -1), event);
    await this.options.forward(d, message!, forwardText(message!));
    return null;
  }

  /** Runs the command hook; null when it exited 0, else what went wrong. */
  private runCommand(m: InboxMessage, sim: Sim | undefined, event: string): Promise<string | null> {
    const [program, ...args] = this.options.command;
    if (!program) return Promise.resolve('no command is configured (inbound.command)');
    return new Promise((resolve) => {
      execFile(
        program,
        [...args, String(m.id)],
        { env: hookEnv(commandEnv(m, sim, event)), timeout: this.options.commandTimeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 },
        (error, _stdout, stderr) => {
          if (!error) return resolve(null);
          const e = error as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
          const tail = stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 500);
          if (e.killed) resolve(`${program} ran longer than ${this.options.commandTimeoutMs} ms and was killed`);
          else if (typeof e.code === 'number') resolve(`${program} exited with status ${e.code}${tail ? `: ${tail}` : ''}`);
          else resolve(`${program} could not be run: ${e.message}`);
        },
      );
    });
  }
}
