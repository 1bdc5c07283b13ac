/**
 * The HTTP ways in, against the running gateway (HTTP, dispatcher, simulated modems on real ptys) and the
 * simulator's record of what the network received: the classic device endpoint by GET and POST, the JSON API, the
 * A2P endpoint, auth and rate limits, per-user SIMs, idempotency, cancel, templates (keep, share, preview, send
 * with per-recipient vars), and an injection corpus that must be answered 4xx with nothing stored.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../server/auth.js';
import { signature } from '../../server/callbacks.js';
import { defaultConfig } from '../../server/config.js';
import { type Gateway, startGateway } from '../../server/gateway.js';
import type { Storage } from '../../sql/storage.js';

let dir: string;
let gateway: Gateway;
let base: string;
let storage: Storage;
const PASS = { admin: 'admin-password-1', bob: 'bob-password-1', carol: 'carol-password-1', dave: 'dave-password-1' };
let ids: Record<keyof typeof PASS, number>;
let addressCounter = 0;

/** Each test speaks from its own client address (trust_proxy is on), so rate limits stay per test. */
function address(): string {
  addressCounter++;
  return `10.0.${Math.floor(addressCounter / 250)}.${(addressCounter % 250) + 1}`;
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

interface Answer {
  status: number;
  type: string | null;
  body: any;
  headers: Headers;
}

async function http(method: string, path: string, options: { body?: unknown; raw?: string | Buffer; type?: string; headers?: Record<string, string>; from?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'x-forwarded-for': options.from ?? address(), ...options.headers };
  let body: string | Buffer | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  } else if (options.raw !== undefined) {
    body = options.raw;
    headers['content-type'] = options.type ?? 'application/x-www-form-urlencoded';
  }
  const response = await fetch(`${base}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: kept as text (and the test will say so)
  }
  return { status: response.status, type: response.headers.get('content-type'), body: parsed, headers: response.headers };
}

const asAdmin = { authorization: basic('admin', PASS.admin) };
const asBob = { authorization: basic('bob', PASS.bob) };

function network(): { to: string; text: string; imsi: string; concat: unknown }[] {
  const file = join(dir, 'sim', 'network.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

async function messageCount(): Promise<number> {
  return Object.values(await storage.countByState()).reduce((a, b) => a + (b ?? 0), 0);
}

async function waitFor<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`timed out; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'smsgate-api-'));
  mkdirSync(join(dir, 'lock'));
  const config = defaultConfig();
  config.dataDir = dir;
  config.listen = '127.0.0.1:0';
  config.trustProxy = 'loopback';
  config.simulate = { modems: 2, latencyMs: 30 };
  config.modems.lockDir = join(dir, 'lock');
  config.send.maxRecipients = 100;
  config.send.maxTextLength = 500;
  config.auth.maxFailures = 3;
  config.auth.bcryptCost = 4;
  gateway = await startGateway({ config, log: () => undefined });
  base = gateway.url;
  storage = gateway.services.storage;
  const made = {} as Record<keyof typeof PASS, number>;
  for (const [name, pass] of Object.entries(PASS) as [keyof typeof PASS, string][]) {
    made[name] = (await storage.createUser({ name, passwordHash: await hashPassword(pass, 4), role: name === 'admin' ? 'admin' : 'user' })).id;
  }
  ids = made;
  // bob owns SIM 1, carol SIM 2; dave owns none.
  const sims = await storage.listSims();
  await storage.setSimOwners(sims[0]!.id, [ids.bob]);
  await storage.setSimOwners(sims[1]!.id, [ids.carol]);
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the classic device endpoint', () => {
  it('GET with three comma-separated numbers stores three messages, and the network receives them', async () => {
    const tel = encodeURIComponent('+79161110001, +7 (916) 111-00-02,+7-916-111-0003');
    const r = await http('GET', `/smsc.php?login=admin&pass=${PASS.admin}&tel=${tel}&msg=${encodeURIComponent('Alarm: door 3 open')}`);
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/json/);
    expect(r.body).toMatchObject({ success: true, description: 'Saved to queue' });
    expect(r.body.ids).toHaveLength(3);
    const got = await waitFor(
      () => network().filter((n) => n.text === 'Alarm: door 3 open'),
      (l) => l.length === 3,
    );
    expect(got.map((n) => n.to).sort()).toEqual(['+79161110001', '+79161110002', '+79161110003']);
    for (const id of r.body.ids as number[]) {
      expect((await waitFor(() => storage.getMessage(id), (m) => m?.state === 'sent'))!.source).toBe('classic');
    }
  });

  it('POST form-encoded at /send, with flash and replace-ID, reaches the network as asked', async () => {
    const form = new URLSearchParams({ login: 'admin', pass: PASS.admin, tel: '+79161110004,+79161110005,+79161110006', msg: 'Привет', flash: '1', replacemessages_id: '3' });
    const r = await http('POST', '/send', { raw: form.toString() });
    expect(r.status).toBe(200);
    expect(r.body.ids).toHaveLength(3);
    const got = await waitFor(
      () => network().filter((n) => n.text === 'Привет'),
      (l) => l.length === 3,
    );
    expect(got.map((n) => n.to).sort()).toEqual(['+79161110004', '+79161110005', '+79161110006']);
    expect(got.every((n: any) => n.class === 0 && n.replace === 3 && n.encoding === 'ucs2')).toBe(true);
  });

  it('an unencoded "+" in tel is a plus where a number starts, and a space inside one', async () => {
    const r = await http('GET', `/smsc.php?login=admin&pass=${PASS.admin}&tel=+79161110010,+7+916+111+00+11&msg=plus`);
    expect(r.status).toBe(200);
    expect(r.body.numbers).toEqual(['+79161110010', '+79161110011']);
    const form = await http('POST', '/send', { raw: `login=admin&pass=${PASS.admin}&tel=+79161110012&msg=plus+form` });
    expect(form.body.numbers).toEqual(['+79161110012']);
    expect((await storage.getMessage(form.body.ids[0]))!.text).toBe('plus form');
  });

  it('a repeated number is sent once, and numbers says which id is which', async () => {
    const r = await http('GET', `/smsc.php?login=admin&pass=${PASS.admin}&tel=%2B79161110013,%2B79161110014,%2B79161110013&msg=dup`);
    expect(r.body.numbers).toEqual(['+79161110013', '+79161110014']);
    expect(r.body.ids).toHaveLength(2);
  });

  it('POST with the parameters in the query string works too', async () => {
    const r = await http('POST', `/smsc.php?login=admin&pass=${PASS.admin}&tel=%2B79161110007&msg=query`);
    expect(r.status).toBe(200);
    expect(r.body.ids).toHaveLength(1);
  });

  it.each([
    ['no credentials', 'tel=%2B79161110001&msg=x', 403, 'Login and password required'],
    ['a login but no password', 'login=admin&tel=%2B79161110001&msg=x', 403, 'Login and password required'],
    ['a wrong password', 'login=admin&pass=nope&tel=%2B79161110001&msg=x', 401, 'Wrong login or password'],
    ['a user that does not exist', 'login=ghost&pass=nope&tel=%2B79161110001&msg=x', 401, 'Wrong login or password'],
    ['an empty phone', `login=admin&pass=${PASS.admin}&tel=&msg=x`, 400, 'Empty phone number'],
    ['no phone at all', `login=admin&pass=${PASS.admin}&msg=x`, 400, 'Empty phone number'],
    ['an empty message', `login=admin&pass=${PASS.admin}&tel=%2B79161110001&msg=`, 400, 'Empty message'],
    ['a message of spaces', `login=admin&pass=${PASS.admin}&tel=%2B79161110001&msg=%20%20`, 400, 'Empty message'],
    ['no message at all', `login=admin&pass=${PASS.admin}&tel=%2B79161110001`, 400, 'Empty message'],
  ])('%s: %i "%s", nothing stored', async (_what, query, status, description) => {
    const before = await messageCount();
    for (const method of ['GET', 'POST']) {
      const r = method === 'GET' ? await http('GET', `/smsc.php?${query}`) : await http('POST', '/send', { raw: query });
      expect(r.status).toBe(status);
      expect(r.type).toMatch(/^application\/json/);
      expect(r.body).toMatchObject({ success: false, description });
    }
    expect(await messageCount()).toBe(before);
  });

  it('an invalid phone among valid ones refuses the whole request and names the offenders', async () => {
    const before = await messageCount();
    const r = await http('GET', `/smsc.php?login=admin&pass=${PASS.admin}&tel=%2B79161110001,abc,%2B79161110002,12&msg=x`);
    expect(r.status).toBe(400);
    expect(r.body.success).toBe(false);
    expect(r.body.description).toMatch(/^Invalid phone number: /);
    expect(r.body.invalid.map((i: { input: string }) => i.input)).toEqual(['abc', '12']);
    expect(await messageCount()).toBe(before);
  });

  it.each([
    ['replacemessages_id out of range', 'replacemessages_id=9', 'replacemessages_id'],
    ['attempts not a number', 'attempts=many', 'attempts'],
    ['flash not a boolean', 'flash=maybe', 'flash'],
    ['tel given twice', 'tel=%2B79161110009', 'tel'],
  ])('%s: 400 naming the field', async (_what, extra, field) => {
    const before = await messageCount();
    const r = await http('GET', `/smsc.php?login=admin&pass=${PASS.admin}&tel=%2B79161110001&msg=x&${extra}`);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ success: false, field });
    expect(await messageCount()).toBe(before);
  });
});

