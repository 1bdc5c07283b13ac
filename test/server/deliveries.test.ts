/**
 * The deliveries outbox of received messages against real parts: a local HTTP receiver that fails twice before it
 * takes the webhook (signed; back-off 1 s then 2 s on the test's clock; nothing lost across a restart of the
 * worker), a command hook that fails, then times out, then succeeds, a forward queued once however often it is
 * retried, giving up after the configured attempts, and two workers racing for one delivery.
 */
import { createServer, type Server } from 'node:http';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signature } from '../../server/callbacks.js';
import { DeliveryWorker, type DeliveryWorkerOptions, commandEnv, forwardText } from '../../server/deliveries.js';
import type { InboxMessage, NewDelivery } from '../../sql/inbox.js';
import { openStorage } from '../../sql/index.js';
import type { Storage } from '../../sql/storage.js';

let receiver: Server;
let port: number;
const hits: { body: any; raw: string; headers: Record<string, string | string[] | undefined> }[] = [];
/** Status codes the receiver answers with, in order; then 200. */
let answers: number[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      hits.push({ raw, body: JSON.parse(raw), headers: req.headers });
      res.statusCode = answers.shift() ?? 200;
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
const SECRET = 'inbox-secret';

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'smsgate-deliveries-'));
  storage = await openStorage(`sqlite:${join(dir, 'db.sqlite')}`);
  now = Date.parse('2026-11-24T10:00:00Z');
  hits.length = 0;
  answers = [];
});
afterEach(async () => {
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
});

function worker(over: Partial<DeliveryWorkerOptions> = {}): DeliveryWorker {
  return new DeliveryWorker({
    storage,
    secret: SECRET,
    maxAttempts: 4,
    timeoutMs: 2000,
    command: [],
    commandTimeoutMs: 2000,
    forward: async () => undefined,
    cron: false,
    clock,
    baseDelayMs: 1000,
    ...over,
  });
}

/** A received message whose plan asks for `deliveries`. */
async function received(deliveries: NewDelivery[], text = 'Door 3 open'): Promise<InboxMessage> {
  const sim = await storage.upsertSim({ imsi: '250020000000042', number: '+79160000042' });
  const result = await storage.inbox.storePart(
    { simId: sim.id, channelId: null, slot: null, pdu: '00', sender: '+79031234567', text, encoding: 'gsm7', class: null, sentAt: '2026-11-24T12:59:58+03:00', concat: null },
    now,
    () => deliveries,
  );
  return result.message!;
}

