/**
 * The dispatcher against simulated modems on real ptys, with SQLite storage: quotas, balancing, quiet hours,
 * fail-over, retries, pacing, unplugged modems, and messages whose fate is unknown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MessageState } from '../../sql/storage.js';
import { billingPeriod } from '../../scheduler/rules.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

const gateways: TestGateway[] = [];
afterEach(async () => {
  for (const g of gateways.splice(0)) await g.stop();
});

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  gateways.push(g);
  return g;
}

const count = async (g: TestGateway, state: MessageState) => (await g.storage.countByState())[state] ?? 0;

async function waitForRecords(g: TestGateway, n: number): Promise<void> {
  for (let i = 0; g.sim.sim.records().length < n; i++) {
    if (i > 750) throw new Error(`the network took ${g.sim.sim.records().length} message(s), not ${n}, in 15 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** How many queued messages carry a reason (why they wait). */
async function told(g: TestGateway): Promise<number> {
  return (await g.storage.listMessages({ state: 'queued', limit: 1000 })).filter((m) => m.reason !== null).length;
}

function sentPerImsi(g: TestGateway): number[] {
  const records = g.sim.sim.records();
  return g.sim.sim.info().map((m) => records.filter((r) => r.imsi === m.imsi).length);
}

describe('quota balancing', () => {
  it('3 SIMs with quotas 10/20/30 and 80 messages: exactly 60 sent within quota, 20 wait with a reason, and go after a raise', async () => {
    const g = await gateway({ modems: 3 });
    const [a, b, c] = g.sims;
    await g.storage.updateSim(a!.id, { monthlyQuota: 10 });
    await g.storage.updateSim(b!.id, { monthlyQuota: 20 });
    await g.storage.updateSim(c!.id, { monthlyQuota: 30 });
    const ids = await g.enqueue(80);
    // The reasons come as the drains look at the waiting messages (a few per drain: each look is a claim and a
    // release), so the wait is for all of them to have one.
    await g.drainUntil(async () => (await count(g, 'sent')) === 60 && (await count(g, 'queued')) === 20 && (await told(g)) === 20);
    await new Promise((r) => setTimeout(r, 300));
    await g.dispatcher.idle();
    expect(await count(g, 'sent')).toBe(60);
    expect(sentPerImsi(g)).toEqual([10, 20, 30]);
    const waiting = (await g.storage.listMessages({ state: 'queued', limit: 100 })).map((m) => m.reason);
    expect(new Set(waiting)).toEqual(new Set(['quota exhausted on all SIMs (the message needs 1 part)']));
    expect(g.sim.sim.records()).toHaveLength(60);

    await g.storage.updateSim(a!.id, { monthlyQuota: 30 });
    await g.dispatcher.settingsChanged();
    await g.drainUntil(async () => (await count(g, 'sent')) === 80);
    expect(sentPerImsi(g)).toEqual([30, 20, 30]);
    // every message sent exactly once
    expect(new Set(g.sim.sim.records().map((r) => r.to)).size).toBe(80);
    expect((await Promise.all(ids.map((id) => g.storage.getMessage(id)))).every((m) => m!.state === 'sent')).toBe(true);
  });

  it('a backlog that cannot go learns why in one drain: each batch that starts nothing looks at twice as many', async () => {
    // One channel: batches of 1, 2, 4 … 64 messages, 191 in one drain (a look every recheck would be 8).
    const g = await gateway({ modems: 1 }, { recheckMs: 600_000 });
    await g.storage.updateSim(g.sims[0]!.id, { monthlyQuota: 0 });
    await g.enqueue(150);
    g.dispatcher.wake();
    await g.dispatcher.idle();
    const waiting = await g.storage.listMessages({ state: 'queued', limit: 200 });
    expect(waiting).toHaveLength(150);
    expect(new Set(waiting.map((m) => m.reason))).toEqual(new Set(['quota exhausted on all SIMs (the message needs 1 part)']));
    expect(waiting.every((m) => m.leaseOwner === null)).toBe(true);
    expect(g.sim.sim.records()).toHaveLength(0);

    // Looked at again (a setting changed) for the same reason: nothing learned, so the batches do not widen.
    const limits: number[] = [];
    const claimDue = g.storage.claimDue.bind(g.storage);
    g.storage.claimDue = async (owner, now, leaseMs, limit, route) => {
      if (!route?.unroutable) limits.push(limit);
      return claimDue(owner, now, leaseMs, limit, route);
    };
    await g.dispatcher.settingsChanged();
    await g.dispatcher.idle();
    expect(limits).toEqual(Array(8).fill(1));
  });

  it('spreads one message at a time by the share of quota left', async () => {
    const g = await gateway({ modems: 3 });
    const quotas = [10, 20, 30];
    for (const [i, s] of g.sims.entries()) await g.storage.updateSim(s.id, { monthlyQuota: quotas[i]! });
    for (let i = 0; i < 30; i++) {
      await g.enqueue(1);
      await g.drainUntil(async () => (await count(g, 'sent')) === i + 1);
    }
    const [x, y, z] = sentPerImsi(g);
    // Remaining shares stay level: after 30 of 60 parts, each SIM has used about half of its quota.
    expect(Math.abs(x! - 5)).toBeLessThanOrEqual(1);
    expect(Math.abs(y! - 10)).toBeLessThanOrEqual(1);
    expect(Math.abs(z! - 15)).toBeLessThanOrEqual(1);
  });
});

