/**
 * An operator A2P client, the way a 1C processing written for an operator's HTTPS SMS API behaves, against
 * smsgate's `POST /sms/v1/sms` (the endpoint's own answers and one signed callback are in test/e2e/api.test.ts; this
 * is the whole client flow):
 *
 * - the request as 1C's HTTPСоединение sends it: JSON text with a UTF-8 byte order mark (1C writes one unless told
 *   not to), `Content-Type: application/json; charset=utf-8`, first without credentials and then with HTTP Basic
 *   after the 401 challenge;
 * - `from` naming the SIM (its label), `to` international without "+", a Cyrillic text of two parts;
 * - a "timeout": the answer is lost, the client repeats the same msg_id (later, and at once, concurrently) and must
 *   get the same message, sent once; the same msg_id with another text is a conflict;
 * - the status callbacks arrive at the client's own receiver on 127.0.0.1, which checks the HMAC signature with the
 *   shared secret and the timestamp's age, and follows the states sent → delivered (the simulator sends delivery
 *   reports); a client that missed a callback asks the JSON API with the same credentials.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { connect } from 'node:net';
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sim } from '../../sql/storage.js';
import { type RawAnswer, type RunningGateway, eventually, rawHttp, startRunningGateway } from '../helpers/running.js';

const SECRET = 'shared-secret-for-1c-0123456789abcdef';
const LOGIN = 'erp';
const PASSWORD = 'erp-password-1';

let g: RunningGateway;
let office: Sim;
let receiver: Server;
let callbackUrl: string;

interface Callback {
  url: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: { msg_id: string; id: number; to: string; status: string; status_code: string | null; description: string; parts: number; time: string };
  verified: boolean;
}
const callbacks: Callback[] = [];

/** What the client does with a callback: the signature over "<timestamp>.<body>" and a timestamp not older than 5 min. */
function verify(headers: IncomingHttpHeaders, raw: string): boolean {
  const timestamp = String(headers['x-smsgate-timestamp'] ?? '');
  const given = String(headers['x-smsgate-signature'] ?? '');
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(`${timestamp}.${raw}`).digest('hex')}`);
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), expected);
}

/** The bytes 1C's HTTPСоединение writes for a JSON POST (with the BOM 1C puts before UTF-8 text by default). */
function oneCRequest(body: unknown, basic: boolean): Buffer {
  const json = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(body, null, '\t').replace(/\n/g, '\r\n'), 'utf8')]);
  const url = new URL(g.base);
  const head = [
    'POST /sms/v1/sms HTTP/1.1',
    `Host: ${url.host}`,
    'User-Agent: 1C+Enterprise/8.3',
    'Accept: */*',
    'Connection: Keep-Alive',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${json.length}`,
    ...(basic ? [`Authorization: Basic ${Buffer.from(`${LOGIN}:${PASSWORD}`, 'utf8').toString('base64')}`] : []),
  ];
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), json]);
}

/** One send as the client makes it: without credentials first, and with Basic when the server asks for them. */
async function oneCSend(body: unknown): Promise<RawAnswer & { json: any }> {
  const first = await rawHttp(g.base, oneCRequest(body, false));
  expect(first.status).toBe(401);
  expect(first.headers['www-authenticate']).toMatch(/^Basic realm="smsgate"/);
  const answer = await rawHttp(g.base, oneCRequest(body, true));
  return { ...answer, json: JSON.parse(answer.body) };
}

/** Sends the request and drops the connection as soon as the answer starts: the client "timed out". */
function sendAndLoseAnswer(body: unknown): Promise<void> {
  const url = new URL(g.base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    socket.once('data', () => {
      socket.destroy();
      resolve();
    });
    socket.on('error', reject);
    socket.write(oneCRequest(body, true));
  });
}