describe('the JSON API', () => {
  it('sends with a token, shows encoding, parts, state, SIM and attempts, and lists with filters', async () => {
    const created = await http('POST', '/api/v1/tokens', { headers: asBob, body: { label: 'sensor' } });
    expect(created.status).toBe(201);
    const bearer = { authorization: `Bearer ${created.body.token}` };
    const r = await http('POST', '/api/v1/messages', { headers: bearer, body: { to: ['+79162220001', '+79162220002'], text: 'x'.repeat(161) } });
    expect(r.status).toBe(201);
    expect(r.body.duplicate).toBe(false);
    expect(r.body.messages).toHaveLength(2);
    expect(r.body.messages[0]).toMatchObject({ to: '+79162220001', encoding: 'gsm7', parts: 2, state: 'queued', attempts: 0, source: 'api' });
    const id = r.body.messages[0].id as number;
    const sent = await waitFor(
      () => http('GET', `/api/v1/messages/${id}`, { headers: bearer }),
      (a) => a.body.state === 'sent',
    );
    // bob's messages go through bob's SIM only.
    const bobSim = (await storage.simsOfUser(ids.bob))[0]!;
    expect(sent.body).toMatchObject({ state: 'sent', attempts: 1, sim: { id: bobSim.id, number: bobSim.number }, error: null });
    expect(sent.body.part_refs).toHaveLength(2);
    const list = await http('GET', '/api/v1/messages?to=2220002&limit=5', { headers: bearer });
    expect(list.status).toBe(200);
    expect(list.body.messages.map((m: { to: string }) => m.to)).toEqual(['+79162220002']);
    const none = await http('GET', '/api/v1/messages?state=failed', { headers: bearer });
    expect(none.body.messages).toEqual([]);
    // Revoked, the token opens nothing.
    expect((await http('DELETE', `/api/v1/tokens/${created.body.id}`, { headers: asBob })).status).toBe(200);
    expect((await http('GET', `/api/v1/messages/${id}`, { headers: bearer })).status).toBe(401);
  });

  it('pages backwards with next_before', async () => {
    const r = await http('POST', '/api/v1/messages', { headers: asBob, body: { to: '+79162230001,+79162230002,+79162230003', text: 'page', send_at: '2099-01-01T00:00:00Z' } });
    expect(r.status).toBe(201);
    const first = await http('GET', '/api/v1/messages?limit=2&state=queued', { headers: asBob });
    expect(first.body.messages).toHaveLength(2);
    expect(first.body.next_before).toBe(first.body.messages[1].id);
    const second = await http('GET', `/api/v1/messages?limit=2&state=queued&before=${first.body.next_before}`, { headers: asBob });
    expect(second.body.messages.map((m: { id: number }) => m.id)).toEqual([r.body.messages[0].id]);
    expect(second.body.next_before).toBeNull();
    expect((await http('GET', '/api/v1/messages?limit=501', { headers: asBob })).body).toMatchObject({ error: 'BAD_MESSAGE', field: 'limit' });
  });

  it('the same user and msg_id returns the same messages and sends nothing twice', async () => {
    const body = { to: '+79162240001,+79162240002', text: 'once only', msg_id: 'order-42' };
    const [a, b] = await Promise.all([http('POST', '/api/v1/messages', { headers: asAdmin, body }), http('POST', '/api/v1/messages', { headers: asAdmin, body })]);
    const first = a.body.duplicate ? b : a;
    const again = a.body.duplicate ? a : b;
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.duplicate).toBe(true);
    expect(again.body.messages.map((m: { id: number }) => m.id)).toEqual(first.body.messages.map((m: { id: number }) => m.id));
    const third = await http('POST', '/api/v1/messages', { headers: asAdmin, body });
    expect(third.body.messages.map((m: { id: number }) => m.id)).toEqual(first.body.messages.map((m: { id: number }) => m.id));
    await waitFor(
      () => network().filter((n) => n.text === 'once only'),
      (l) => l.length >= 2,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(network().filter((n) => n.text === 'once only')).toHaveLength(2);
    // Another user's msg_id of the same value is another request.
    const bobs = await http('POST', '/api/v1/messages', { headers: asBob, body: { ...body, to: '+79162240003' } });
    expect(bobs.status).toBe(201);
  });

  it('a used msg_id with a different request is refused, and stores nothing', async () => {
    const first = await http('POST', '/api/v1/messages', { headers: asAdmin, body: { to: '+79162240011', text: 'first', msg_id: 'k1' } });
    expect(first.status).toBe(201);
    const before = await messageCount();
    for (const body of [
      { to: '+79162240011', text: 'second', msg_id: 'k1' },
      { to: ['+79162240012', '+79162240013'], text: 'first', msg_id: 'k1' },
      { to: '+79162240011', text: 'first', msg_id: 'k1', flash: true },
    ]) {
      const r = await http('POST', '/api/v1/messages', { headers: asAdmin, body });
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ error: 'CONFLICT', field: 'msg_id' });
    }
    const classic = await http('GET', `/smsc.php?login=admin&pass=${PASS.admin}&tel=%2B79162240014&msg=other&msg_id=k1`);
    expect(classic.status).toBe(409);
    expect(classic.body.success).toBe(false);
    expect(await messageCount()).toBe(before);
    // The same request again is the same messages.
    const same = await http('POST', '/api/v1/messages', { headers: asAdmin, body: { to: '+7 916 224-00-11', text: 'first', msg_id: 'k1' } });
    expect(same.status).toBe(200);
    expect(same.body.messages.map((m: { id: number }) => m.id)).toEqual(first.body.messages.map((m: { id: number }) => m.id));
  });

  it('a replace-ID on a multipart text is left out, with a warning', async () => {
    const r = await http('POST', '/api/v1/messages', { headers: asAdmin, body: { to: '+79162240015', text: 'y'.repeat(200), replace_id: 2 } });
    expect(r.status).toBe(201);
    expect(r.body.warnings[0]).toMatch(/replace_id is left out/);
    expect(r.body.messages[0].replace_id).toBeNull();
  });

  it('cancels a queued message; a sent or foreign one cannot be', async () => {
    const r = await http('POST', '/api/v1/messages', { headers: asBob, body: { to: '+79162250001', text: 'later', send_at: '2099-01-01T00:00:00+03:00' } });
    const id = r.body.messages[0].id;
    expect((await http('DELETE', `/api/v1/messages/${id}`, { headers: { authorization: basic('carol', PASS.carol) } })).status).toBe(404);
    const cancelled = await http('DELETE', `/api/v1/messages/${id}`, { headers: asBob });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id, state: 'cancelled' });
    const again = await http('DELETE', `/api/v1/messages/${id}`, { headers: asBob });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: 'CONFLICT', field: 'id' });
    expect((await http('DELETE', '/api/v1/messages/999999', { headers: asBob })).status).toBe(404);
    expect((await http('DELETE', '/api/v1/messages/abc', { headers: asBob })).status).toBe(404);
  });

  it('a user sends only through their own SIMs', async () => {
    const [sim1, sim2] = await storage.listSims();
    const refused = await http('POST', '/api/v1/messages', { headers: asBob, body: { to: '+79162260001', text: 'x', sim: sim2!.id } });
    expect(refused.status).toBe(404);
    expect(refused.body).toMatchObject({ error: 'NOT_FOUND', field: 'sim' });
    // Another user's SIM reads exactly as a SIM that does not exist.
    const foreign = await http('POST', '/api/v1/messages', { headers: asBob, body: { to: '+79162260001', text: 'x', sim: sim2!.number } });
    const missing = await http('POST', '/api/v1/messages', { headers: asBob, body: { to: '+79162260001', text: 'x', sim: '+79990000000' } });
    expect(foreign.body.description.replace(sim2!.number!, 'N')).toBe(missing.body.description.replace('+79990000000', 'N'));
    const byNumber = await http('POST', '/api/v1/messages', { headers: asBob, body: { to: '+79162260002', text: 'via my number', sim: sim1!.number } });
    expect(byNumber.status).toBe(201);
    expect(byNumber.body.messages[0].requested_sim).toBe(sim1!.id);
    const sims = await http('GET', '/api/v1/sims', { headers: asBob });
    expect(sims.body.sims.map((s: { id: number }) => s.id)).toEqual([sim1!.id]);
    expect(sims.body.sims[0]).not.toHaveProperty('owners');
    const channels = await http('GET', '/api/v1/channels', { headers: asBob });
    expect(channels.body.channels.map((c: { sim: { id: number } }) => c.sim.id)).toEqual([sim1!.id]);
    expect(channels.body.channels[0]).toMatchObject({ attached: true, healthy: true, operator: 'MegaFon', registration: 'home' });
    expect(typeof channels.body.channels[0].signal_dbm).toBe('number');
    // dave has no SIM: his message waits and says why.
    const daves = await http('POST', '/api/v1/messages', { headers: { authorization: basic('dave', PASS.dave) }, body: { to: '+79162260003', text: 'x' } });
    expect(daves.status).toBe(201);
    const waiting = await waitFor(
      () => storage.getMessage(daves.body.messages[0].id),
      (m) => m?.reason !== null,
    );
    expect(waiting).toMatchObject({ state: 'queued', reason: 'no SIM is assigned to this user' });
  });

  it("a backlog that cannot go does not hold up other users' messages", async () => {
    const daves = Array.from({ length: 80 }, (_, i) => `+7916228${String(i).padStart(4, '0')}`);
    const backlog = await http('POST', '/api/v1/messages', { headers: { authorization: basic('dave', PASS.dave) }, body: { to: daves, text: 'stuck', priority: 100 } });
    expect(backlog.status).toBe(201);
    const r = await http('POST', '/api/v1/messages', { headers: { authorization: basic('carol', PASS.carol) }, body: { to: '+79162280999', text: 'goes anyway' } });
    const id = r.body.messages[0].id;
    expect((await waitFor(() => storage.getMessage(id), (m) => m?.state === 'sent', 10_000))!.state).toBe('sent');
  });

  it('SIM settings are for admins; a change is applied and validated', async () => {
    const [sim1] = await storage.listSims();
    expect((await http('PATCH', `/api/v1/sims/${sim1!.id}`, { headers: asBob, body: { monthly_quota: 5 } })).status).toBe(403);
    const bad = await http('PATCH', `/api/v1/sims/${sim1!.id}`, { headers: asAdmin, body: { quiet_start: '24:00' } });
    expect(bad.status).toBe(400);
    expect(bad.body.field).toBe('quiet_start');
    const unknown = await http('PATCH', `/api/v1/sims/${sim1!.id}`, { headers: asAdmin, body: { quota: 5 } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.field).toBe('quota');
    const ok = await http('PATCH', `/api/v1/sims/${sim1!.id}`, { headers: asAdmin, body: { monthly_quota: 1000, label: 'office', owners: ['bob', ids.dave] } });
    expect((await http('PATCH', `/api/v1/sims/${sim1!.id}`, { headers: asAdmin, body: { owners: [String(ids.bob)] } })).status).toBe(404);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ monthly_quota: 1000, label: 'office', owners: [ids.bob, ids.dave].sort((a, b) => a - b) });
    expect(ok.body.quota_left).toBe(1000 - ok.body.quota_used - ok.body.quota_reserved);
  });

  it('users and tokens: admins manage users, the last admin stays, passwords are checked', async () => {
    expect((await http('GET', '/api/v1/users', { headers: asBob })).status).toBe(403);
    const weak = await http('POST', '/api/v1/users', { headers: asAdmin, body: { name: 'eve', password: 'short' } });
    expect(weak).toMatchObject({ status: 400, body: { field: 'password' } });
    const badName = await http('POST', '/api/v1/users', { headers: asAdmin, body: { name: 'eve<script>', password: 'long-enough-1' } });
    expect(badName).toMatchObject({ status: 400, body: { field: 'name' } });
    const eve = await http('POST', '/api/v1/users', { headers: asAdmin, body: { name: 'eve', password: 'long-enough-1' } });
    expect(eve.status).toBe(201);
    expect((await http('POST', '/api/v1/users', { headers: asAdmin, body: { name: 'eve', password: 'long-enough-1' } })).status).toBe(409);
    const lastAdmin = await http('PATCH', `/api/v1/users/${ids.admin}`, { headers: asAdmin, body: { role: 'user' } });
    expect(lastAdmin.status).toBe(409);
    // A user whose messages ask for delivery reports by default.
    const withReports = await http('PATCH', `/api/v1/users/${eve.body.id}`, { headers: asAdmin, body: { report_default: true } });
    expect(withReports.body.report_default).toBe(true);
    const evesMessage = await http('POST', '/api/v1/messages', { headers: { authorization: basic('eve', 'long-enough-1') }, body: { to: '+79162290001', text: 'r', send_at: '2099-01-01T00:00:00Z' } });
    expect(evesMessage.body.messages[0].report).toBe(true);
    const explicit = await http('POST', '/api/v1/messages', { headers: { authorization: basic('eve', 'long-enough-1') }, body: { to: '+79162290002', text: 'r', report: false, send_at: '2099-01-01T00:00:00Z' } });
    expect(explicit.body.messages[0].report).toBe(false);
    const disabled = await http('PATCH', `/api/v1/users/${eve.body.id}`, { headers: asAdmin, body: { disabled: true } });
    expect(disabled.body.disabled).toBe(true);
    expect((await http('GET', '/api/v1/sims', { headers: { authorization: basic('eve', 'long-enough-1') } })).status).toBe(401);
  });

  it('web sessions: a cookie that needs X-Requested-With to change anything', async () => {
    const viaForm = await http('POST', '/api/v1/session', { raw: `login=bob&password=${PASS.bob}` });
    expect(viaForm.status).toBe(400);
    expect(viaForm.headers.get('set-cookie')).toBeNull();
    const login = await http('POST', '/api/v1/session', { body: { login: 'bob', password: PASS.bob } });
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!;
    expect(cookie).toMatch(/smsgate_session=sg_[^;]+; .*HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const value = cookie.split(';')[0]!;
    expect((await http('GET', '/api/v1/session', { headers: { cookie: value } })).body.user.name).toBe('bob');
    const forged = await http('POST', '/api/v1/messages', { headers: { cookie: value }, body: { to: '+79162270001', text: 'csrf' } });
    expect(forged.status).toBe(403);
    const real = await http('POST', '/api/v1/messages', { headers: { cookie: value, 'x-requested-with': 'smsgate' }, body: { to: '+79162270001', text: 'from the form' } });
    expect(real.status).toBe(201);
    expect(real.body.messages[0].source).toBe('web');
    await http('DELETE', '/api/v1/session', { headers: { cookie: value, 'x-requested-with': 'smsgate' } });
    expect((await http('GET', '/api/v1/session', { headers: { cookie: value } })).status).toBe(401);
    // An API token is not a session, nor a session a token.
    expect((await http('GET', '/api/v1/sims', { headers: { authorization: `Bearer ${value.split('=')[1]}` } })).status).toBe(401);
  });

  it('serves its OpenAPI description, naming every route', async () => {
    const r = await http('GET', '/api/v1/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    for (const path of ['/api/v1/messages', '/api/v1/messages/{id}', '/api/v1/templates', '/api/v1/templates/{id}', '/api/v1/templates/preview', '/api/v1/sims', '/api/v1/sims/{id}', '/api/v1/sims/{id}/balance', '/api/v1/sims/{id}/balances', '/api/v1/sims/{id}/ussd', '/api/v1/inbox', '/api/v1/inbox/{id}', '/api/v1/channels', '/smsc.php', '/sms/v1/sms']) {
      expect(Object.keys(r.body.paths)).toContain(path);
    }
  });
});