describe('the start of a send', () => {
  it('calls the send off with ESC when another process took the quota while AT+CMGS was on its way: nothing sent, the message waits, the channel goes on', async () => {
    const g = await gateway({ modems: 1 });
    const sim = g.sims[0]!;
    await g.storage.updateSim(sim.id, { monthlyQuota: 2 });
    // Another gateway process on the same database, with a message of its own for this SIM.
    const { messages } = await g.storage.enqueue([{ userId: g.userId, recipient: '+79160000999', text: 'theirs', encoding: 'gsm7', parts: 2 }]);
    const theirs = messages[0]!;
    expect(await g.storage.claimDue('gw-other', Date.now(), 60_000, 1)).toHaveLength(1);
    const start = g.storage.startSendingMany.bind(g.storage);
    let raced = false;
    g.storage.startSendingMany = async (starts) => {
      if (!raced) {
        raced = true;
        // It starts its send (2 parts: the SIM's whole quota) just before ours commits.
        const via = { simId: sim.id, channelId: null, leaseMs: 60_000, period: billingPeriod(sim.billingDay, Date.now()), parts: 2, quota: 2 };
        expect(await g.storage.startSending(theirs.id, 'gw-other', via)).toBe('started');
      }
      return start(starts);
    };
    const [ours] = await g.enqueue(1);
    await g.drainUntil(async () => raced && /quota exhausted/.test((await g.storage.getMessage(ours!))!.reason ?? ''));
    await g.dispatcher.idle();
    expect(g.sim.sim.records()).toHaveLength(0);
    expect(await g.storage.getMessage(ours!)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await g.storage.usage(sim.id, billingPeriod(sim.billingDay, Date.now()))).toEqual({ used: 0, reserved: 2 });
    // The channel was left in a known state: with room in the quota, our message goes, once.
    await g.storage.updateSim(sim.id, { monthlyQuota: 3 });
    await g.dispatcher.settingsChanged();
    await g.drainUntil(async () => (await g.storage.getMessage(ours!))!.state === 'sent');
    expect(g.sim.sim.records().map((r) => r.text)).toEqual([(await g.storage.getMessage(ours!))!.text]);
  });
});

