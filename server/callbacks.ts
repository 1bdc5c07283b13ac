/**
 * Callbacks: when a message with a `callback_url` changes to a state worth reporting (sent, failed, unknown,
 * cancelled; delivered and undelivered with delivery reports), its row is marked due in the same statement as the
 * change (sql/storage.ts), and this worker POSTs the message's state there as JSON, signed:
 *
 *   X-Smsgate-Timestamp: <unix seconds>
 *   X-Smsgate-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the callbacks secret>
 *
 * A 2xx answer is success. Anything else (an error status, a refused connection, a timeout) is retried after 10 s,
 * doubling up to 1 h, up to the configured attempts; the outbox is the messages table, so a restart loses nothing.
 * Several gateway processes on one database take each callback under a short lease, so one posts it. A state that
 * changes again before its callback went out is reported once, as the newer state.
 */
import { createHmac } from 'node:crypto';
import type { Message, Storage } from '../sql/storage.js';
import { PassWorker, type PassWorkerOptions } from './pass-worker.js';
import { messageView, simMap } from './requests.js';

export interface CallbackOptions extends PassWorkerOptions {
  storage: Storage;
  secret: string;
  maxAttempts: number;
  timeoutMs: number;
  /** First retry delay (default 10 s); doubles per attempt up to maxDelayMs (default 1 h). */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** The signature header's value for a body sent at `timestamp` (unix seconds). */
export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * POSTs a JSON body signed as above; resolves to null when the receiver took it (2xx), else to what went wrong
 * (its status, a refused connection, no answer within `timeoutMs`). Redirects are not followed.
 */
export async function postSigned(url: string, body: string, options: { secret: string; event: string; timeoutMs: number; at: number; agent: string }): Promise<string | null> {
  const timestamp = String(Math.floor(options.at / 1000));
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': options.agent,
        'x-smsgate-event': options.event,
        'x-smsgate-timestamp': timestamp,
        'x-smsgate-signature': signature(options.secret, timestamp, body),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    // The answer's body is not read: only its status counts.
    await response.body?.cancel().catch(() => undefined);
    return response.ok ? null : `the receiver answered ${response.status}`;
  } catch (error) {
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    return (error as Error).name === 'TimeoutError' ? `no answer within ${options.timeoutMs} ms` : `${(error as Error).message}${cause ? `: ${cause}` : ''}`;
  }
}

/** The delay before retry `attempt` (1-based): `base` doubling, at most `max`. */
export function backoff(attempt: number, base: number, max: number): number {
  return Math.min(base * 2 ** (attempt - 1), max);
}

/** What an A2P client expects to hear: its msg_id and a status word. */
function a2pBody(m: Message): Record<string, unknown> {
  return {
    msg_id: m.clientMsgId ?? String(m.id),
    id: m.id,
    to: m.recipient,
    status: m.state,
    status_code: m.errorCode,
    description: m.state === 'failed' || m.state === 'undelivered' || m.state === 'unknown' ? (m.errorText ?? m.reason) : m.state,
    parts: m.parts,
    time: new Date(m.updatedAt).toISOString(),
  };
}

export class CallbackWorker extends PassWorker {
  constructor(private readonly options: CallbackOptions) {
    super('callbacks', options);
  }

  /**
   * One pass over what is due: up to 8 posts at once, and at most 2 to one host per pass, so that a receiver that
   * hangs holds up its own callbacks, not everyone's.
   */
  async runOnce(): Promise<void> {
    const now = this.clock();
    const due = await this.options.storage.dueCallbacks(now, 200);
    if (due.length === 0) return;
    const perHost = new Map<string, number>();
    const queue = due.filter((m) => {
      let host: string;
      try {
        host = new URL(m.callbackUrl!).host;
      } catch {
        host = '';
      }
      const n = perHost.get(host) ?? 0;
      perHost.set(host, n + 1);
      return n < 2;
    });
    const sims = await simMap(this.options.storage);
    const workers = Array.from({ length: Math.min(8, queue.length) }, async () => {
      for (let m = queue.shift(); m; m = queue.shift()) await this.deliver(m, sims);
    });
    await Promise.all(workers);
  }

  private async deliver(m: Message, sims: Awaited<ReturnType<typeof simMap>>): Promise<void> {
    const { storage, timeoutMs } = this.options;
    const now = this.clock();
    // Held for longer than one try can take; a crash mid-post lets it come due again then.
    const lease = now + timeoutMs + 30_000;
    if (!(await storage.claimCallback(m.id, m.callbackDue!, lease))) return;
    const body = JSON.stringify(m.source === 'a2p' ? a2pBody(m) : { event: `message.${m.state}`, message: messageView(m, sims) });
    const problem = await postSigned(m.callbackUrl!, body, { secret: this.options.secret, event: `message.${m.state}`, timeoutMs, at: now, agent: 'smsgate-callback' });
    if (problem === null) {
      await storage.callbackDone(m.id, m.state, lease);
      return;
    }
    const attempt = m.callbackAttempts + 1;
    if (attempt >= this.options.maxAttempts) {
      if (!(await storage.callbackFailed(m.id, lease, `${problem}; gave up after ${attempt} attempt(s)`, null))) return;
      await storage.logEvent({ kind: 'callback.failed', messageId: m.id, detail: { url: m.callbackUrl, error: problem, attempts: attempt } });
      this.log(`callback for message ${m.id} given up after ${attempt} attempt(s): ${problem}`);
      return;
    }
    const delay = backoff(attempt, this.options.baseDelayMs ?? 10_000, this.options.maxDelayMs ?? 3_600_000);
    await storage.callbackFailed(m.id, lease, problem, this.clock() + delay);
  }
}