describe('templates', () => {
  const asCarol = { authorization: basic('carol', PASS.carol) };
  const later = '2099-01-01T00:00:00Z';
  const post = (headers: Record<string, string>, body: unknown) => http('POST', '/api/v1/templates', { headers, body });
  const send = (headers: Record<string, string>, body: unknown) => http('POST', '/api/v1/messages', { headers, body });
  const preview = (headers: Record<string, string>, body: unknown) => http('POST', '/api/v1/templates/preview', { headers, body });
  let bobsWelcome: number;
  let sharedWelcome: number;

  it('a user keeps their own templates; only admins make shared ones; names are unique per owner', async () => {
    const own = await post(asBob, { name: 'welcome', body: 'Hi %(name)s, from bob' });
    expect(own.status).toBe(201);
    expect(own.body).toMatchObject({ name: 'welcome', body: 'Hi %(name)s, from bob', shared: false, user_id: ids.bob, variables: ['name'] });
    bobsWelcome = own.body.id;
    const again = await post(asBob, { name: 'welcome', body: 'x' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: 'CONFLICT', field: 'name', description: 'a template of this user named "welcome" exists already' });
    const notAdmin = await post(asBob, { name: 'everyone', body: 'x', shared: true });
    expect(notAdmin.status).toBe(403);
    const shared = await post(asAdmin, { name: 'welcome', body: 'Welcome, %(name)s!%(if code)s Your code: %(code)s%(endif)s', shared: true });
    expect(shared.status).toBe(201);
    expect(shared.body).toMatchObject({ shared: true, user_id: null, variables: ['name', 'code'] });
    sharedWelcome = shared.body.id;
    // carol may keep a "welcome" of her own too.
    expect((await post(asCarol, { name: 'welcome', body: 'carol' })).status).toBe(201);
    const anns = await post(asAdmin, { name: 'admin only', body: 'mine' });
    expect(anns.body).toMatchObject({ shared: false, user_id: ids.admin });

    const bobs = await http('GET', '/api/v1/templates', { headers: asBob });
    expect(bobs.body.templates.map((t: { id: number }) => t.id).sort()).toEqual([bobsWelcome, sharedWelcome].sort());
    const all = await http('GET', '/api/v1/templates', { headers: asAdmin });
    expect(all.body.templates.map((t: { name: string }) => t.name)).toEqual(['admin only', 'welcome', 'welcome', 'welcome']);
  });

  it.each([
    ['a body that does not parse', { name: 't1', body: 'Hi %(name)s%(endif)s' }, 'body', /^%\(endif\)s at character 12 closes no %\(if …\)s$/],
    ['a bad placeholder', { name: 't1', body: 'Hi %(first name)s' }, 'body', /^bad placeholder/],
    ['an empty body', { name: 't1', body: '  ' }, 'body', /missing or empty/],
    ['a body over twice max_text_length', { name: 't1', body: 'x'.repeat(1001) }, 'body', /too long: 1001 characters \(at most 1000\)/],
    ['a control character in the body', { name: 't1', body: 'a\u0007b' }, 'body', /control character/],
    ['a body that is not a string', { name: 't1', body: ['x'] }, 'body', /must be given once/],
    ['an all-digit name', { name: '123', body: 'x' }, 'name', /all digits/],
    ['a name of 65 characters', { name: 'n'.repeat(65), body: 'x' }, 'name', /1 to 64 characters/],
    ['a name with spaces around', { name: ' t1', body: 'x' }, 'name', /without spaces at either end/],
    ['a name on two lines', { name: 'a\nb', body: 'x' }, 'name', /one line/],
    ['no name', { body: 'x' }, 'name', /missing/],
    ['an unknown field', { name: 't1', body: 'x', owner: 3 }, 'owner', /unknown field/],
    ['shared not a boolean', { name: 't1', body: 'x', shared: 'perhaps' }, 'shared', /true or false/],
  ])('refuses %s: 400 naming the field, nothing saved', async (_what, body, field, description) => {
    const before = (await http('GET', '/api/v1/templates', { headers: asAdmin })).body.templates.length;
    const r = await post(asAdmin, body);
    expect(r.status).toBe(400);
    expect(r.body.field).toBe(field);
    expect(r.body.description).toMatch(description);
    expect((await http('GET', '/api/v1/templates', { headers: asAdmin })).body.templates).toHaveLength(before);
  });

  it('a body of exactly twice max_text_length is saved', async () => {
    const r = await post(asBob, { name: 'longest', body: 'y'.repeat(1000) });
    expect(r.status).toBe(201);
    expect((await http('DELETE', `/api/v1/templates/${r.body.id}`, { headers: asBob })).status).toBe(200);
  });

  it('reads, changes and deletes: the owner or an admin; a shared one, admins only; others see nothing', async () => {
    const t = (await post(asBob, { name: 'crud', body: 'v1 %(a)s' })).body;
    expect((await http('GET', `/api/v1/templates/${t.id}`, { headers: asBob })).body).toMatchObject({ id: t.id, body: 'v1 %(a)s' });
    expect((await http('GET', `/api/v1/templates/${t.id}`, { headers: asAdmin })).status).toBe(200);
    expect((await http('GET', `/api/v1/templates/${t.id}`, { headers: asCarol })).status).toBe(404);
    expect((await http('GET', `/api/v1/templates/${sharedWelcome}`, { headers: asCarol })).body.shared).toBe(true);
    expect((await http('GET', '/api/v1/templates/abc', { headers: asBob })).status).toBe(404);
    // Changes.
    expect((await http('PUT', `/api/v1/templates/${t.id}`, { headers: asCarol, body: { body: 'carol was here' } })).status).toBe(404);
    const changed = await http('PUT', `/api/v1/templates/${t.id}`, { headers: asBob, body: { body: 'v2 %(b)s %(a)s' } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ name: 'crud', body: 'v2 %(b)s %(a)s', variables: ['b', 'a'] });
    const broken = await http('PUT', `/api/v1/templates/${t.id}`, { headers: asBob, body: { body: '%(if a)s never closed' } });
    expect(broken).toMatchObject({ status: 400, body: { field: 'body' } });
    const taken = await http('PUT', `/api/v1/templates/${t.id}`, { headers: asBob, body: { name: 'welcome' } });
    expect(taken).toMatchObject({ status: 409, body: { field: 'name' } });
    expect((await http('PUT', `/api/v1/templates/${t.id}`, { headers: asBob, body: {} })).status).toBe(400);
    expect((await http('PUT', `/api/v1/templates/${t.id}`, { headers: asBob, body: { shared: true } })).body.field).toBe('shared');
    const renamed = await http('PUT', `/api/v1/templates/${t.id}`, { headers: asAdmin, body: { name: 'crud-2' } });
    expect(renamed.body).toMatchObject({ name: 'crud-2', body: 'v2 %(b)s %(a)s', user_id: ids.bob });
    expect((await http('PUT', `/api/v1/templates/${sharedWelcome}`, { headers: asBob, body: { body: 'hijacked' } })).status).toBe(403);
    expect((await http('GET', `/api/v1/templates/${sharedWelcome}`, { headers: asBob })).body.body).not.toBe('hijacked');
    // Deletes.
    expect((await http('DELETE', `/api/v1/templates/${sharedWelcome}`, { headers: asBob })).status).toBe(403);
    expect((await http('DELETE', `/api/v1/templates/${t.id}`, { headers: asCarol })).status).toBe(404);
    expect((await http('DELETE', `/api/v1/templates/${t.id}`, { headers: asBob })).body).toEqual({ id: t.id, deleted: true });
    expect((await http('DELETE', `/api/v1/templates/${t.id}`, { headers: asBob })).status).toBe(404);
    expect((await http('GET', '/api/v1/templates', { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
  });

  it('previews a body or a stored template with vars, measured as a send is', async () => {
    const body = await preview(asBob, { body: 'Hi %(name)s, 100%% sure', vars: { name: 'Ann' } });
    expect(body.status).toBe(200);
    expect(body.body).toEqual({ text: 'Hi Ann, 100% sure', encoding: 'gsm7', parts: 1, characters: 17, remaining: 160 - 17, variables: ['name'], template: null });
    // By name: bob's own "welcome" before the shared one; carol has her own; dave gets the shared one.
    expect((await preview(asBob, { template: 'welcome', vars: { name: 'Ann' } })).body.text).toBe('Hi Ann, from bob');
    const daves = await preview({ authorization: basic('dave', PASS.dave) }, { template: 'welcome', vars: { name: 'Дэйв', code: 7 } });
    expect(daves.body).toMatchObject({ text: 'Welcome, Дэйв! Your code: 7', encoding: 'ucs2', parts: 1, template: { id: sharedWelcome, name: 'welcome' } });
    const byId = await preview(asCarol, { template: sharedWelcome, vars: { name: 'x'.repeat(170) } });
    expect(byId.body).toMatchObject({ encoding: 'gsm7', parts: 2 });
    expect((await preview(asCarol, { template: String(sharedWelcome), vars: { name: 'C' } })).body.text).toBe('Welcome, C!');
  });

  it.each([
    ['a missing variable', { template: 'welcome' }, 400, 'vars.name', 'missing variable "name"'],
    ['a value that is not a string or number', { template: 'welcome', vars: { name: true } }, 400, 'vars.name', /must be a string or a number, not a boolean/],
    ['vars that are not an object', { template: 'welcome', vars: 'name=Ann' }, 400, 'vars', /must be an object/],
    ['a body that does not parse', { body: '%(else)s' }, 400, 'body', /belongs to no/],
    ['both template and body', { template: 'welcome', body: 'x' }, 400, 'body', /not both/],
    ['neither', { vars: { a: 1 } }, 400, 'template', /give a template/],
    ['an unknown template', { template: 'nope' }, 404, 'template', 'no template "nope"'],
    ["another user's template", { template: -1 }, 404, 'template', /no template/],
    ['a text that renders empty', { body: '%(if a)sx%(endif)s' }, 400, 'body', 'the rendered text is empty'],
    ['a text that renders too long', { body: '%(a)s', vars: { a: 'z'.repeat(501) } }, 400, 'body', /too long: 501 characters \(at most 500\)/],
    ['an unknown field', { body: 'x', text: 'y' }, 400, 'text', /unknown field/],
  ])('preview refuses %s, naming the field', async (_what, request, status, field, description) => {
    const body = (request as { template?: unknown }).template === -1 ? { template: bobsWelcome } : request;
    // dave has no "welcome" of his own: the shared one is his.
    const r = await preview({ authorization: basic('dave', PASS.dave) }, body);
    expect(r.status).toBe(status);
    expect(r.body.field).toBe(field);
    if (typeof description === 'string') expect(r.body.description).toBe(description);
    else expect(r.body.description).toMatch(description);
  });

  it('sends with a template: shared vars, per-recipient vars, each row with its own text, encoding and parts', async () => {
    const t = (await post(asBob, { name: 'order', body: 'Hello %(name)s, order %(order)s is ready.%(if note)s %(note)s%(endif)s' })).body;
    const note = 'Please bring your ID and the receipt. '.repeat(4).trim();
    const r = await send(asBob, {
      template: 'order',
      vars: { name: 'Ann', order: 42 },
      to: ['+79167770001', { to: '+79167770002', vars: { name: 'Борис' } }, { to: '+79167770003', vars: { order: '43-B', note } }],
    });
    expect(r.status).toBe(201);
    expect(r.body.template).toEqual({ id: t.id, name: 'order' });
    const texts = ['Hello Ann, order 42 is ready.', 'Hello Борис, order 42 is ready.', `Hello Ann, order 43-B is ready. ${note}`];
    expect(r.body.messages.map((m: { to: string; text: string; encoding: string; parts: number }) => [m.to, m.text, m.encoding, m.parts])).toEqual([
      ['+79167770001', texts[0], 'gsm7', 1],
      ['+79167770002', texts[1], 'ucs2', 1],
      ['+79167770003', texts[2], 'gsm7', 2],
    ]);
    // Each queue row is stored as rendered.
    for (const m of r.body.messages) expect(await storage.getMessage(m.id)).toMatchObject({ text: m.text, encoding: m.encoding, parts: m.parts, source: 'api' });
    // And the network receives each recipient's own text.
    const got = await waitFor(
      () => network().filter((n) => n.to.startsWith('+7916777000')),
      (l) => l.length === 4,
    );
    for (const [i, to] of ['+79167770001', '+79167770002', '+79167770003'].entries()) {
      expect(got.filter((n) => n.to === to).map((n) => n.text).join('')).toBe(texts[i]);
    }
  });

  it('a template by id (number or digits), a number named twice sent once per distinct text', async () => {
    const r = await send(asBob, {
      template: bobsWelcome,
      to: [{ to: '+79167770011', vars: { name: 'A' } }, { to: '+7 916 777-00-11', vars: { name: 'B' } }, '+79167770011', { to: '+79167770011', vars: {} }],
      vars: { name: 'A' },
      send_at: later,
    });
    expect(r.status).toBe(201);
    expect(r.body.messages.map((m: { to: string; text: string }) => [m.to, m.text])).toEqual([
      ['+79167770011', 'Hi A, from bob'],
      ['+79167770011', 'Hi B, from bob'],
    ]);
    const digits = await send(asBob, { template: String(bobsWelcome), to: '+79167770012', vars: { name: 'D' }, send_at: later });
    expect(digits.body.messages[0].text).toBe('Hi D, from bob');
    // carol's "welcome" is her own; bob's by id is not hers to use.
    expect((await send(asCarol, { template: 'welcome', to: '+79167770013', send_at: later })).body.messages[0].text).toBe('carol');
    expect((await send(asCarol, { template: bobsWelcome, to: '+79167770013', vars: { name: 'x' } })).body).toMatchObject({ error: 'NOT_FOUND', field: 'template' });
  });

  it.each([
    ['a missing shared variable', { template: 'order', vars: { name: 'A' }, to: ['+79167770021'] }, 'vars.order', 'missing variable "order"'],
    [
      "a missing variable in one recipient's own vars",
      { template: 'order', vars: { order: 1 }, to: [{ to: '+79167770021', vars: { name: 'A' } }, { to: '+79167770022', vars: {} }] },
      'to[1].vars.name',
      'missing variable "name"',
    ],
    [
      'a recipient value that is not a string or number',
      { template: 'order', vars: { order: 1 }, to: ['+79167770021', '+79167770022', '+79167770023', { to: '+79167770024', vars: { name: null } }] },
      'to[3].vars.name',
      /must be a string or a number, not null/,
    ],
    ['a shared value that is an object', { template: 'order', vars: { name: { first: 'A' }, order: 1 }, to: '+79167770021' }, 'vars.name', /not an object/],
    ['both text and template', { template: 'order', text: 'x', to: '+79167770021' }, 'template', /either text or template, not both/],
    ['vars with a plain text', { text: 'x', vars: { a: 1 }, to: '+79167770021' }, 'vars', /vars is for templates/],
    ["a recipient's vars with a plain text", { text: 'x', to: ['+79167770021', { to: '+79167770022', vars: { a: 1 } }] }, 'to[1].vars', /is for templates/],
    ['an unknown field in a recipient', { template: 'order', to: [{ to: '+79167770021', name: 'A' }] }, 'to[0].name', /unknown field "name" in to\[0\]/],
    ['two numbers in one recipient object', { template: 'order', to: [{ to: '+79167770021,+79167770022' }] }, 'to[0].to', /must be one phone number/],
    ['an unknown template', { template: 'no-such', to: '+79167770021' }, 'template', 'no template "no-such"'],
    ['a template that is not a name or id', { template: { name: 'order' }, to: '+79167770021' }, 'template', /a template's name or id/],
    [
      'a rendered text over max_text_length',
      { template: 'order', vars: { name: 'A', order: 1 }, to: ['+79167770021', { to: '+79167770022', vars: { note: 'n'.repeat(480) } }] },
      'template',
      /^the text for \+79167770022 is too long: 5\d\d characters \(at most 500\)$/,
    ],
    [
      'too many recipients',
      { template: 'order', vars: { name: 'A', order: 1 }, to: Array.from({ length: 101 }, (_, i) => ({ to: `+7916777${String(i).padStart(4, '0')}` })) },
      'to',
      /too many recipients: 101/,
    ],
  ])('refuses %s whole, naming the field, nothing stored', async (_what, body, field, description) => {
    const before = await messageCount();
    const r = await send(asBob, body);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.body.field).toBe(field);
    if (typeof description === 'string') expect(r.body.description).toBe(description);
    else expect(r.body.description).toMatch(description);
    expect(await messageCount()).toBe(before);
  });

  it('a msg_id repeat: the same vars are the same messages; other vars that change a text are a conflict', async () => {
    const request = { template: 'order', vars: { name: 'Ann', order: 7 }, to: ['+79167770031', { to: '+79167770032', vars: { name: 'Ben' } }], msg_id: 'tpl-1', send_at: later };
    const first = await send(asBob, request);
    expect(first.status).toBe(201);
    const ids = first.body.messages.map((m: { id: number }) => m.id);
    const same = await send(asBob, { ...request, vars: { order: '7', name: 'Ann', unused: 'x' } });
    expect(same.status).toBe(200);
    expect(same.body.duplicate).toBe(true);
    expect(same.body.messages.map((m: { id: number }) => m.id)).toEqual(ids);
    const before = await messageCount();
    for (const changed of [
      { ...request, vars: { name: 'Ann', order: 8 } },
      { ...request, to: ['+79167770031', { to: '+79167770032', vars: { name: 'Bob' } }] },
      { ...request, to: ['+79167770031', '+79167770032'] },
    ]) {
      const r = await send(asBob, changed);
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ error: 'CONFLICT', field: 'msg_id' });
    }
    expect(await messageCount()).toBe(before);
    // A plain text that asks for exactly what a template rendered is the same request.
    await send(asBob, { template: 'order', vars: { name: 'Cy', order: 9 }, to: ['+79167770033', '+79167770034'], msg_id: 'tpl-2', send_at: later });
    const plain = await send(asBob, { text: 'Hello Cy, order 9 is ready.', to: '+79167770033,+79167770034', msg_id: 'tpl-2', send_at: later });
    expect(plain.status).toBe(200);
    expect(plain.body.duplicate).toBe(true);
  });

  it('a plain text answer has no template field, and recipients as objects work without vars', async () => {
    const r = await send(asBob, { text: 'plain', to: [{ to: '+79167770041' }, '+79167770042'], send_at: later });
    expect(r.status).toBe(201);
    expect(r.body).not.toHaveProperty('template');
    expect(r.body.messages.map((m: { to: string; text: string }) => [m.to, m.text])).toEqual([
      ['+79167770041', 'plain'],
      ['+79167770042', 'plain'],
    ]);
  });
});

describe('health and metrics', () => {
  it('/health and /health/ready answer 200 with the queue and the channels', async () => {
    const live = await http('GET', '/health');
    expect(live.status).toBe(200);
    expect(live.body).toMatchObject({ status: 'ok' });
    expect(live.body.channels).toHaveLength(2);
    expect((await http('GET', '/health/ready')).status).toBe(200);
  });

  it('/metrics counts what the database and the dispatcher saw', async () => {
    const r = await http('POST', '/api/v1/messages', { headers: asAdmin, body: { to: '+79165550001,+79165550002', text: 'z'.repeat(200) } });
    for (const m of r.body.messages) await waitFor(() => storage.getMessage(m.id), (x) => x?.state === 'sent');
    // Other users' messages may still be going out: the database is read before and after the scrape, and the
    // scrape is taken again until nothing changed in between (the figures must then be exactly the database's).
    const snapshot = async () => {
      const counts = await storage.countByState();
      const perSim = new Map<number, number>();
      for (const sim of await storage.listSims()) perSim.set(sim.id, await storage.partsSent(sim.id));
      const sentParts = (await storage.listMessages({ state: 'sent', limit: 1000 })).reduce((n, m) => n + m.parts, 0);
      return { counts, perSim, sentParts };
    };
    let text = '';
    let db: Awaited<ReturnType<typeof snapshot>> | undefined;
    for (let i = 0; i < 100 && db === undefined; i++) {
      const before = await snapshot();
      const scrape = await fetch(`${base}/metrics`);
      expect(scrape.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
      text = await scrape.text();
      const after = await snapshot();
      const key = (x: typeof before) => JSON.stringify([Object.entries(x.counts).sort(), [...x.perSim], x.sentParts]);
      if (key(before) === key(after)) db = after;
      else await new Promise((r) => setTimeout(r, 100));
    }
    if (db === undefined) throw new Error('the database never held still for a scrape');
    const value = (pattern: string) => {
      const line = text.split('\n').find((l) => l.startsWith(pattern));
      if (!line) throw new Error(`no metric line ${pattern}`);
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const counts = db.counts;
    expect(value('smsgate_messages{state="sent"}')).toBe(counts.sent);
    expect(value('smsgate_queue_depth ')).toBe(counts.queued ?? 0);
    let parts = 0;
    for (const [simId, sentBySim] of db.perSim) {
      const sent = value(`smsgate_sim_parts_sent_total{sim="${simId}"`);
      expect(sent).toBe(sentBySim);
      parts += sent;
    }
    expect(parts).toBe(db.sentParts);
    expect(value('smsgate_dispatch_latency_seconds_count')).toBeGreaterThanOrEqual(counts.sent!);
    expect(text).toMatch(/smsgate_send_attempts_total\{result="sent",sim="\d+"\} \d+/);
    expect(text).toMatch(/smsgate_channel_signal_dbm\{channel="\d+",port="[^"]+",sim="\d+"\} -\d+/);
    expect(value('smsgate_channel_healthy{')).toBe(1);
    expect(text).toContain('smsgate_process_resident_memory_bytes');
    expect(text).toContain('smsgate_nodejs_eventloop_lag_seconds');
  });
});

describe('failed logins', () => {
  it('are limited per address and per user, the same for a user that does not exist', async () => {
    const from = address();
    for (let i = 0; i < 3; i++) {
      expect((await http('GET', '/api/v1/sims', { from, headers: { authorization: basic('carol', 'wrong') } })).status).toBe(401);
    }
    const blocked = await http('GET', '/api/v1/sims', { from, headers: { authorization: basic('carol', PASS.carol) } });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    // The name is blocked from another address too, whether it exists or not — and the answers look alike.
    const elsewhere = await http('GET', '/api/v1/sims', { headers: { authorization: basic('carol', 'wrong') } });
    expect(elsewhere.status).toBe(429);
    for (let i = 0; i < 3; i++) await http('GET', '/api/v1/sims', { headers: { authorization: basic('nobody-at-all', 'wrong') } });
    const ghost = await http('GET', '/api/v1/sims', { headers: { authorization: basic('nobody-at-all', 'wrong') } });
    expect(ghost.status).toBe(429);
    expect(ghost.body.description.replace(/\d+ s/, 'N s')).toBe(elsewhere.body.description.replace(/\d+ s/, 'N s'));
    // Other users from other addresses are not affected; a valid token works even from the blocked address.
    expect((await http('GET', '/api/v1/sims', { headers: asBob })).status).toBe(200);
    const token = await http('POST', '/api/v1/tokens', { headers: { authorization: basic('carol', PASS.carol) }, from: address() });
    expect(token.status).toBe(429);
    const bobs = await http('POST', '/api/v1/tokens', { headers: asBob });
    expect((await http('GET', '/api/v1/sims', { from, headers: { authorization: `Bearer ${bobs.body.token}` } })).status).toBe(200);
    // "carol  " is not carol.
    const padded = await http('GET', '/api/v1/sims', { headers: { authorization: basic('bob  ', PASS.bob) } });
    expect(padded.status).toBe(401);
  });
});

describe('the A2P endpoint', () => {
  let receiver: Server;
  const received: { body: any; signature: string; timestamp: string; raw: string }[] = [];

  beforeAll(async () => {
    receiver = createServer((req: IncomingMessage, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        received.push({ raw, body: JSON.parse(raw), signature: String(req.headers['x-smsgate-signature']), timestamp: String(req.headers['x-smsgate-timestamp']) });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  });
  afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

  it('takes an operator-style request with Basic auth and pushes the status to callback_url, signed', async () => {
    const port = (receiver.address() as { port: number }).port;
    const request = { from: 'MyShop', to: 79163330001, message: 'Your code: 1234', callback_url: `http://127.0.0.1:${port}/status`, msg_id: 'a2p-1' };
    const r = await http('POST', '/sms/v1/sms', { headers: asAdmin, body: request });
    expect(r.status).toBe(200);
    expect(r.body.result.status).toEqual({ code: 0, description: 'ok' });
    expect(r.body.result.msg_id).toBe('a2p-1');
    const again = await http('POST', '/sms/v1/sms', { headers: asAdmin, body: request });
    expect(again.body.result.id).toBe(r.body.result.id);
    // A callback_url asks for a delivery report too: the last word is 'delivered' (a 'sent' before it may be
    // folded into it when the report comes first).
    const got = await waitFor(
      () => received,
      (l) => l.some((x) => x.body.msg_id === 'a2p-1' && x.body.status === 'delivered'),
    );
    const callback = got.find((x) => x.body.msg_id === 'a2p-1' && x.body.status === 'delivered')!;
    expect(callback.body).toMatchObject({ msg_id: 'a2p-1', status: 'delivered', to: '+79163330001' });
    expect(got.filter((x) => x.body.msg_id === 'a2p-1').every((x) => ['sent', 'delivered'].includes(x.body.status))).toBe(true);
    const secret = await storage.ensureSetting('callback_secret', 'unused');
    expect(callback.signature).toBe(signature(secret, callback.timestamp, callback.raw));
    expect(network().filter((n) => n.text === 'Your code: 1234')).toHaveLength(1);
  });

  it('answers errors in its own shape', async () => {
    const none = await http('POST', '/sms/v1/sms', { body: { to: 79163330002, message: 'x' } });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect(none.body.result.status.code).toBe(401);
    const bad = await http('POST', '/sms/v1/sms', { headers: asAdmin, body: { to: 'abc', message: 'x' } });
    expect(bad.status).toBe(400);
    expect(bad.body.result).toMatchObject({ status: { code: 400 }, field: 'to' });
    const two = await http('POST', '/sms/v1/sms', { headers: asAdmin, body: { to: [79163330002, 79163330003], message: 'x' } });
    expect(two.status).toBe(400);
  });
});

describe('an injection corpus', () => {
  const sqlText = "'); DROP TABLE messages; --";
  type Case = [string, () => Promise<Answer>];
  const json = (body: unknown) => () => http('POST', '/api/v1/messages', { headers: asAdmin, body });
  const rawJson = (raw: string | Buffer) => () => http('POST', '/api/v1/messages', { headers: asAdmin, raw, type: 'application/json' });
  const classic = (query: string) => () => http('GET', `/smsc.php?login=admin&pass=${PASS.admin}&${query}`);
  const form = (raw: string | Buffer) => () => http('POST', '/send', { raw });
  const cases: Case[] = [
    ['SQL in a number', json({ to: sqlText, text: 'x' })],
    ['HTML in a number', json({ to: '<script>alert(1)</script>', text: 'x' })],
    ['shell in a number', json({ to: '+7916$(reboot)', text: 'x' })],
    ['SQL in a classic number', classic(`tel=${encodeURIComponent("1' OR '1'='1")}&msg=x`)],
    ['an overlong text', json({ to: '+79164440001', text: 'x'.repeat(501) })],
    ['an overlong number', json({ to: '+7'.padEnd(40, '9'), text: 'x' })],
    ['too many recipients', json({ to: Array.from({ length: 101 }, (_, i) => `+7916555${String(i).padStart(4, '0')}`), text: 'x' })],
    ['invalid UTF-8 in the query', classic('tel=%2B79164440001&msg=%C3%28')],
    ['invalid UTF-8 in a form', form(Buffer.from(`login=admin&pass=${PASS.admin}&tel=%2B79164440001&msg=%ED%A0%80`))],
    ['invalid UTF-8 in JSON', rawJson(Buffer.concat([Buffer.from('{"to":"+79164440001","text":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]))],
    ['a lone surrogate in JSON', rawJson('{"to":"+79164440001","text":"\\ud800"}')],
    ['a NUL in the text', json({ to: '+79164440001', text: 'a\u0000b' })],
    ['an array where the text belongs', json({ to: '+79164440001', text: ['x'] })],
    ['an object where the number belongs', json({ to: { $ne: null }, text: 'x' })],
    ['a number array with an object', json({ to: ['+79164440001', { a: 1 }], text: 'x' })],
    ['a string where a boolean belongs', json({ to: '+79164440001', text: 'x', flash: 'maybe' })],
    ['a huge attempts', json({ to: '+79164440001', text: 'x', attempts: 1e9 })],
    ['a float priority', json({ to: '+79164440001', text: 'x', priority: 1.5 })],
    ['SQL in priority', json({ to: '+79164440001', text: 'x', priority: '1; DROP TABLE messages' })],
    ['a bad send_at', json({ to: '+79164440001', text: 'x', send_at: 'tomorrow' })],
    ['a javascript: callback', json({ to: '+79164440001', text: 'x', callback_url: 'javascript:alert(1)' })],
    ['an overlong msg_id', json({ to: '+79164440001', text: 'x', msg_id: 'm'.repeat(129) })],
    ['an unknown field', json({ to: '+79164440001', text: 'x', sender: 'evil' })],
    ['a JSON array body', rawJson('[{"to":"+79164440001","text":"x"}]')],
    ['a JSON scalar body', rawJson('"+79164440001"')],
    ['broken JSON', rawJson('{"to":"+79164440001","text":')],
    ['a nested form key', form(`login=admin&pass=${PASS.admin}&tel[]=%2B79164440001&msg=x`)],
    ['a repeated classic msg', classic('tel=%2B79164440001&msg=a&msg=b')],
    ['a replace-ID as text', json({ to: '+79164440001', text: 'x', replace_id: 'seven' })],
    ['a template as an operator object', json({ to: '+79164440001', template: { $ne: null } })],
    ['vars with a plain text', json({ to: '+79164440001', text: 'x', vars: { a: 1 } })],
    ['a recipient object with an operator', json({ to: [{ to: '+79164440001', $where: '1' }], text: 'x' })],
    ['a recipient object without a number', json({ to: [{ vars: { a: 1 } }], text: 'x' })],
    ['SQL as a template name', json({ to: '+79164440001', template: "x' OR '1'='1" })],
  ];

  it.each(cases)('%s: 4xx, JSON, nothing stored', async (_what, send) => {
    const before = await messageCount();
    const r = await send();
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.type).toMatch(/^application\/json/);
    expect(typeof r.body).toBe('object');
    expect(await messageCount()).toBe(before);
  });

  it('text that merely looks like SQL or HTML is a text like any other: stored and sent verbatim', async () => {
    const text = `${sqlText} <b>bold</b> $(reboot) \`id\``;
    const r = await http('POST', '/api/v1/messages', { headers: asAdmin, body: { to: '+79164440009', text } });
    expect(r.status).toBe(201);
    expect(r.body.messages[0].text).toBe(text);
    await waitFor(
      () => network().filter((n) => n.to === '+79164440009'),
      (l) => l.length === 1,
    );
    expect(network().find((n) => n.to === '+79164440009')!.text).toBe(text);
    expect(await messageCount()).toBeGreaterThan(0);
  });
});