describe('waiting and timing', () => {
  it('holds messages in quiet hours with the time they end, and sends them once the hours are lifted', async () => {
    const g = await gateway({});
    const now = new Date();
    const hhmm = (d: Date) => `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
    const start = hhmm(new Date(now.getTime() - 3_600_000));
    const end = hhmm(new Date(now.getTime() + 3_600_000));
    await g.storage.updateSim(g.sims[0]!.id, { quietStart: start, quietEnd: end });
    const [id] = await g.enqueue(1);
    await g.drainUntil(async () => (await g.storage.getMessage(id!))!.reason !== null);
    expect(await g.storage.getMessage(id!)).toMatchObject({ state: 'queued', reason: `quiet hours until ${end}` });
    expect(g.sim.sim.records()).toHaveLength(0);
    await g.storage.updateSim(g.sims[0]!.id, { quietStart: null, quietEnd: null });
    await g.dispatcher.settingsChanged();
    await g.drainUntil(async () => (await count(g, 'sent')) === 1);
  });

  it('respects a SIM pacing interval', async () => {
    const g = await gateway({});
    await g.storage.updateSim(g.sims[0]!.id, { pacingMs: 500 });
    await g.enqueue(3);
    await g.drainUntil(async () => (await count(g, 'sent')) === 3);
    // Pacing holds the starts apart; the commands reach the modem that far apart less how much later the first
    // one got there than the next (the pty relay's jitter: up to 100 ms allowed on a loaded machine).
    const times = g.sim.sim.records().map((r) => r.commandAt);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(400);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(400);
  });

  it('tells a user with no SIM why the message waits', async () => {
    const g = await gateway({});
    const other = await g.storage.createUser({ name: 'nobody', passwordHash: 'x' });
    const [id] = await g.enqueue(1, { userId: other.id });
    await g.drainUntil(async () => (await g.storage.getMessage(id!))!.reason !== null);
    expect((await g.storage.getMessage(id!))!.reason).toBe('no SIM is assigned to this user');
    // A burst of them learns why in a look or two (one a second, up to 64 messages each).
    await g.enqueue(100, { userId: other.id });
    await g.drainUntil(async () => (await told(g)) > 1);
    expect(await told(g)).toBeGreaterThanOrEqual(65);
    await g.drainUntil(async () => (await told(g)) === 101);
  });
});

describe('errors and fail-over', () => {
  it('a SIM error (+CMS 38) fails over to another SIM', async () => {
    const g = await gateway({ modems: 2 });
    g.sim.sim.fault(0, { type: 'cms', code: 38, times: 10 });
    const [id] = await g.enqueue(1);
    await g.drainUntil(async () => (await g.storage.getMessage(id!))!.state === 'sent');
    const message = await g.storage.getMessage(id!);
    expect(message).toMatchObject({ state: 'sent', simId: g.sims[1]!.id, attempts: 2, errorCode: null });
    expect(g.sim.sim.records().map((r) => r.imsi)).toEqual([g.sim.sim.info()[1]!.imsi]);
    expect((await g.storage.listEvents({ messageId: id! })).map((e) => e.kind)).toEqual(['message.sent', 'message.attempt-failed']);
  });

  it('a permanent error (+CMS 1, unassigned number) fails the message at once', async () => {
    const g = await gateway({ modems: 2 });
    g.sim.sim.fault(0, { type: 'cms', code: 1 });
    const [id] = await g.enqueue(1);
    await g.drainUntil(async () => (await g.storage.getMessage(id!))!.state === 'failed');
    expect(await g.storage.getMessage(id!)).toMatchObject({ attempts: 1, errorCode: 'AT_CMS', reason: expect.stringMatching(/^rejected: .*unassigned/) });
    expect(g.sim.sim.records()).toHaveLength(0);
  });

  it('a transient error (+CMS 42) backs off and succeeds on a later attempt; attempts bound it', async () => {
    const g = await gateway({});
    g.sim.sim.fault(0, { type: 'cms', code: 42 });
    const [ok] = await g.enqueue(1);
    await g.drainUntil(async () => (await g.storage.getMessage(ok!))!.state === 'sent');
    expect(await g.storage.getMessage(ok!)).toMatchObject({ attempts: 2 });
    g.sim.sim.fault(0, { type: 'cms', code: 42, times: 5 });
    const [doomed] = await g.enqueue(1, { maxAttempts: 2 });
    await g.drainUntil(async () => (await g.storage.getMessage(doomed!))!.state === 'failed');
    expect(await g.storage.getMessage(doomed!)).toMatchObject({ attempts: 2, reason: expect.stringMatching(/^gave up after 2 attempt\(s\)/) });
  });

  it("an unplugged modem's messages go through the other", async () => {
    const g = await gateway({ modems: 2 });
    await g.sim.sim.unplug(0);
    await new Promise((r) => setTimeout(r, 100));
    await g.enqueue(5);
    await g.drainUntil(async () => (await count(g, 'sent')) === 5);
    expect(sentPerImsi(g)).toEqual([0, 5]);
  });

  it("with onUnknown 'resend', a message of unknown fate is sent again — within its attempts", async () => {
    // The network answers well after the send gave up (however slowly a loaded machine runs the send).
    const g = await gateway({ latencyMs: 2_000 }, { sendTimeoutMs: 500, onUnknown: 'resend' });
    const [id] = await g.enqueue(1, { maxAttempts: 2 });
    await g.drainUntil(async () => (await g.storage.getMessage(id!))!.state === 'unknown');
    expect(await g.storage.getMessage(id!)).toMatchObject({ attempts: 2, state: 'unknown' });
    await waitForRecords(g, 2);
    // Both attempts reached the (slow) network: the recipient got it twice, as the setting accepts — no more.
    await new Promise((r) => setTimeout(r, 500));
    expect(g.sim.sim.records().map((r) => r.text)).toEqual(['message 1', 'message 1']);
  });

  it('health checks mark a silent channel unhealthy, route around it, and bring it back', async () => {
    const g = await gateway({ modems: 2 });
    g.sim.sim.fault(0, { type: 'hang', times: 10 });
    await g.dispatcher.checkChannels();
    expect(g.dispatcher.channels.map((c) => c.healthy)).toEqual([false, true]);
    expect((await g.storage.listChannels())[0]).toMatchObject({ healthy: false, lastError: expect.stringMatching(/no answer to AT/) });
    await g.enqueue(3);
    await g.drainUntil(async () => (await count(g, 'sent')) === 3);
    expect(sentPerImsi(g)).toEqual([0, 3]);
    g.sim.sim.fault(0, { type: 'clear' });
    await g.dispatcher.checkChannels();
    expect(g.dispatcher.channels.map((c) => c.healthy)).toEqual([true, true]);
    expect((await g.storage.listEvents()).map((e) => e.kind)).toEqual(expect.arrayContaining(['channel.unhealthy', 'channel.recovered']));
  });

  it("a send without an answer after its PDU is 'unknown' and is not resent", async () => {
    const g = await gateway({ latencyMs: 2_000 }, { sendTimeoutMs: 500 });
    const [id] = await g.enqueue(1);
    await g.drainUntil(async () => (await g.storage.getMessage(id!))!.state === 'unknown');
    await waitForRecords(g, 1);
    g.dispatcher.wake();
    await g.dispatcher.idle();
    expect((await g.storage.getMessage(id!))!.state).toBe('unknown');
    expect(g.sim.sim.records()).toHaveLength(1); // the network did take it: resending would have sent it twice
  });
});
