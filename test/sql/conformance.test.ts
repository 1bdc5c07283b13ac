/**
 * One storage conformance suite, run against both engines: SQLite (the embedded default) and a real MariaDB
 * started on 127.0.0.1 for the run (Debian's mariadb-server).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from '../../sql/index.js';
import type { InboxEvent, InboxMessage, NewDelivery, ReceivedPart } from '../../sql/inbox.js';
import type { NewMessage } from '../../sql/storage.js';
import { startMariaDb, type TestMariaDb } from '../helpers/mariadb.js';

let mariadb: TestMariaDb;
let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'smsgate-sql-'));
  mariadb = await startMariaDb();
});
afterAll(async () => {
  await mariadb?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

let counter = 0;
const engines: [string, () => Promise<string>][] = [
  ['SQLite', async () => `sqlite:${join(tmp, `db${++counter}.sqlite`)}`],
  ['MariaDB', async () => mariadb.url(`smsgate_test_${++counter}`)],
];

describe.each(engines)('storage on %s', (_engine, makeUrl) => {
  let store: Storage;
  let url: string;
  beforeEach(async () => {
    url = await makeUrl();
    store = await openStorage(url);
    return () => store.close();
  });

  const message = (over: Partial<NewMessage> = {}): NewMessage => ({
    userId: 1,
    recipient: '+79161234567',
    text: 'Код 1234 😀',
    encoding: 'ucs2',
    parts: 1,
    ...over,
  });

  it('migrates once: opening again applies nothing', async () => {
    const again = await openStorage(url);
    expect(await again.migrate()).toBe(0);
    await again.close();
  });

  it('keeps users, refuses a second user of one name, and updates them', async () => {
    const admin = await store.createUser({ name: 'admin', passwordHash: '$2b$hash', role: 'admin' });
    expect(admin).toMatchObject({ name: 'admin', role: 'admin', disabled: false });
    await expect(store.createUser({ name: 'admin', passwordHash: 'x' })).rejects.toMatchObject({ code: 'CONFLICT', field: 'name' });
    const updated = await store.updateUser(admin.id, { disabled: true, passwordHash: '$2b$new' });
    expect(updated).toMatchObject({ disabled: true, passwordHash: '$2b$new' });
    expect((await store.getUserByName('admin'))!.id).toBe(admin.id);
    expect(await store.getUserByName('nobody')).toBeNull();
    await store.createUser({ name: 'alice', passwordHash: 'h' });
    expect((await store.listUsers()).map((u) => u.name)).toEqual(['admin', 'alice']);
  });

  it('finds live tokens by hash only, and not once revoked', async () => {
    const user = await store.createUser({ name: 'dev', passwordHash: 'h' });
    const token = await store.createToken(user.id, 'sha256:abc', 'printer');
    expect((await store.findToken('sha256:abc'))!.user.name).toBe('dev');
    await store.touchToken(token.id, 1234);
    expect((await store.listTokens(user.id))[0]).toMatchObject({ label: 'printer', lastUsedAt: 1234 });
    expect(await store.revokeToken(token.id)).toBe(true);
    expect(await store.revokeToken(token.id)).toBe(false);
    expect(await store.findToken('sha256:abc')).toBeNull();
  });

  it('keeps templates: one name per owner, shared ones (owner 0) beside them, Unicode intact', async () => {
    const ann = await store.createUser({ name: 'ann', passwordHash: 'h' });
    const ben = await store.createUser({ name: 'ben', passwordHash: 'h' });
    const body = 'Привет, %(name)s 👋🏽 — 50% off';
    const own = await store.createTemplate({ userId: ann.id, name: 'welcome', body }, 1000);
    expect(own).toMatchObject({ userId: ann.id, name: 'welcome', body, createdAt: 1000, updatedAt: 1000 });
    expect(await store.getTemplate(own.id)).toEqual(own);
    expect(await store.getTemplate(own.id + 1000)).toBeNull();
    await expect(store.createTemplate({ userId: ann.id, name: 'welcome', body: 'x' })).rejects.toMatchObject({
      code: 'CONFLICT',
      field: 'name',
      message: 'a template of this user named "welcome" exists already',
    });
    // The same name for another owner, for everyone (shared), and in another case is another template.
    const shared = await store.createTemplate({ userId: 0, name: 'welcome', body: 'Hello %(name)s' }, 2000);
    await expect(store.createTemplate({ userId: 0, name: 'welcome', body: 'y' })).rejects.toMatchObject({ code: 'CONFLICT', message: 'a shared template named "welcome" exists already' });
    const bens = await store.createTemplate({ userId: ben.id, name: 'welcome', body: 'Yo' });
    const upper = await store.createTemplate({ userId: ben.id, name: 'Welcome', body: 'YO' });
    const sharedOnly = await store.createTemplate({ userId: 0, name: 'code', body: 'Code %(code)s' });
    // By name: one's own first, then the shared one; never another user's.
    expect((await store.findTemplate(ann.id, 'welcome'))!.id).toBe(own.id);
    expect((await store.findTemplate(ben.id, 'welcome'))!.id).toBe(bens.id);
    expect((await store.findTemplate(ben.id, 'Welcome'))!.id).toBe(upper.id);
    expect((await store.findTemplate(ann.id, 'Welcome'))).toBeNull();
    expect((await store.findTemplate(ann.id, 'code'))!.id).toBe(sharedOnly.id);
    expect((await store.findTemplate(9999, 'welcome'))!.id).toBe(shared.id);
    expect(await store.findTemplate(ann.id, 'nothing')).toBeNull();
    // A user's list: their own and the shared ones, by name; everything without a user.
    expect((await store.listTemplates(ann.id)).map((t) => [t.userId, t.name])).toEqual([
      [0, 'code'],
      [0, 'welcome'],
      [ann.id, 'welcome'],
    ]);
    expect((await store.listTemplates()).map((t) => t.id).sort((a, b) => a - b)).toEqual([own.id, shared.id, bens.id, upper.id, sharedOnly.id].sort((a, b) => a - b));
    expect((await store.listTemplates()).map((t) => t.name)).toEqual(['code', 'welcome', 'welcome', 'welcome', 'Welcome'].sort());
  });

  it('updates and deletes templates; a rename onto a taken name is a conflict and changes nothing', async () => {
    const a = await store.createTemplate({ userId: 5, name: 'a', body: 'A' }, 1000);
    const b = await store.createTemplate({ userId: 5, name: 'b', body: 'B' }, 1000);
    expect(await store.updateTemplate(a.id, { body: 'A2 %(x)s' }, 3000)).toMatchObject({ id: a.id, name: 'a', body: 'A2 %(x)s', createdAt: 1000, updatedAt: 3000 });
    expect(await store.updateTemplate(a.id, { name: 'renamed' }, 4000)).toMatchObject({ name: 'renamed', body: 'A2 %(x)s', updatedAt: 4000 });
    await expect(store.updateTemplate(a.id, { name: 'b' }, 5000)).rejects.toMatchObject({ code: 'CONFLICT', field: 'name' });
    expect(await store.getTemplate(a.id)).toMatchObject({ name: 'renamed', updatedAt: 4000 });
    // Another owner's name is free.
    await store.createTemplate({ userId: 6, name: 'c', body: 'C' });
    expect((await store.updateTemplate(b.id, { name: 'c', body: 'B2' })).name).toBe('c');
    await expect(store.updateTemplate(9999, { body: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await store.deleteTemplate(a.id)).toBe(true);
    expect(await store.deleteTemplate(a.id)).toBe(false);
    expect(await store.getTemplate(a.id)).toBeNull();
    expect((await store.listTemplates(5)).map((t) => t.name)).toEqual(['c']);
  });

  it('keeps a SIM by IMSI: identity updated on upsert, settings and owners kept', async () => {
    const sim = await store.upsertSim({ imsi: '250020000000001', iccid: '8970102000000000011', operator: 'MegaFon' });
    expect(sim).toMatchObject({ monthlyQuota: null, billingDay: 1, pacingMs: 0, enabled: true, number: null });
    await store.updateSim(sim.id, { monthlyQuota: 500, billingDay: 15, pacingMs: 2000, quietStart: '22:00', quietEnd: '08:00', label: 'alarms' });
    const again = await store.upsertSim({ imsi: '250020000000001', number: '+79160000001' });
    expect(again).toMatchObject({ id: sim.id, monthlyQuota: 500, billingDay: 15, quietStart: '22:00', number: '+79160000001', iccid: '8970102000000000011' });
    const a = await store.createUser({ name: 'a', passwordHash: 'h' });
    const b = await store.createUser({ name: 'b', passwordHash: 'h' });
    await store.setSimOwners(sim.id, [a.id, b.id, a.id]);
    expect(await store.simOwners(sim.id)).toEqual([a.id, b.id]);
    expect((await store.simsOfUser(b.id)).map((s) => s.id)).toEqual([sim.id]);
    await store.updateSim(sim.id, { enabled: false, monthlyQuota: null });
    expect(await store.getSim(sim.id)).toMatchObject({ enabled: false, monthlyQuota: null });
    await expect(store.updateSim(9999, { label: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('keeps one channel per box and port, and its health', async () => {
    const first = await store.upsertChannel({ port: '/dev/ttyUSB0', imei: '356938031000004' });
    const same = await store.upsertChannel({ port: '/dev/ttyUSB0', imei: '356938031000004', simId: 7 });
    expect(same).toMatchObject({ id: first.id, boxId: 0, simId: 7, healthy: true });
    await store.upsertChannel({ boxId: 3, port: '/dev/ttyUSB0' });
    await store.setChannelHealth(first.id, false, '+CMS ERROR 38: network out of order');
    const channels = await store.listChannels();
    expect(channels).toHaveLength(2);
    expect(channels[0]).toMatchObject({ healthy: false, lastError: '+CMS ERROR 38: network out of order' });
  });

  it('keeps remote boxes with their pinned host key', async () => {
    const box = await store.addBox({ name: 'garage', host: '127.0.0.1', port: 22, username: 'sms', keyRef: '/etc/smsgate/keys/garage', hostKeyFingerprint: 'SHA256:abc' });
    await expect(store.addBox({ ...box, name: 'garage' })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await store.listBoxes()).map((b) => b.hostKeyFingerprint)).toEqual(['SHA256:abc']);
    expect(await store.removeBox(box.id)).toBe(true);
    expect(await store.listBoxes()).toEqual([]);
  });

  it('stores one queued message per recipient, texts intact (emoji, Cyrillic)', async () => {
    const { messages, duplicate } = await store.enqueue([message(), message({ recipient: '+79161234568', text: 'Привет 👋🏽' })], 1000);
    expect(duplicate).toBe(false);
    expect(messages.map((m) => [m.state, m.recipient, m.text, m.attempts, m.nextAttemptAt])).toEqual([
      ['queued', '+79161234567', 'Код 1234 😀', 0, 1000],
      ['queued', '+79161234568', 'Привет 👋🏽', 0, 1000],
    ]);
    expect((await store.getMessage(messages[0]!.id))!.text).toBe('Код 1234 😀');
  });

  it('stores nothing twice for one client msg_id, even for two requests at once', async () => {
    const request = [message({ clientMsgId: 'order-42' }), message({ clientMsgId: 'order-42', recipient: '+79160000002' })];
    const [a, b] = await Promise.all([store.enqueue(request), store.enqueue(request)]);
    expect(a.messages.map((m) => m.id)).toEqual(b.messages.map((m) => m.id));
    expect([a.duplicate, b.duplicate].sort()).toEqual([false, true]);
    const again = await store.enqueue(request);
    expect(again).toMatchObject({ duplicate: true });
    expect(await store.countByState()).toEqual({ queued: 2 });
    // another user may use the same msg_id
    expect((await store.enqueue([message({ userId: 2, clientMsgId: 'order-42' })])).duplicate).toBe(false);
  });

  it('refuses a different request under a used msg_id, even three at once with other recipients', async () => {
    await store.enqueue([message({ clientMsgId: 'k', text: 'a' })], 1000, { requestHash: 'h1' });
    await expect(store.enqueue([message({ clientMsgId: 'k', text: 'b' })], 1000, { requestHash: 'h2' })).rejects.toMatchObject({ code: 'CONFLICT', field: 'msg_id' });
    const racing = await Promise.allSettled(
      ['+79160000011', '+79160000012', '+79160000013'].map((recipient, i) =>
        store.enqueue([message({ userId: 3, clientMsgId: 'r', recipient })], 1000, { requestHash: `hash-${i}` }),
      ),
    );
    expect(racing.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(racing.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(['CONFLICT', 'CONFLICT']);
    expect((await store.listMessages({ userId: 3 })).length).toBe(1);
  });

  it('claims only what the idle SIMs may take, and separately what none may take that has no reason yet', async () => {
    const admin = await store.createUser({ name: 'root', passwordHash: 'x', role: 'admin' });
    const ann = await store.createUser({ name: 'ann', passwordHash: 'x' });
    const ben = await store.createUser({ name: 'ben', passwordHash: 'x' });
    const sim1 = await store.upsertSim({ imsi: '250010000000001' });
    const sim2 = await store.upsertSim({ imsi: '250010000000002' });
    await store.setSimOwners(sim1.id, [ann.id]);
    await store.setSimOwners(sim2.id, [ben.id]);
    const { messages } = await store.enqueue(
      [
        message({ userId: ben.id, text: 'ben', priority: 5 }),
        message({ userId: ann.id, text: 'ann' }),
        message({ userId: admin.id, text: 'admin' }),
        message({ userId: ann.id, text: 'ann wants 2', wantSimId: sim2.id }),
        message({ userId: ann.id, text: 'ann wants 1', wantSimId: sim1.id }),
      ],
      0,
    );
    const texts = (ms: { text: string }[]) => ms.map((m) => m.text).sort();
    expect(texts(await store.claimDue('a', 10, 1000, 10, { simIds: [sim1.id] }))).toEqual(['admin', 'ann', 'ann wants 1']);
    const unroutable = await store.claimDue('a', 10, 1000, 10, { simIds: [sim1.id], unroutable: true });
    expect(texts(unroutable)).toEqual(['ann wants 2', 'ben']);
    for (const m of unroutable) await store.release(m.id, 'a', { reason: 'waiting', nextAttemptAt: 10 }, 10);
    expect(await store.claimDue('a', 10, 1000, 10, { simIds: [sim1.id], unroutable: true })).toEqual([]);
    expect(texts(await store.claimDue('a', 10, 1000, 10, { simIds: [sim2.id] }))).toEqual(['ann wants 2', 'ben']);
    expect(await store.claimDue('b', 10, 1000, 10, { simIds: [] })).toEqual([]);
    expect(messages).toHaveLength(5);
  });

  it('claims due messages by priority, then age, under a lease that keeps others off', async () => {
    await store.enqueue([message({ text: 'old' }), message({ text: 'urgent', priority: 5 }), message({ text: 'later', sendAt: 5000 })], 1000);
    const first = await store.claimDue('gw-a', 2000, 30_000, 10);
    expect(first.map((m) => m.text)).toEqual(['urgent', 'old']);
    expect(first[0]).toMatchObject({ leaseOwner: 'gw-a', leaseExpiresAt: 32_000 });
    expect(await store.claimDue('gw-b', 3000, 30_000, 10)).toEqual([]);
    expect((await store.claimDue('gw-b', 6000, 30_000, 10)).map((m) => m.text)).toEqual(['later']);
    // expired leases (all three by now) make queued messages claimable again
    expect((await store.claimDue('gw-b', 40_000, 30_000, 10)).map((m) => m.text)).toEqual(['urgent', 'old', 'later']);
  });

  it('starts a send with its quota reserved and completes it with the quota used, in one transaction each', async () => {
    const sim = await store.upsertSim({ imsi: '250020000000077' });
    const [m, n] = (await store.enqueue([message({ parts: 2 }), message({ parts: 2 })], 0)).messages;
    await store.claimDue('gw', 0, 60_000, 2);
    const via = { simId: sim.id, channelId: 3, leaseMs: 60_000, period: '2026-11', parts: 2, quota: 3 };
    expect(await store.startSending(m!.id, 'other', via, 5)).toBe('lost');
    expect(await store.usage(sim.id, '2026-11')).toEqual({ used: 0, reserved: 0 });
    expect(await store.startSending(m!.id, 'gw', via, 5)).toBe('started');
    expect(await store.getMessage(m!.id)).toMatchObject({ state: 'sending', attempts: 1, simId: sim.id, channelId: 3 });
    expect((await store.getSim(sim.id))!.lastSentAt).toBe(5);
    // Two more parts do not fit a quota of 3.
    expect(await store.startSending(n!.id, 'gw', via, 6)).toBe('quota');
    expect(await store.getMessage(n!.id)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await store.completeSend(m!.id, 'gw', [7, 8], { simId: sim.id, period: '2026-11', reserved: 2 }, { kind: 'message.sent', messageId: m!.id, detail: { refs: [7, 8] } }, 9)).toBe(true);
    expect(await store.usage(sim.id, '2026-11')).toEqual({ used: 2, reserved: 0 });
    expect(await store.getMessage(m!.id)).toMatchObject({ state: 'sent', partRefs: [7, 8], sentAt: 9 });
    expect((await store.listEvents({ messageId: m!.id })).map((e) => e.kind)).toEqual(['message.sent']);
  });

  it('starts several sends in one transaction, each as startSending would, in the order asked', async () => {
    const a = await store.upsertSim({ imsi: '250020000000078' });
    const b = await store.upsertSim({ imsi: '250020000000079' });
    const [m, n, o, p] = (await store.enqueue([message({ parts: 2 }), message({ parts: 2 }), message({ parts: 1 }), message({ parts: 1 })], 0)).messages;
    await store.claimDue('gw', 0, 60_000, 4);
    const viaA = { simId: a.id, channelId: 1, leaseMs: 60_000, period: '2026-11', parts: 2, quota: 3 };
    const viaB = { simId: b.id, channelId: 2, leaseMs: 60_000, period: '2026-11', parts: 1, quota: null };
    const outcomes = await store.startSendingMany([
      { id: o!.id, owner: 'gw', via: viaB, now: 5 },
      { id: m!.id, owner: 'gw', via: viaA, now: 5 },
      // the batch's own reservation counts: 2 + 2 parts do not fit a quota of 3
      { id: n!.id, owner: 'gw', via: viaA, now: 5 },
      { id: p!.id, owner: 'other', via: viaB, now: 5 },
    ]);
    expect(outcomes).toEqual(['started', 'started', 'quota', 'lost']);
    expect(await store.usage(a.id, '2026-11')).toEqual({ used: 0, reserved: 2 });
    expect(await store.usage(b.id, '2026-11')).toEqual({ used: 0, reserved: 1 });
    expect(await store.getMessage(m!.id)).toMatchObject({ state: 'sending', attempts: 1, simId: a.id, channelId: 1 });
    expect(await store.getMessage(o!.id)).toMatchObject({ state: 'sending', attempts: 1, simId: b.id, channelId: 2 });
    expect(await store.getMessage(n!.id)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await store.getMessage(p!.id)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await store.startSendingMany([])).toEqual([]);
  });

  it('walks a message through sending and sent; only the lease owner may', async () => {
    const [m] = (await store.enqueue([message({ parts: 2 })], 0)).messages;
    await store.claimDue('gw-a', 0, 1000, 1);
    expect(await store.markSending(m!.id, 'gw-b', { simId: 1, channelId: 2, leaseMs: 1000 })).toBe(false);
    expect(await store.markSending(m!.id, 'gw-a', { simId: 1, channelId: 2, leaseMs: 60_000 }, 10)).toBe(true);
    expect(await store.getMessage(m!.id)).toMatchObject({ state: 'sending', attempts: 1, simId: 1, channelId: 2, leaseExpiresAt: 60_010 });
    expect(await store.markSent(m!.id, 'gw-b', [1, 2])).toBe(false);
    expect(await store.markSent(m!.id, 'gw-a', [17, 18], 20)).toBe(true);
    expect(await store.getMessage(m!.id)).toMatchObject({ state: 'sent', partRefs: [17, 18], sentAt: 20, leaseOwner: null });
    expect(await store.cancelMessage(m!.id)).toBe(false);
  });

  it('requeues a retry with its error, and fails a message for good', async () => {
    const [a, b] = (await store.enqueue([message(), message()], 0)).messages;
    await store.claimDue('gw', 0, 1000, 2);
    await store.markSending(a!.id, 'gw', { simId: 1, channelId: 1, leaseMs: 1000 });
    expect(await store.markRetry(a!.id, 'gw', { errorCode: 'AT_CMS', errorText: '+CMS ERROR 42: congestion', nextAttemptAt: 9000, reason: 'retrying at 9000' })).toBe(true);
    expect(await store.getMessage(a!.id)).toMatchObject({ state: 'queued', attempts: 1, nextAttemptAt: 9000, errorCode: 'AT_CMS', leaseOwner: null });
    expect(await store.markFailed(b!.id, 'gw', { errorCode: 'AT_CMS', errorText: '+CMS ERROR 1: unassigned number', reason: 'permanent error' })).toBe(true);
    expect(await store.getMessage(b!.id)).toMatchObject({ state: 'failed', reason: 'permanent error' });
  });

  it('releases a claimed message with a reason a user can read', async () => {
    const [m] = (await store.enqueue([message()], 0)).messages;
    await store.claimDue('gw', 0, 1000, 1);
    expect(await store.release(m!.id, 'gw', { reason: 'quota exhausted on all SIMs', nextAttemptAt: 500 })).toBe(true);
    expect(await store.getMessage(m!.id)).toMatchObject({ state: 'queued', reason: 'quota exhausted on all SIMs', nextAttemptAt: 500, leaseOwner: null });
  });

  it('releases several claimed messages in one go, each with its own reason, and only those still ours', async () => {
    const [a, b, c] = (await store.enqueue([message(), message(), message()], 0)).messages;
    await store.claimDue('gw', 0, 1000, 2);
    await store.claimDue('other', 0, 1000, 1);
    expect(
      await store.releaseMany('gw', [
        { id: a!.id, reason: 'all channels are busy', nextAttemptAt: 10 },
        { id: c!.id, reason: 'not ours', nextAttemptAt: 10 },
        { id: b!.id, reason: 'waiting for the pacing interval', nextAttemptAt: 700 },
      ], 5),
    ).toEqual([true, false, true]);
    expect(await store.getMessage(a!.id)).toMatchObject({ reason: 'all channels are busy', nextAttemptAt: 10, leaseOwner: null });
    expect(await store.getMessage(b!.id)).toMatchObject({ reason: 'waiting for the pacing interval', nextAttemptAt: 700, leaseOwner: null });
    expect(await store.getMessage(c!.id)).toMatchObject({ reason: null, leaseOwner: 'other' });
    expect(await store.releaseMany('gw', [])).toEqual([]);
  });

  it('after a crash marks a message cut off mid-send as unknown, and resends it only on request', async () => {
    const [sending, queued] = (await store.enqueue([message(), message()], 0)).messages;
    await store.claimDue('dead', 0, 1000, 2);
    await store.markSending(sending!.id, 'dead', { simId: 1, channelId: 1, leaseMs: 1000 }, 0);
    expect(await store.recoverStale(500)).toEqual({ unknown: 0, released: 0 });
    expect(await store.recoverStale(5000)).toEqual({ unknown: 1, released: 1 });
    expect(await store.getMessage(sending!.id)).toMatchObject({ state: 'unknown', reason: expect.stringMatching(/resend on request/) });
    expect(await store.getMessage(queued!.id)).toMatchObject({ state: 'queued', leaseOwner: null });
    expect(await store.claimDue('gw', 6000, 1000, 10)).toHaveLength(1);
    expect(await store.resend(sending!.id, 7000)).toBe(true);
    expect(await store.getMessage(sending!.id)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await store.resend(queued!.id)).toBe(false);
  });

  it('cancels only queued messages nobody holds', async () => {
    const [a, b] = (await store.enqueue([message(), message()], 0)).messages;
    await store.claimDue('gw', 0, 10_000, 1);
    expect(await store.cancelMessage(a!.id, 100)).toBe(false);
    expect(await store.cancelMessage(b!.id, 100)).toBe(true);
    expect((await store.getMessage(b!.id))!.state).toBe('cancelled');
  });

  it('pages through messages newest first, with filters', async () => {
    const ids = (await store.enqueue(Array.from({ length: 5 }, (_, i) => message({ recipient: `+7916000000${i}` })))).messages.map((m) => m.id);
    const page1 = await store.listMessages({ limit: 2 });
    expect(page1.map((m) => m.id)).toEqual([ids[4], ids[3]]);
    expect((await store.listMessages({ limit: 2, beforeId: page1[1]!.id })).map((m) => m.id)).toEqual([ids[2], ids[1]]);
    expect((await store.listMessages({ recipient: '+79160000003' })).map((m) => m.id)).toEqual([ids[3]]);
    expect(await store.listMessages({ userId: 99 })).toEqual([]);
  });

  it('reserves quota only while it fits, and counts what was sent', async () => {
    expect(await store.reserveParts(1, '2026-11-01', 6, 10)).toBe(true);
    expect(await store.reserveParts(1, '2026-11-01', 5, 10)).toBe(false);
    expect(await store.reserveParts(1, '2026-11-01', 4, 10)).toBe(true);
    expect(await store.usage(1, '2026-11-01')).toEqual({ used: 0, reserved: 10 });
    await store.commitParts(1, '2026-11-01', 6, 6);
    await store.commitParts(1, '2026-11-01', 4, 1); // 3 parts were not sent: released
    expect(await store.usage(1, '2026-11-01')).toEqual({ used: 7, reserved: 0 });
    expect(await store.reserveParts(1, '2026-11-01', 4, 10)).toBe(false);
    expect(await store.reserveParts(1, '2026-12-01', 10, 10)).toBe(true);
    expect(await store.reserveParts(2, '2026-11-01', 1_000_000, null)).toBe(true);
  });

  it('never lets two concurrent reservations overrun a quota', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => store.reserveParts(5, 'p', 1, 7)));
    expect(results.filter(Boolean)).toHaveLength(7);
    expect(await store.usage(5, 'p')).toEqual({ used: 0, reserved: 7 });
  });

  it('never hands one message to two claimers at once', async () => {
    await store.enqueue(Array.from({ length: 120 }, (_, i) => message({ recipient: `+7916${String(i).padStart(7, '0')}` })), 0);
    let total = 0;
    const claimed: number[][] = await Promise.all(
      ['a', 'b', 'c', 'd'].map(async (owner) => {
        const mine: number[] = [];
        // Claim until the queue is drained (a claimer may find nothing while others hold their rows).
        for (let round = 0; round < 500 && total < 120; round++) {
          const got = (await store.claimDue(owner, 1, 60_000, 3)).map((m) => m.id);
          total += got.length;
          mine.push(...got);
        }
        return mine;
      }),
    );
    const all = claimed.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all).toHaveLength(120);
  });

  it('stores received messages: a slot stored before is a duplicate, identical texts in new slots are not', async () => {
    const sim = await store.upsertSim({ imsi: '250020000000001' });
    const part = (over: Partial<ReceivedPart> = {}): ReceivedPart => ({
      simId: sim.id, channelId: 1, slot: 'SM:1', pdu: '07911234', sender: '+79031234567', text: 'ALARM 😀 Тревога', encoding: 'ucs2', class: null, sentAt: '2026-11-24T10:00:00+03:00', concat: null, ...over,
    });
    const plan = (_m: InboxMessage, event: InboxEvent): NewDelivery[] => [{ kind: 'webhook', target: 'http://x/', payload: `inbox.${event}` }];
    const first = await store.inbox.storePart(part(), 1000, plan);
    expect(first.outcome).toBe('message');
    expect(first.message).toMatchObject({ text: 'ALARM 😀 Тревога', complete: true, parts: 1, sentAt: '2026-11-24T10:00:00+03:00', receivedAt: 1000 });
    expect((await store.inbox.storePart(part(), 1001, plan)).outcome).toBe('duplicate');
    await store.inbox.forgetSlot(sim.id, 'SM:1');
    // The same text again, in the slot now free, is a new message; so is one in another slot.
    expect((await store.inbox.storePart(part(), 1002, plan)).outcome).toBe('message');
    expect((await store.inbox.storePart(part({ slot: 'ME:4' }), 1003, plan)).outcome).toBe('message');
    expect(await store.inbox.list()).toHaveLength(3);
    expect(await store.inbox.list({ simIds: [] })).toHaveLength(0);
    expect((await store.inbox.list({ sender: '+79031234567', limit: 2 })).map((m) => m.receivedAt)).toEqual([1003, 1002]);
    expect((await store.inbox.deliveriesOf(first.message!.id)).map((d) => [d.kind, d.state, d.payload])).toEqual([['webhook', 'pending', 'inbox.received']]);
  });

  it('reassembles parts out of order, surfaces an incomplete set after the wait, and completes it with a late part', async () => {
    const sim = await store.upsertSim({ imsi: '250020000000002' });
    const part = (seq: number, ref = 7): ReceivedPart => ({
      simId: sim.id, channelId: null, slot: `SM:${seq + ref}`, pdu: `PDU${ref}-${seq}`, sender: 'Bank', text: `<${seq}>`, encoding: 'gsm7', class: 1, sentAt: null, concat: { ref, total: 3, seq, bits: 8 },
    });
    const none = () => [];
    expect((await store.inbox.storePart(part(3), 10, none)).outcome).toBe('part');
    expect((await store.inbox.storePart(part(1), 11, none)).outcome).toBe('part');
    expect((await store.inbox.storePart({ ...part(1), slot: null }, 12, none)).outcome).toBe('duplicate');
    const done = await store.inbox.storePart(part(2), 13, none);
    expect(done.message).toMatchObject({ text: '<1><2><3>', parts: 3, partsReceived: 3, complete: true, concatRef: 7, class: 1, receivedAt: 10 });
    // Another set waits too long.
    await store.inbox.storePart(part(1, 8), 100, none);
    expect(await store.inbox.surfaceExpired(150, 100, none)).toEqual([]);
    const [surfaced] = await store.inbox.surfaceExpired(200, 100, none);
    expect(surfaced).toMatchObject({ text: '<1>[…][…]', complete: false, partsReceived: 1 });
    expect(await store.inbox.waitingParts()).toEqual([]);
    await store.inbox.storePart(part(3, 8), 300, none);
    const late = await store.inbox.storePart(part(2, 8), 301, none);
    expect(late.message).toMatchObject({ id: surfaced!.id, text: '<1><2><3>', complete: true, partsReceived: 3 });
    expect(await store.inbox.list()).toHaveLength(2);
  });

  it('hands each due delivery to one claimer, retries and finishes it, and purges old received messages', async () => {
    const sim = await store.upsertSim({ imsi: '250020000000003' });
    const plan = (): NewDelivery[] => [
      { kind: 'webhook', target: 'http://a/', payload: 'inbox.received' },
      { kind: 'command', target: '/bin/true', payload: 'inbox.received' },
    ];
    for (let i = 0; i < 10; i++) {
      await store.inbox.storePart({ simId: sim.id, channelId: null, slot: null, pdu: `P${i}`, sender: '+7903', text: `t${i}`, encoding: 'gsm7', class: null, sentAt: null, concat: null }, 1000 + i, plan);
    }
    // Three claimers at once, each until nothing is left: every delivery claimed exactly once.
    const owners = new Map<number, string>();
    await Promise.all(
      ['a', 'b', 'c'].map(async (owner) => {
        for (let got = await store.inbox.claimDeliveries(owner, 5000, 60_000, 3); got.length > 0; got = await store.inbox.claimDeliveries(owner, 5000, 60_000, 3)) {
          for (const x of got) {
            expect(owners.has(x.id)).toBe(false);
            owners.set(x.id, owner);
          }
        }
      }),
    );
    expect(owners.size).toBe(20);
    const first = (await store.inbox.list({ limit: 100 })).at(-1)!;
    const [d, e] = await store.inbox.deliveriesOf(first.id);
    expect(await store.inbox.finishDelivery(d!.id, 'someone-else', { error: null, retryAt: null }, 5001)).toBe(false);
    expect(await store.inbox.finishDelivery(d!.id, owners.get(d!.id)!, { error: 'HTTP 500', retryAt: 7000 }, 5001)).toBe(true);
    expect(await store.inbox.claimDeliveries('a', 6000, 60_000, 100)).toEqual([]);
    const again = await store.inbox.claimDeliveries('a', 7000, 60_000, 100);
    expect(again.map((x) => [x.id, x.attempts, x.lastError])).toEqual([[d!.id, 1, 'HTTP 500']]);
    await store.inbox.finishDelivery(d!.id, 'a', { error: null, retryAt: null }, 7001);
    await store.inbox.finishDelivery(e!.id, owners.get(e!.id)!, { error: 'exit 1; gave up', retryAt: null }, 7002);
    expect((await store.inbox.listDeliveries({ state: 'done' })).map((x) => x.id)).toEqual([d!.id]);
    expect((await store.inbox.listDeliveries({ state: 'failed' })).map((x) => x.id)).toEqual([e!.id]);
    // Purge: only messages with no pending delivery go.
    expect(await store.inbox.purge(2000)).toBe(1);
    expect(await store.inbox.list()).toHaveLength(9);
  });

  it('keeps SIM balance settings and history, and moves a channel to its modem\'s new port', async () => {
    const sim = await store.upsertSim({ imsi: '250020000000004' });
    const updated = await store.updateSim(sim.id, { balanceUssd: '*100#', balancePattern: 'Баланс (?<amount>[\\d,]+)', balanceLow: '50.00', balancePause: true, pausedReason: 'low balance' });
    expect(updated).toMatchObject({ balanceUssd: '*100#', balancePattern: 'Баланс (?<amount>[\\d,]+)', balanceLow: '50.00', balancePause: true, balanceAlerted: false, pausedReason: 'low balance' });
    await store.addBalance({ simId: sim.id, at: 1, amount: '12.34', currency: 'р', answer: 'Баланс 12,34 р', error: null });
    await store.addBalance({ simId: sim.id, at: 2, amount: null, currency: null, answer: null, error: 'no network' });
    expect((await store.listBalances(sim.id)).map((b) => [b.amount, b.error])).toEqual([[null, 'no network'], ['12.34', null]]);
    const a = await store.upsertChannel({ port: '/dev/ttyUSB2', imei: '356938031000004', simId: sim.id });
    await store.upsertChannel({ port: '/dev/ttyUSB5', imei: '111', simId: null });
    const moved = await store.moveChannel(a.id, '/dev/ttyUSB5');
    expect(moved).toMatchObject({ id: a.id, port: '/dev/ttyUSB5', imei: '356938031000004' });
    expect((await store.listChannels()).map((c) => c.port)).toEqual(['/dev/ttyUSB5']);
  });

  it('logs events and purges old history but never unfinished messages', async () => {
    const [done, waiting] = (await store.enqueue([message(), message()], 0)).messages;
    await store.claimDue('gw', 0, 1000, 1);
    await store.markFailed(done!.id, 'gw', { errorCode: 'X', errorText: 'x', reason: 'x' }, 10);
    await store.logEvent({ kind: 'sent', messageId: done!.id, detail: { refs: [1] } }, 10);
    await store.logEvent({ kind: 'channel.unhealthy', channelId: 3 }, 5000);
    expect((await store.listEvents({ messageId: done!.id }))[0]).toMatchObject({ kind: 'sent', detail: { refs: [1] } });
    expect(await store.purgeHistory(1000)).toEqual({ messages: 1, events: 1 });
    expect(await store.getMessage(done!.id)).toBeNull();
    expect(await store.getMessage(waiting!.id)).not.toBeNull();
  });
});

describe('openStorage', () => {
  it('refuses a URL of an unknown kind', async () => {
    await expect(openStorage('postgres://x')).rejects.toMatchObject({ code: 'USAGE' });
  });
});