describe('the deliveries outbox', () => {
  it('retries a webhook whose receiver fails twice (1 s, then 2 s), signed each time, and marks it done', async () => {
    const m = await received([{ kind: 'webhook', target: `http://127.0.0.1:${port}/in`, payload: 'inbox.received' }]);
    answers = [500, 503];
    const w = worker();
    await w.runOnce();
    expect(hits).toHaveLength(1);
    let [d] = await storage.inbox.deliveriesOf(m.id);
    expect(d).toMatchObject({ state: 'pending', attempts: 1, lastError: 'the receiver answered 500', dueAt: now + 1000 });
    await w.runOnce(); // not due yet
    expect(hits).toHaveLength(1);
    now += 1000;
    await w.runOnce();
    [d] = await storage.inbox.deliveriesOf(m.id);
    expect(d).toMatchObject({ state: 'pending', attempts: 2, lastError: 'the receiver answered 503', dueAt: now + 2000 });
    // A restart: a new worker over the same database finds it due.
    now += 2000;
    await worker().runOnce();
    [d] = await storage.inbox.deliveriesOf(m.id);
    expect(d).toMatchObject({ state: 'done', attempts: 3, lastError: null, doneAt: now });
    expect(hits).toHaveLength(3);
    for (const hit of hits) {
      expect(hit.headers['x-smsgate-signature']).toBe(signature(SECRET, String(hit.headers['x-smsgate-timestamp']), hit.raw));
      expect(hit.body).toMatchObject({ event: 'inbox.received', message: { id: m.id, from: '+79031234567', text: 'Door 3 open', sim: { number: '+79160000042' } } });
    }
  });

  it('gives up after the configured attempts, and says so', async () => {
    const m = await received([{ kind: 'webhook', target: `http://127.0.0.1:${port}/in`, payload: 'inbox.received' }]);
    answers = [500, 500];
    const w = worker({ maxAttempts: 2 });
    await w.runOnce();
    now += 1000;
    await w.runOnce();
    const [d] = await storage.inbox.deliveriesOf(m.id);
    expect(d).toMatchObject({ state: 'failed', attempts: 2, lastError: 'the receiver answered 500; gave up after 2 attempt(s)' });
    expect((await storage.listEvents()).map((e) => e.kind)).toContain('delivery.failed');
  });

  it('runs the command hook: a failure and a timeout are retried, then it succeeds', async () => {
    const script = join(dir, 'hook.sh');
    const count = join(dir, 'count');
    writeFileSync(count, '0');
    // 1st run exits 3, 2nd hangs, 3rd succeeds.
    writeFileSync(script, `#!/bin/sh\nn=$(cat "${count}"); n=$((n+1)); echo $n > "${count}"\n[ $n = 1 ] && { echo "no disk" >&2; exit 3; }\n[ $n = 2 ] && sleep 30\nexit 0\n`);
    chmodSync(script, 0o755);
    const m = await received([{ kind: 'command', target: script, payload: 'inbox.received' }]);
    const w = worker({ command: [script], commandTimeoutMs: 5_000 });
    await w.runOnce();
    expect((await storage.inbox.deliveriesOf(m.id))[0]).toMatchObject({ state: 'pending', lastError: `${script} exited with status 3: no disk` });
    now += 1000;
    await w.runOnce();
    expect((await storage.inbox.deliveriesOf(m.id))[0]).toMatchObject({ state: 'pending', lastError: `${script} ran longer than 5000 ms and was killed` });
    now += 2000;
    await w.runOnce();
    expect((await storage.inbox.deliveriesOf(m.id))[0]).toMatchObject({ state: 'done', attempts: 3 });
  });

  it("gives the command Gammu's RunOnReceive variables and ours", async () => {
    const m = await received([], 'Привет; $(id)');
    const env = commandEnv(m, (await storage.listSims())[0], 'inbox.received');
    expect(env).toMatchObject({
      SMS_MESSAGES: '1',
      SMS_1_NUMBER: '+79031234567',
      SMS_1_TEXT: 'Привет; $(id)',
      SMS_1_CLASS: '-1',
      DECODED_PARTS: '1',
      DECODED_1_TEXT: 'Привет; $(id)',
      SMSGATE_ID: String(m.id),
      SMSGATE_SIM_NUMBER: '+79160000042',
      SMSGATE_SENT_AT: '2026-11-24T12:59:58+03:00',
      SMSGATE_COMPLETE: '1',
    });
  });

  it('queues a forward through the forward function, and a failure there is retried', async () => {
    const m = await received([{ kind: 'forward', target: '+79160000999', payload: '{"rule":0}' }]);
    const calls: string[] = [];
    let fail = true;
    const w = worker({
      forward: async (_d, _m, text) => {
        calls.push(text);
        if (fail) throw new Error('the database is locked');
      },
    });
    await w.runOnce();
    expect((await storage.inbox.deliveriesOf(m.id))[0]).toMatchObject({ state: 'pending', lastError: 'the database is locked' });
    fail = false;
    now += 1000;
    await w.runOnce();
    expect(calls).toEqual([forwardText(m), forwardText(m)]);
    expect(forwardText(m)).toBe('From +79031234567: Door 3 open');
    expect((await storage.inbox.deliveriesOf(m.id))[0]).toMatchObject({ state: 'done' });
  });

  it('two workers racing take one delivery once', async () => {
    await received([{ kind: 'webhook', target: `http://127.0.0.1:${port}/in`, payload: 'inbox.received' }]);
    await Promise.all([worker().runOnce(), worker().runOnce()]);
    expect(hits).toHaveLength(1);
  });

  it('posts an alert with its own payload', async () => {
    await storage.inbox.addDeliveries([{ kind: 'alert', target: `http://127.0.0.1:${port}/alert`, payload: JSON.stringify({ event: 'sim.balance_low', balance: '1.00' }) }], now);
    await worker().runOnce();
    expect(hits[0]!.body).toEqual({ event: 'sim.balance_low', balance: '1.00' });
    expect(hits[0]!.headers['x-smsgate-event']).toBe('sim.balance_low');
  });
});