beforeAll(async () => {
  g = await startRunningGateway((config) => {
    config.callbacks.secret = SECRET;
  });
  await g.addUser(LOGIN, PASSWORD);
  const sims = await g.storage.listSims();
  office = (await g.storage.updateSim(sims[1]!.id, { label: 'OFFICE' }))!;
  receiver = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const verified = verify(req.headers, raw);
      callbacks.push({ url: req.url ?? '', headers: req.headers, raw, body: JSON.parse(raw), verified });
      // A client answers 200 to a callback it accepted, and 403 to one whose signature is wrong.
      res.writeHead(verified ? 200 : 403).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  callbackUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/sms/status?system=erp`;
}, 60_000);

afterAll(async () => {
  await g?.stop();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
});

describe('a 1C-style A2P client', () => {
  const text = 'ООО «Ромашка»: счёт №А-1042 от 24.11 на сумму 12 500,00 руб. выставлен, оплатите до 01.12. Спасибо!';
  const request = () => ({ from: 'OFFICE', to: '79167770001', message: text, callback_url: callbackUrl, msg_id: 'erp-invoice-1042' });

  it('sends once although the answer was lost and the msg_id repeated, later and concurrently', async () => {
    await sendAndLoseAnswer(request());
    const repeat = await oneCSend(request());
    expect(repeat.status).toBe(200);
    expect(repeat.json.result.status).toEqual({ code: 0, description: 'ok' });
    expect(repeat.json.result.msg_id).toBe('erp-invoice-1042');
    expect(repeat.json.result.parts).toBe(2);
    const id = repeat.json.result.id as number;
    const concurrent = await Promise.all([1, 2, 3].map(() => rawHttp(g.base, oneCRequest(request(), true))));
    for (const answer of concurrent) expect(JSON.parse(answer.body).result).toMatchObject({ id, msg_id: 'erp-invoice-1042' });
    const stored = (await g.storage.getMessage(id))!;
    expect(stored).toMatchObject({ recipient: '+79167770001', text, clientMsgId: 'erp-invoice-1042', source: 'a2p', report: true, wantSimId: office.id });
    // Both parts reach the network once, through the SIM "from" named.
    const parts = await eventually(
      () => g.network().filter((n) => n.to === '+79167770001'),
      (l) => l.length === 2,
    );
    expect(parts.every((p) => p.imsi === office.imsi && p.report)).toBe(true);
    expect(parts.sort((a, b) => a.concat!.seq - b.concat!.seq).map((p) => p.text).join('')).toBe(text);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(g.network().filter((n) => n.to === '+79167770001')).toHaveLength(2);
  });

  it('gets signed callbacks on its own receiver, sent then delivered, and every one verifies', async () => {
    const mine = await eventually(
      () => callbacks.filter((c) => c.body.msg_id === 'erp-invoice-1042'),
      (l) => l.some((c) => c.body.status === 'delivered'),
      20_000,
    );
    expect(mine.every((c) => c.verified)).toBe(true);
    // A 'sent' before it may be folded into 'delivered' when the report comes first; nothing else is said.
    const states = mine.map((c) => c.body.status);
    expect(states[states.length - 1]).toBe('delivered');
    expect(states.every((s) => s === 'sent' || s === 'delivered')).toBe(true);
    expect(new Set(states).size).toBe(states.length);
    const last = mine[mine.length - 1]!;
    expect(last.body).toMatchObject({ msg_id: 'erp-invoice-1042', to: '+79167770001', status: 'delivered', parts: 2, status_code: null });
    expect(Math.abs(Date.parse(last.body.time) - Date.now())).toBeLessThan(60_000);
    expect(last.headers['content-type']).toBe('application/json');
    expect(last.headers['x-smsgate-event']).toBe('message.delivered');
    // Posted to the callback URL as given, its query string included.
    expect(last.url).toBe('/sms/status?system=erp');
  });

  it('a callback forged without the secret does not verify (the receiver side of the check can fail)', () => {
    const good = callbacks.find((c) => c.body.msg_id === 'erp-invoice-1042')!;
    const forged = JSON.stringify({ ...good.body, status: 'undelivered' });
    expect(verify(good.headers, forged)).toBe(false);
    const old = { ...good.headers, 'x-smsgate-timestamp': String(Math.floor(Date.now() / 1000) - 3600) };
    expect(verify(old, good.raw)).toBe(false);
    expect(verify(good.headers, good.raw)).toBe(true);
  });

  it('a client that missed its callback asks the JSON API with the same Basic credentials', async () => {
    const id = callbacks.find((c) => c.body.msg_id === 'erp-invoice-1042')!.body.id;
    const response = await fetch(`${g.base}/api/v1/messages/${id}`, { headers: { authorization: `Basic ${Buffer.from(`${LOGIN}:${PASSWORD}`).toString('base64')}` } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id, state: 'delivered', msg_id: 'erp-invoice-1042', to: '+79167770001', parts: 2 });
  });

  it('the same msg_id with another text is a conflict in the A2P shape, and nothing more is sent', async () => {
    const before = g.network().length;
    const other = await oneCSend({ ...request(), message: 'Другой текст под тем же msg_id' });
    expect(other.status).toBe(409);
    expect(other.json.result.status.code).toBe(409);
    expect(other.json.result.error).toBe('CONFLICT');
    await new Promise((r) => setTimeout(r, 500));
    expect(g.network().length).toBe(before);
  });

  it('a wrong password is 401 with the challenge, in the A2P shape', async () => {
    const url = new URL(g.base);
    const body = Buffer.from(JSON.stringify(request()), 'utf8');
    const answer = await rawHttp(
      g.base,
      Buffer.concat([
        Buffer.from(
          `POST /sms/v1/sms HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${body.length}\r\nAuthorization: Basic ${Buffer.from(`${LOGIN}:wrong`).toString('base64')}\r\n\r\n`,
          'latin1',
        ),
        body,
      ]),
    );
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toMatch(/^Basic/);
    expect(JSON.parse(answer.body).result.status.code).toBe(401);
  });
});
