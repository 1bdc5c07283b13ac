/**
 * Received messages and SIM money through the running gateway (HTTP, dispatcher, deliveries worker, simulated
 * modems on real ptys driven through the simulator's control socket): a message announced by the modem reaches
 * the inbox API, a signed webhook, the command hook (its arguments and environment) and a forwarding rule; the
 * balance check reads a UCS-2 answer, pauses the SIM below its threshold, alerts by webhook and by SMS, and
 * resumes the SIM when the money is back; the admins' USSD console.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../server/auth.js';
import { signature } from '../../server/callbacks.js';
import { defaultConfig } from '../../server/config.js';
import { type Gateway, startGateway } from '../../server/gateway.js';
import type { Sim, Storage } from '../../sql/storage.js';
import { freePort } from '../helpers/net.js';
import { simControl } from '../helpers/sim.js';

let dir: string;
let gateway: Gateway;
let storage: Storage;
let receiver: Server;
let sims: Sim[];
const posts: { path: string; body: any; headers: IncomingMessage['headers']; valid: boolean }[] = [];
const SECRET = 'inbox-test-secret';
const admin = { authorization: `Basic ${Buffer.from('admin:admin-password-1').toString('base64')}` };
const bob = { authorization: `Basic ${Buffer.from('bob:bob-password-1').toString('base64')}` };

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = admin): Promise<{ status: number; body: any }> {
  const response = await fetch(`${gateway.url}/api/v1${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
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

const control = (request: object) => simControl(join(dir, 'sim', 'control.sock'), request);

function network(): { to: string; text: string }[] {
  const file = join(dir, 'sim', 'network.jsonl');
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'smsgate-inbox-'));
  mkdirSync(join(dir, 'lock'));
  mkdirSync(join(dir, 'hook'));
  const port = await freePort();
  receiver = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      const ts = String(req.headers['x-smsgate-timestamp']);
      posts.push({ path: req.url!, body: JSON.parse(data), headers: req.headers, valid: req.headers['x-smsgate-signature'] === signature(SECRET, ts, data) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(port, '127.0.0.1', r));
  // The hook writes its arguments and the environment it got, one file each, named by the message id.
  const hook = join(dir, 'hook.sh');
  writeFileSync(hook, '#!/bin/sh\nout="$1"; id="$2"\nprintf "%s\\n" "$@" > "$out/args.$id"\nenv | grep -E "^(SMS_|SMSGATE_|DECODED_)" | sort > "$out/env.$id"\n');
  chmodSync(hook, 0o755);
  const config = defaultConfig();
  config.dataDir = dir;
  config.listen = '127.0.0.1:0';
  config.simulate = { modems: 2, latencyMs: 20 };
  config.modems.lockDir = join(dir, 'lock');
  config.callbacks.secret = SECRET;
  config.inbound.webhooks = [`http://127.0.0.1:${port}/inbox`];
  config.inbound.command = [hook, join(dir, 'hook')];
  config.alerts.webhooks = [`http://127.0.0.1:${port}/alert`];
  config.alerts.smsTo = ['+79160000777'];
  config.balance.schedule = '';
  // The forwarding rule names SIM 1 by its IMSI (known before start: the simulator's identities are fixed).
  config.inbound.forward = [{ sim: '250020000000000', to: '+79160000999' }];
  // The rule's user must exist at start: make the database first.
  const { openStorage } = await import('../../sql/index.js');
  const early = await openStorage(`sqlite:${join(dir, 'smsgate.db')}`);
  await early.createUser({ name: 'admin', passwordHash: await hashPassword('admin-password-1', 4), role: 'admin' });
  const bobUser = await early.createUser({ name: 'bob', passwordHash: await hashPassword('bob-password-1', 4) });
  await early.close();
  gateway = await startGateway({ config, log: () => undefined });
  storage = gateway.services.storage;
  sims = await storage.listSims();
  await storage.setSimOwners(sims[1]!.id, [bobUser.id]);
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await new Promise((r) => receiver?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('received messages', () => {
  it('reach the inbox API, the webhook (signed), the command hook and the forwarding rule', async () => {
    const text = 'Temp 41C; $(touch /tmp/smsgate-pwned) `id` "quoted"';
    expect((await control({ op: 'deliver', modem: 0, from: '+79031234567', text })).ok).toBe(true);
    const list = await waitFor(
      () => api('GET', '/inbox'),
      (r) => r.body.messages?.length === 1,
    );
    const m = list.body.messages[0];
    expect(m).toMatchObject({ from: '+79031234567', text, complete: true, parts: 1, sim: { id: sims[0]!.id, imsi: '250020000000000' } });
    const post = await waitFor(
      () => posts.filter((p) => p.path === '/inbox'),
      (p) => p.length === 1,
    );
    expect(post[0]).toMatchObject({ valid: true, body: { event: 'inbox.received', message: { id: m.id, text } } });
    expect(post[0]!.headers['x-smsgate-event']).toBe('inbox.received');
    // The command got the message id as its last argument, and the message in its environment; no shell ran it.
    const envFile = join(dir, 'hook', `env.${m.id}`);
    await waitFor(() => existsSync(envFile), Boolean);
    expect(readFileSync(join(dir, 'hook', `args.${m.id}`), 'utf8')).toBe(`${join(dir, 'hook')}\n${m.id}\n`);
    const env = Object.fromEntries(
      readFileSync(envFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env).toMatchObject({ SMS_MESSAGES: '1', SMS_1_NUMBER: '+79031234567', SMS_1_TEXT: text, SMSGATE_ID: String(m.id), SMSGATE_FROM: '+79031234567', SMSGATE_SIM_IMSI: '250020000000000' });
    expect(existsSync('/tmp/smsgate-pwned')).toBe(false);
    // SIM 1's rule forwards it.
    const forwarded = await waitFor(
      () => network().filter((n) => n.to === '+79160000999'),
      (l) => l.length === 1,
    );
    expect(forwarded[0]!.text).toBe(`From +79031234567: ${text}`);
    // The detail shows each delivery done.
    const detail = await waitFor(
      () => api('GET', `/inbox/${m.id}`),
      (r) => r.body.deliveries?.every((d: { state: string }) => d.state === 'done'),
    );
    expect(detail.body.deliveries.map((d: { kind: string }) => d.kind).sort()).toEqual(['command', 'forward', 'webhook']);
  });

  it('a user sees only what came in on their SIMs; a message on SIM 2 is not forwarded (the rule is for SIM 1)', async () => {
    await control({ op: 'deliver', modem: 1, from: '+79035550000', text: 'for bob' });
    const mine = await waitFor(
      () => api('GET', '/inbox', undefined, bob),
      (r) => r.body.messages?.length === 1,
    );
    expect(mine.body.messages[0]).toMatchObject({ text: 'for bob', sim: { id: sims[1]!.id } });
    const all = await api('GET', '/inbox');
    expect(all.body.messages.length).toBeGreaterThanOrEqual(2);
    const first = all.body.messages.find((x: { text: string }) => x.text !== 'for bob');
    expect((await api('GET', `/inbox/${first.id}`, undefined, bob)).status).toBe(404);
    expect((await api('GET', `/inbox?sim=${sims[0]!.id}`, undefined, bob)).status).toBe(404);
    expect((await api('GET', '/inbox?limit=0')).body).toMatchObject({ error: 'BAD_MESSAGE', field: 'limit' });
    await new Promise((r) => setTimeout(r, 300));
    expect(network().filter((n) => n.text === 'From +79035550000: for bob')).toEqual([]);
  });

  it('a multipart message sent in pieces through the control socket is one inbox row', async () => {
    const long = 'Часть первая, часть вторая и часть третья: '.repeat(4);
    await control({ op: 'deliver', modem: 0, from: '+79037778899', text: long, parts: [2], reference: 42 });
    await new Promise((r) => setTimeout(r, 300));
    await control({ op: 'deliver', modem: 0, from: '+79037778899', text: long, parts: [3, 1], reference: 42 });
    const r = await waitFor(
      () => api('GET', `/inbox?from=${encodeURIComponent('+79037778899')}`),
      (x) => x.body.messages?.length === 1,
    );
    expect(r.body.messages[0]).toMatchObject({ text: long, parts: 3, parts_received: 3, complete: true, encoding: 'ucs2' });
  });
});

describe('SIM money', () => {
  it('reads the balance (a UCS-2 answer), pauses the SIM below its threshold, alerts, and resumes it when the money is back', async () => {
    const sim = sims[0]!;
    await control({ op: 'ussd', modem: 0, code: '*100#', answer: 'Баланс: 12,34 р. Ваш тариф «Простой»' });
    const patch = await api('PATCH', `/sims/${sim.id}`, { balance_ussd: '*100#', balance_low: '50', balance_pause: true });
    expect(patch.status).toBe(200);
    expect(patch.body).toMatchObject({ balance_ussd: '*100#', balance_low: '50', balance_pause: true });
    const check = await api('POST', `/sims/${sim.id}/balance`);
    expect(check.status).toBe(200);
    expect(check.body).toMatchObject({ amount: '12.34', currency: 'р', low: '50', is_low: true, enabled: false, paused_reason: 'low balance: 12.34 р < 50' });
    const alert = await waitFor(
      () => posts.filter((p) => p.path === '/alert'),
      (p) => p.length === 1,
    );
    expect(alert[0]).toMatchObject({ valid: true, body: { event: 'sim.balance_low', balance: '12.34', threshold: '50', paused: true, sim: { id: sim.id } } });
    // The admins' SMS goes out through the other SIM (this one is paused).
    const sms = await waitFor(
      () => network().filter((n) => n.to === '+79160000777').map((n) => n.text).join(''),
      (t) => t.endsWith('paused'),
    );
    expect(sms).toBe(`smsgate: SIM ${sim.number} balance 12.34 р is below 50; the SIM is paused`);
    // A second check while still low alerts no more.
    await api('POST', `/sims/${sim.id}/balance`);
    await new Promise((r) => setTimeout(r, 300));
    expect(posts.filter((p) => p.path === '/alert')).toHaveLength(1);
    // Topped up: the SIM sends again.
    await control({ op: 'ussd', modem: 0, code: '*100#', answer: 'Баланс: 512,00 р.' });
    const back = await api('POST', `/sims/${sim.id}/balance`);
    expect(back.body).toMatchObject({ amount: '512.00', is_low: false, enabled: true, paused_reason: null });
    const history = await api('GET', `/sims/${sim.id}/balances`);
    expect(history.body.balances.map((b: { amount: string }) => b.amount)).toEqual(['512.00', '12.34', '12.34']);
  });

  it('the USSD console is for admins, checks the code, and answers what the network said', async () => {
    await control({ op: 'ussd', modem: 1, code: '*111#', answer: 'Menu: 1 Balance 2 Tariff', status: 1 });
    const r = await api('POST', `/sims/${sims[1]!.id}/ussd`, { code: '*111#' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'action-required', text: 'Menu: 1 Balance 2 Tariff' });
    expect((await api('POST', `/sims/${sims[1]!.id}/ussd`, { code: '*111#' }, bob)).status).toBe(403);
    expect((await api('POST', `/sims/${sims[1]!.id}/ussd`, { code: 'AT+CFUN=0' })).body).toMatchObject({ error: 'BAD_MESSAGE', field: 'code' });
    expect((await api('PATCH', `/sims/${sims[1]!.id}`, { balance_pattern: '(unclosed' })).body).toMatchObject({ field: 'balance_pattern' });
    expect((await api('PATCH', `/sims/${sims[1]!.id}`, { balance_low: 'lots' })).body).toMatchObject({ field: 'balance_low' });
    // A SIM without a code: a clear error.
    expect((await api('POST', `/sims/${sims[1]!.id}/balance`)).body).toMatchObject({ error: 'BAD_MESSAGE', field: 'balance_ussd' });
  });
});

describe('hook files', () => {
  it('leaves nothing behind but what the hook wrote', () => {
    expect(readdirSync(join(dir, 'hook')).every((f) => /^(args|env)\.\d+$/.test(f))).toBe(true);
  });
});
