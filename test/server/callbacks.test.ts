/**
 * The callback outbox against a real local HTTP receiver: signed posts, retries with back-off when the receiver
 * fails, nothing lost across a restart (a new storage and worker on the same database file), giving up after the
 * configured attempts, and one post per state even when two workers race. Time is the test's clock, not the wall's.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CallbackWorker, signature } from '../../server/callbacks.js';
import { openStorage } from '../../sql/index.js';
import type { Storage } from '../../sql/storage.js';

interface Hit {
  body: any;
  raw: string;
  headers: Record<string, string | string[] | undefined>;
}

let receiver: Server;
let port: number;
const hits: Hit[] = [];
/** Status codes the receiver answers with, in order; then 200. */
let plan: number[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      hits.push({ raw, body: JSON.parse(raw), headers: req.headers });
      res.statusCode = plan.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  port = (receiver.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

let dir: string;
let storage: Storage;
let now: number;
const clock = () => now;
const SECRET = 'test-secret';

function worker(over: Partial<ConstructorParameters<typeof CallbackWorker>[0]> = {}): CallbackWorker {
  return new CallbackWorker({ storage, secret: SECRET, maxAttempts: 4, timeoutMs: 2000, cron: false, clock, baseDelayMs: 1000, ...over });
}

/** A message with a callback URL, claimed and sent by a pretend dispatcher. */
async function sentMessage(url = `http://127.0.0.1:${port}/hook`, source = 'api'): Promise<number> {
  const user = (await storage.getUserByName('u')) ?? (await storage.createUser({ name: 'u', passwordHash: 'x' }));
  const { messages } = await storage.enqueue([{ userId: user.id, recipient: '+79160000001', text: 'hi', encoding: 'gsm7', parts: 1, callbackUrl: url, source, clientMsgId: `c${now}` }], now);
  const id = messages[0]!.id;
  await storage.claimDue('me', now, 60_000, 10);
  await storage.markSending(id, 'me', { simId: 1, channelId: 1, leaseMs: 60_000 }, now);
  await storage.markSent(id, 'me', [7], now);
  return id;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'smsgate-callbacks-'));
  storage = await openStorage(`sqlite:${join(dir, 'db.sqlite')}`);
  now = 1_800_000_000_000;
  hits.length = 0;
  plan = [];
});
afterEach(async () => {
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('callbacks', () => {
  it('post the new state once, signed over timestamp and body', async () => {
    const id = await sentMessage();
    expect((await storage.getMessage(id))!.callbackDue).toBe(now);
    await worker().runOnce();
    expect(hits).toHaveLength(1);
    const hit = hits[0]!;
    expect(hit.body).toMatchObject({ event: 'message.sent', message: { id, state: 'sent', to: '+79160000001', part_refs: [7] } });
    expect(hit.headers['x-smsgate-event']).toBe('message.sent');
    expect(hit.headers['x-smsgate-timestamp']).toBe(String(Math.floor(now / 1000)));
    expect(hit.headers['x-smsgate-signature']).toBe(signature(SECRET, String(hit.headers['x-smsgate-timestamp']), hit.raw));
    expect(hit.headers['x-smsgate-signature']).not.toBe(signature('other', String(hit.headers['x-smsgate-timestamp']), hit.raw));
    const after = (await storage.getMessage(id))!;
    expect(after).toMatchObject({ callbackDue: null, notifiedState: 'sent', callbackError: null });
    await worker().runOnce();
    expect(hits).toHaveLength(1);
  });

  it('retry with back-off when the receiver fails twice, across a restart', async () => {
    plan = [500, 503];
    const id = await sentMessage();
    await worker().runOnce();
    expect(hits).toHaveLength(1);
    let m = (await storage.getMessage(id))!;
    expect(m).toMatchObject({ callbackAttempts: 1, callbackError: 'the receiver answered 500', callbackDue: now + 1000 });
    // Not due yet: nothing is posted.
    now += 500;
    await worker().runOnce();
    expect(hits).toHaveLength(1);
    now += 500;
    await worker().runOnce();
    expect(hits).toHaveLength(2);
    m = (await storage.getMessage(id))!;
    expect(m).toMatchObject({ callbackAttempts: 2, callbackError: 'the receiver answered 503', callbackDue: now + 2000 });
    // The gateway restarts: a new storage and a new worker on the same file find the callback due.
    await storage.close();
    storage = await openStorage(`sqlite:${join(dir, 'db.sqlite')}`);
    now += 2000;
    await worker().runOnce();
    expect(hits).toHaveLength(3);
    expect(hits.map((h) => h.body.message.state)).toEqual(['sent', 'sent', 'sent']);
    expect((await storage.getMessage(id))!).toMatchObject({ callbackDue: null, notifiedState: 'sent', callbackAttempts: 0 });
  });

  it('give up after the configured attempts, and say so in the message and the event log', async () => {
    plan = [500, 500, 500, 500];
    const id = await sentMessage();
    for (let i = 0; i < 4; i++) {
      await worker().runOnce();
      now += 60_000;
    }
    expect(hits).toHaveLength(4);
    const m = (await storage.getMessage(id))!;
    expect(m.callbackDue).toBeNull();
    expect(m.callbackError).toMatch(/gave up after 4 attempt/);
    const events = await storage.listEvents({ messageId: id });
    expect(events.map((e) => e.kind)).toContain('callback.failed');
  });

  it('a state that changes while its callback fails is still reported, at once', async () => {
    const id = await sentMessage();
    // The receiver fails this post; before it answers, the message moves on (a delivery report came).
    plan = [500];
    const original = receiver.listeners('request')[0] as (...args: unknown[]) => void;
    receiver.removeAllListeners('request');
    receiver.on('request', (req, res) => {
      void storage.db.run(`UPDATE messages SET state = 'delivered', callback_due = ?, callback_attempts = 0 WHERE id = ?`, [now, id]).then(() => original(req, res));
    });
    try {
      await worker().runOnce();
    } finally {
      receiver.removeAllListeners('request');
      receiver.on('request', original);
    }
    const m = (await storage.getMessage(id))!;
    expect(m).toMatchObject({ state: 'delivered', callbackDue: now, callbackAttempts: 0 });
    await worker().runOnce();
    expect(hits.map((h) => h.body.event)).toEqual(['message.sent', 'message.delivered']);
    expect((await storage.getMessage(id))!.callbackDue).toBeNull();
  });

  it('count a refused connection as a failure to retry', async () => {
    const id = await sentMessage('http://127.0.0.1:1/closed');
    await worker().runOnce();
    const m = (await storage.getMessage(id))!;
    expect(m.callbackAttempts).toBe(1);
    expect(m.callbackError).toMatch(/fetch failed|ECONNREFUSED/);
  });

  it('two workers on one database post a state once', async () => {
    await sentMessage();
    await Promise.all([worker().runOnce(), worker().runOnce(), worker().runOnce()]);
    expect(hits).toHaveLength(1);
  });

  it('cancelled and unknown states are reported too; queued (a retry) is not', async () => {
    const user = await storage.createUser({ name: 'v', passwordHash: 'x' });
    const url = `http://127.0.0.1:${port}/hook`;
    const { messages } = await storage.enqueue(
      [
        { userId: user.id, recipient: '+79160000002', text: 'a', encoding: 'gsm7', parts: 1, callbackUrl: url },
        { userId: user.id, recipient: '+79160000003', text: 'b', encoding: 'gsm7', parts: 1, callbackUrl: url },
      ],
      now,
    );
    const [a, b] = messages;
    expect(await storage.cancelMessage(a!.id, now)).toBe(true);
    await storage.claimDue('me', now, 60_000, 10);
    await storage.markSending(b!.id, 'me', { simId: 1, channelId: 1, leaseMs: 60_000 }, now);
    await storage.markRetry(b!.id, 'me', { errorCode: 'AT_CMS', errorText: 'x', nextAttemptAt: now, reason: 'r' }, now);
    expect((await storage.getMessage(b!.id))!.callbackDue).toBeNull();
    await storage.claimDue('me', now, 60_000, 10);
    await storage.markSending(b!.id, 'me', { simId: 1, channelId: 1, leaseMs: 60_000 }, now);
    await storage.markUnknown(b!.id, 'me', { errorCode: 'AT_TIMEOUT', errorText: 'no answer' }, now);
    await worker().runOnce();
    expect(hits.map((h) => [h.body.message.id, h.body.event]).sort()).toEqual(
      [
        [a!.id, 'message.cancelled'],
        [b!.id, 'message.unknown'],
      ].sort(),
    );
    expect(hits.find((h) => h.body.message.id === b!.id)!.body.message.error).toEqual({ code: 'AT_TIMEOUT', meaning: 'no answer' });
  });

  it('A2P messages get the operator-style body', async () => {
    await sentMessage(`http://127.0.0.1:${port}/a2p`, 'a2p');
    await worker().runOnce();
    expect(hits[0]!.body).toMatchObject({ msg_id: `c${now}`, status: 'sent', to: '+79160000001' });
  });
});
