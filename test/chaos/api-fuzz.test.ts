/**
 * HTTP fuzz (fast-check): random requests, written byte for byte onto a TCP connection, against a running gateway
 * (`startGateway` with simulated modems; every SIM's quota is 0, so nothing is sent and the queue only grows):
 * the classic endpoint (`/smsc.php` by GET, by POST form and by POST JSON), `POST /api/v1/messages`, the A2P
 * endpoint `POST /sms/v1/sms` (Basic), `POST /api/v1/templates/preview`, `GET /api/v1/messages` and
 * `GET /api/v1/inbox` with random query parameters. Requests have missing, extra and repeated fields, wrong types
 * (numbers, arrays, nested objects, null), huge strings, random Unicode with lone surrogates and control characters,
 * invalid percent-encoding and invalid UTF-8 bytes, wrong content types and charsets, broken JSON, many recipients
 * (some invalid, some repeated in another spelling), and good and bad credentials.
 *
 * Properties, per request (run one after another): the answer is never 5xx; it is JSON; a 400/404/409/413/415 names
 * the parameter at fault in `field` (one of the endpoint's parameters, or a key the request sent, or the body);
 * never a partial store: the number of stored messages grows by exactly the messages the answer reports as new (the
 * number of distinct valid recipients, where the test knows them) or not at all — and not at all for any request
 * that is refused, must be refused (an invalid recipient, a bad text, bad credentials) or stores nothing by nature;
 * a stored message carries the text and one of the numbers the request gave. After the run the gateway still
 * answers /health and logged no unexpected error. 200 requests in the short form, 3000 in the long one (mode.ts).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, newToken, tokenHash } from '../../server/auth.js';
import { defaultConfig } from '../../server/config.js';
import { type Gateway, startGateway } from '../../server/gateway.js';
import type { Storage } from '../../sql/storage.js';
import { rawHttp } from '../helpers/running.js';
import { SCALE, writeFigures } from './mode.js';

const RUNS = SCALE.apiRuns;
const MAX_RECIPIENTS = 20;
const MAX_TEXT = 2000;
const PASSWORD = 'fuzz-password-1';

let dir: string;
let gateway: Gateway;
let storage: Storage;
let token: string;
const unexpected: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'smsgate-fuzz-'));
  mkdirSync(join(dir, 'lock'));
  const config = defaultConfig();
  config.dataDir = dir;
  config.listen = '127.0.0.1:0';
  config.trustProxy = 'loopback';
  config.simulate = { modems: 2, latencyMs: 30 };
  config.modems.lockDir = join(dir, 'lock');
  config.send.maxRecipients = MAX_RECIPIENTS;
  config.send.maxTextLength = MAX_TEXT;
  config.auth.bcryptCost = 4;
  gateway = await startGateway({
    config,
    log: (line: string) => {
      if (/unexpected error|internal/i.test(line)) unexpected.push(line);
    },
  });
  storage = gateway.services.storage;
  const user = await storage.createUser({ name: 'fuzz', passwordHash: await hashPassword(PASSWORD, 4), role: 'user' });
  // Someone to fail logins as: the per-name limit then never locks the user the good requests use.
  await storage.createUser({ name: 'victim', passwordHash: await hashPassword('victim-password-1', 4), role: 'user' });
  token = newToken();
  await storage.createToken(user.id, tokenHash(token), 'fuzz');
  for (const sim of await storage.listSims()) {
    await storage.setSimOwners(sim.id, [user.id]);
    await storage.updateSim(sim.id, { monthlyQuota: 0 });
  }
  await storage.createTemplate({ userId: user.id, name: 'greet', body: 'Hello %(name)s%(if code)s, your code is %(code)s%(endif)s.' });
  await storage.createTemplate({ userId: 0, name: 'shared', body: 'Shared %(x)s 100%% sure' });
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- values

/** A request as the test writes it, and what it knows about the outcome. */
interface Req {
  endpoint: 'classic-get' | 'classic-form' | 'classic-json' | 'api-send' | 'a2p' | 'preview' | 'list' | 'inbox';
  method: 'GET' | 'POST';
  path: string;
  headers: [string, string][];
  body: Buffer | null;
  /** The parameter names the request sent (an answer's `field` may name any of them). */
  sent: string[];
  /**
   * For a send: null when the test cannot tell the outcome; otherwise whether it must be refused, and if accepted
   * how many messages it makes (null: unknown) and with which text and numbers.
   */
  expect: { mustFail: boolean; count: number | null; text: string | null; numbers: Set<string> | null } | null;
}

/** One recipient, and what it is: canonical number (valid), 'bad' (must be refused) or null (the test cannot tell). */
interface Recipient {
  input: string;
  canonical: string | 'bad' | null;
}

const validNumber = fc.integer({ min: 0, max: 9_999_999 }).chain((n) => {
  const d = String(n).padStart(7, '0');
  const canonical = `+7916${d}`;
  // Spellings that all mean the same number: a repeat in another spelling is still one message.
  return fc.constantFrom(canonical, `+7 916 ${d.slice(0, 3)}-${d.slice(3, 5)}-${d.slice(5)}`, `+7 (916) ${d}`, ` ${canonical} `).map((input): Recipient => ({ input, canonical }));
});
const badNumber = fc.constantFrom('abc', '+7916abc1234', '😀', '+', '12', '+0123456789', '+7916123456789012345', 'tel:+79161234567', '<script>', "1' OR '1'='1").map((input): Recipient => ({ input, canonical: 'bad' }));
const unknownNumber = fc.oneof(fc.string({ maxLength: 20 }), fc.stringMatching(/^[0-9+ ()-]{0,18}$/)).map((input): Recipient => ({ input, canonical: null }));
const recipient = fc.oneof({ weight: 10, arbitrary: validNumber }, { weight: 1, arbitrary: badNumber }, { weight: 1, arbitrary: unknownNumber });
/** Lists mostly of a few valid numbers; sometimes longer than the limit, sometimes with repeats. */
const recipients = fc.oneof({ weight: 6, arbitrary: fc.array(recipient, { minLength: 1, maxLength: 4 }) }, { weight: 1, arbitrary: fc.array(recipient, { minLength: 0, maxLength: 30 }) }).chain((list) =>
  fc.boolean().map((repeat) => (repeat && list.length > 0 ? [...list, list[0]!] : list)),
);

/** What a list of recipients should give: must fail, or the distinct numbers, or unknown. */
function judgeRecipients(list: Recipient[]): { mustFail: boolean; numbers: Set<string> | null } {
  if (list.some((r) => r.canonical === 'bad')) return { mustFail: true, numbers: null };
  if (list.some((r) => r.canonical === null)) return { mustFail: false, numbers: null };
  const numbers = new Set(list.map((r) => r.canonical!));
  if (list.length === 0 || list.length > MAX_RECIPIENTS) return { mustFail: true, numbers: null };
  return { mustFail: false, numbers };
}

/** `arb` one time in `1 + absent`, null otherwise. */
function sometimes<T>(arb: fc.Arbitrary<T>, absent: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: absent, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}

/** A string an attacker or a broken client might send. */
const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: fc.oneof(fc.constantFrom('\ud800', '\udfff', '\u0000', '\u0007', '\u001b', '\u007f', '\u202e', '\ufeff', '%', '&', '=', '+', ',', '"', '\\'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 40 }),
  fc.constantFrom('', ' ', 'null', 'undefined', 'NaN', '-1', '1e999', '0x10', '[]', '{}', '__proto__', 'constructor', "'; DROP TABLE messages; --", '$(reboot)', '../../etc/passwd', '%(name)s', '%(if x)s'),
  fc.integer({ min: 1, max: 120 }).map((k) => 'x'.repeat(k * 1000)),
);

/** For a URL: mostly short enough for Node's 16 kB limit on the request head, now and then not. */
const urlNasty = fc.oneof({ weight: 30, arbitrary: nastyString.filter((v) => v.length <= 2000) }, { weight: 1, arbitrary: nastyString });

/** Texts: good ones, and ones that must be refused. */
const goodText = fc.oneof(
  fc.constantFrom('hello', 'Привет, мир', 'emoji 😀 ok', 'tab\tand\nnewline', 'a'.repeat(400), '€ [brackets] {braces}', '100% sure'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }).filter((t) => t.trim() !== '' && t.isWellFormed() && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(t)),
);
const badText = fc.constantFrom('', '   ', 'bell\u0007', 'nul\u0000', 'lone \ud800 surrogate', 'x'.repeat(MAX_TEXT + 1), 'esc\u001b[31m');
const text = fc.oneof({ weight: 6, arbitrary: goodText.map((t) => ({ value: t as unknown, good: true as boolean | null })) }, { weight: 2, arbitrary: badText.map((t) => ({ value: t as unknown, good: false as boolean | null })) }, { weight: 1, arbitrary: nastyString.map((t) => ({ value: t as unknown, good: null })) });

/** Any JSON value, small, with nasty strings in it. */
const jsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    nastyString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

// ---- encodings

/** Percent-encodes bytes (all but the unreserved characters). */
function pct(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Broken percent-encoding and bytes that are not UTF-8. */
const brokenEncoding = fc.constantFrom('%', '%G1', '%E2%82', '%FF', '%C0%AF', '%ED%A0%80', '%u0041', '%%41', 'a%', '%F4%90%80%80');

/** A query or form value: percent-encoded UTF-8 mostly; sometimes raw bytes or broken escapes. */
const encodedValue = (value: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 8, arbitrary: value.map((v) => pct(Buffer.from(v, 'utf8'))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => pct(Buffer.from(b))) },
    { weight: 1, arbitrary: fc.tuple(value, brokenEncoding).map(([v, e]) => pct(Buffer.from(v, 'utf8')) + e) },
  );

/** key=value pairs as a query or form body; `extra` random keys, some repeated. */
function encodePairs(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${pct(Buffer.from(k, 'utf8'))}=${v}`).join('&');
}

let address = 0;
function nextAddress(): string {
  address++;
  return `10.${(address >> 16) & 255}.${(address >> 8) & 255}.${address & 255}`;
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** Credentials: good ones mostly; else none, a wrong password, a malformed header, a bogus token. */
const auth = fc.oneof(
  { weight: 8, arbitrary: fc.constant<'good'>('good') },
  { weight: 1, arbitrary: fc.constantFrom<'none' | 'wrong' | 'malformed' | 'bogus'>('none', 'wrong', 'malformed', 'bogus') },
);
function authHeader(kind: 'good' | 'none' | 'wrong' | 'malformed' | 'bogus', scheme: 'bearer' | 'basic'): [string, string][] {
  switch (kind) {
    case 'good':
      return [['Authorization', scheme === 'bearer' ? `Bearer ${token}` : basic('fuzz', PASSWORD)]];
    case 'none':
      return [];
    case 'wrong':
      return [['Authorization', basic('victim', 'not-the-password')]];
    case 'malformed':
      return [['Authorization', 'Basic %%%not-base64']];
    case 'bogus':
      return [['Authorization', 'Bearer smsgate_bogus_token']];
  }
}

// ---- requests per endpoint

const CLASSIC_KNOWN = ['login', 'pass', 'tel', 'msg', 'flash', 'replacemessages_id', 'attempts', 'intl', 'msg_id'];

const classic = fc
  .record({
    way: fc.constantFrom<'classic-get' | 'classic-form' | 'classic-json'>('classic-get', 'classic-form', 'classic-json'),
    auth,
    viaHeader: fc.boolean(),
    to: recipients,
    sep: fc.constantFrom(',', ', ', ',,'),
    rawPlus: fc.boolean(),
    text,
    options: fc.oneof(
      { weight: 2, arbitrary: fc.constant({}) },
      {
        weight: 1,
        arbitrary: fc.record(
          {
            flash: fc.constantFrom('1', '0', 'yes', 'maybe'),
            attempts: fc.constantFrom('1', '3', '0', '999', 'x'),
            replacemessages_id: fc.constantFrom('1', '7', '8', '-1'),
            intl: fc.constantFrom('1', '0'),
          },
          { requiredKeys: [] },
        ),
      },
    ),
    extra: fc.oneof({ weight: 2, arbitrary: fc.constant<[string, string][]>([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.oneof(fc.constantFrom(...CLASSIC_KNOWN), fc.string({ maxLength: 10 })), urlNasty), { minLength: 1, maxLength: 3 }) }),
    contentType: fc.constantFrom('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'application/x-www-form-urlencoded; charset=latin1', 'text/plain', 'application/json'),
    broken: sometimes(brokenEncoding, 8),
  })
  .chain((r) => fc.tuple(fc.constant(r), encodedValue(fc.constant(typeof r.text.value === 'string' ? r.text.value : String(r.text.value)))))
  .map(([r, msgEncoded]): Req => {
    const judged = judgeRecipients(r.to);
    const tel = r.to.map((x) => x.input).join(r.sep);
    const pairs: [string, string][] = [];
    const headers: [string, string][] = [];
    const credentials = r.auth === 'good' ? { login: 'fuzz', pass: PASSWORD } : r.auth === 'wrong' ? { login: 'victim', pass: 'nope' } : null;
    if (r.viaHeader || !credentials) headers.push(...authHeader(r.auth, 'basic'));
    else pairs.push(['login', pct(Buffer.from(credentials.login))], ['pass', pct(Buffer.from(credentials.pass))]);
    // Devices write "+" unencoded in tel; the gateway reads a leading one as a plus.
    pairs.push(['tel', r.rawPlus ? tel.split('').map((c) => (c === '+' ? '+' : pct(Buffer.from(c, 'utf8')))).join('') : pct(Buffer.from(tel, 'utf8'))]);
    pairs.push(['msg', msgEncoded]);
    const options = Object.entries(r.options) as [string, string][];
    for (const [k, v] of options) pairs.push([k, v]);
    for (const [k, v] of r.extra) pairs.push([k, pct(Buffer.from(v, 'utf8'))]);
    let encoded = encodePairs(pairs);
    if (r.broken) encoded += `&tel${r.broken}=1`;
    const sent = pairs.map(([k]) => k);
    let req: Req;
    if (r.way === 'classic-get') {
      req = { endpoint: r.way, method: 'GET', path: `/smsc.php?${encoded}`, headers, body: null, sent, expect: null };
    } else if (r.way === 'classic-form') {
      req = { endpoint: r.way, method: 'POST', path: '/smsc.php', headers: [...headers, ['Content-Type', r.contentType]], body: Buffer.from(encoded, 'latin1'), sent, expect: null };
    } else {
      const json: Record<string, unknown> = { tel, msg: r.text.value };
      if (credentials && !r.viaHeader) Object.assign(json, credentials);
      for (const [k, v] of r.extra) json[k] = v;
      for (const [k, v] of options) json[k] = v;
      req = { endpoint: r.way, method: 'POST', path: '/smsc.php', headers: [...headers, ['Content-Type', 'application/json']], body: Buffer.from(JSON.stringify(json), 'utf8'), sent: Object.keys(json), expect: null };
    }
    // What the test can tell: options and extra fields may spoil a request, so only a plain one's count is
    // predicted; a refusal is certain for bad credentials, a body the form parser does not read, and bad recipients
    // or text that no extra field of the same name replaces.
    // The text as sent is the drawn text only when it was encoded as it is (else: random bytes, or broken escapes).
    const msgIsText = msgEncoded === pct(Buffer.from(String(r.text.value), 'utf8'));
    const plain = options.length === 0 && r.extra.length === 0 && !r.broken && msgIsText;
    const replaced = (name: string) => r.way === 'classic-json' && r.extra.some(([k]) => k === name);
    const formUnread = r.way === 'classic-form' && r.contentType !== 'application/x-www-form-urlencoded' && r.contentType !== 'application/x-www-form-urlencoded; charset=utf-8';
    // A lone surrogate cannot be written in UTF-8: the URL and form ways carry U+FFFD instead, a good character.
    const textBad = r.text.good === false && (r.way === 'classic-json' || (msgIsText && String(r.text.value).isWellFormed()));
    const refused = r.auth !== 'good' || formUnread || (judged.mustFail && !replaced('tel')) || (textBad && !replaced('msg'));
    req.expect = refused
      ? { mustFail: true, count: 0, text: null, numbers: null }
      : plain && r.text.good === true && judged.numbers
        ? { mustFail: false, count: judged.numbers.size, text: String(r.text.value), numbers: judged.numbers }
        : null;
    return req;
  });

const API_KNOWN = ['to', 'text', 'template', 'vars', 'flash', 'replace_id', 'report', 'attempts', 'priority', 'send_at', 'sim', 'msg_id', 'callback_url'];
const goodOptions = {
  flash: fc.constantFrom(true, false, 'yes', 0),
  report: fc.boolean(),
  attempts: fc.integer({ min: 1, max: 10 }),
  priority: fc.integer({ min: -100, max: 100 }),
  send_at: fc.constantFrom('2099-01-01T09:00:00Z', Date.now() + 86_400_000),
  callback_url: fc.constant('https://example.com/callback?x=1'),
  msg_id: fc.uuid(),
};

/** A JSON body: a good-looking send (its fields right or wrong) or any JSON at all; sometimes not JSON at all. */
const apiSend = fc
  .record({
    auth,
    shape: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('good', 'array-to') }, { weight: 1, arbitrary: fc.constantFrom('objects-to', 'template', 'random') }),
    to: recipients,
    text,
    good: fc.subarray(Object.keys(goodOptions) as (keyof typeof goodOptions)[]).chain((keys) => fc.record(Object.fromEntries(keys.map((k) => [k, goodOptions[k]])) as Record<string, fc.Arbitrary<unknown>>)),
    wrong: fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.dictionary(fc.constantFrom(...API_KNOWN), jsonValue, { minKeys: 1, maxKeys: 2 }) }),
    extra: fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 12 }).filter((k) => !API_KNOWN.includes(k)), jsonValue, { minKeys: 1, maxKeys: 2 }) }),
    random: jsonValue,
    vars: fc.dictionary(fc.constantFrom('name', 'code', 'x', 'constructor', '__proto__'), fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), jsonValue), { maxKeys: 3 }),
    body: fc.oneof({ weight: 14, arbitrary: fc.constant('json') }, { weight: 1, arbitrary: fc.constantFrom('broken', 'bad-utf8', 'bom', 'utf16', 'text/plain', 'empty', 'gzip') }),
  })
  .map((r): Req => {
    const judged = judgeRecipients(r.to);
    let value: unknown;
    let predictable = false;
    if (r.shape === 'random') value = r.random;
    else if (r.shape === 'template') value = { to: r.to.map((x) => ({ to: x.input, vars: r.vars })), template: 'greet', vars: { name: 'Ann' } };
    else if (r.shape === 'objects-to') value = { to: r.to.map((x) => ({ to: x.input })), text: r.text.value, ...r.good };
    else {
      const to = r.shape === 'array-to' ? r.to.map((x) => x.input) : r.to.map((x) => x.input).join(',');
      value = { to, text: r.text.value, ...r.good, ...r.wrong, ...r.extra };
      predictable = Object.keys(r.wrong).length === 0;
    }
    const sent = value && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [];
    let body = Buffer.from(JSON.stringify(value) ?? 'null', 'utf8');
    let contentType = 'application/json';
    const headers: [string, string][] = authHeader(r.auth, 'bearer');
    if (r.body === 'broken') body = Buffer.concat([body.subarray(0, Math.max(1, body.length >> 1)), Buffer.from('{"')]);
    if (r.body === 'bad-utf8') body = Buffer.concat([Buffer.from('{"to":"+79161234567","text":"'), Buffer.from([0xc3, 0x28, 0xff, 0xed, 0xa0, 0x80]), Buffer.from('"}')]);
    if (r.body === 'bom') body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]);
    if (r.body === 'utf16') contentType = 'application/json; charset=utf-16';
    if (r.body === 'text/plain') contentType = 'text/plain';
    if (r.body === 'empty') body = Buffer.alloc(0);
    if (r.body === 'gzip') headers.push(['Content-Encoding', 'gzip']);
    headers.push(['Content-Type', contentType]);
    const plainBody = r.body === 'json' || r.body === 'bom';
    const refused =
      r.auth !== 'good' ||
      r.body === 'broken' ||
      r.body === 'bad-utf8' ||
      r.body === 'utf16' ||
      r.body === 'text/plain' ||
      r.body === 'empty' ||
      r.body === 'gzip' ||
      (r.shape !== 'random' &&
        r.shape !== 'template' &&
        ((judged.mustFail && !('to' in r.wrong)) || (r.text.good === false && !('text' in r.wrong)) || (r.shape !== 'objects-to' && Object.keys(r.extra).length > 0)));
    const expect: Req['expect'] = refused
      ? { mustFail: true, count: 0, text: null, numbers: null }
      : plainBody && predictable && r.text.good === true && judged.numbers && r.good.msg_id === undefined
        ? { mustFail: false, count: judged.numbers.size, text: String(r.text.value), numbers: judged.numbers }
        : null;
    return { endpoint: 'api-send', method: 'POST', path: '/api/v1/messages', headers, body, sent, expect };
  });

const a2p = fc
  .record({
    auth,
    to: fc.oneof({ weight: 4, arbitrary: validNumber }, { weight: 1, arbitrary: badNumber }, { weight: 1, arbitrary: unknownNumber }),
    digitsOnly: fc.boolean(),
    text,
    from: sometimes(fc.oneof(fc.constantFrom('+79160000000', 'SHOP', ''), nastyString), 2),
    msg_id: sometimes(fc.oneof(fc.uuid(), fc.constantFrom('repeat-1', 'repeat-2'), nastyString), 2),
    callback_url: sometimes(fc.oneof(fc.constant('https://example.com/cb'), nastyString), 3),
    extra: fc.dictionary(fc.string({ maxLength: 8 }), jsonValue, { maxKeys: 2 }),
    toValue: sometimes(jsonValue, 6),
  })
  .map((r): Req => {
    const to = r.toValue ?? (r.digitsOnly && r.to.canonical !== null && r.to.canonical !== 'bad' ? r.to.canonical.slice(1) : r.to.input);
    const json: Record<string, unknown> = { ...r.extra, to, message: r.text.value };
    if (r.from !== null) json.from = r.from;
    if (r.msg_id !== null) json.msg_id = r.msg_id;
    if (r.callback_url !== null) json.callback_url = r.callback_url;
    const refused = r.auth !== 'good' || (r.toValue === null && r.to.canonical === 'bad') || r.text.good === false;
    const plain = r.toValue === null && r.to.canonical !== null && r.to.canonical !== 'bad' && r.text.good === true && r.msg_id === null && (r.callback_url === null || r.callback_url === 'https://example.com/cb') && (r.from === null || typeof r.from === 'string') && !('from' in r.extra) && !('to' in r.extra) && !('message' in r.extra) && !('msg_id' in r.extra) && !('callback_url' in r.extra);
    return {
      endpoint: 'a2p',
      method: 'POST',
      path: '/sms/v1/sms',
      headers: [...authHeader(r.auth === 'bogus' ? 'malformed' : r.auth, 'basic'), ['Content-Type', 'application/json']],
      body: Buffer.from(JSON.stringify(json), 'utf8'),
      sent: Object.keys(json),
      expect: refused ? { mustFail: true, count: 0, text: null, numbers: null } : plain ? { mustFail: false, count: 1, text: String(r.text.value), numbers: new Set([r.to.canonical as string]) } : null,
    };
  });

const templateBody = fc.array(fc.constantFrom('Hi ', '%(name)s', '%(if code)s', '%(else)s', '%(endif)s', '%%', '%', '%(', ')s', '%(x y)s', '%(if)s', '😀', '\u0000', '\ud800', 'text '), { maxLength: 12 }).map((p) => p.join(''));
const preview = fc
  .record({
    auth,
    template: sometimes(fc.oneof(fc.constantFrom('greet', 'shared', 1, 2, '1', 999, 'nope', ''), jsonValue), 1),
    body: sometimes(fc.oneof(templateBody, jsonValue), 1),
    vars: sometimes(fc.oneof(fc.dictionary(fc.constantFrom('name', 'code', 'x', 'constructor', '__proto__', ''), fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), jsonValue), { maxKeys: 4 }), jsonValue), 1),
    extra: fc.dictionary(fc.string({ maxLength: 8 }), jsonValue, { maxKeys: 1 }),
  })
  .map((r): Req => {
    const json: Record<string, unknown> = { ...r.extra };
    if (r.template !== null) json.template = r.template;
    if (r.body !== null) json.body = r.body;
    if (r.vars !== null) json.vars = r.vars;
    return { endpoint: 'preview', method: 'POST', path: '/api/v1/templates/preview', headers: [...authHeader(r.auth, 'bearer'), ['Content-Type', 'application/json']], body: Buffer.from(JSON.stringify(json), 'utf8'), sent: Object.keys(json), expect: null };
  });

function queryRequest(endpoint: 'list' | 'inbox', path: string, keys: string[]) {
  return fc
    .record({
      auth,
      pairs: fc.array(fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }), encodedValue(fc.oneof(fc.constantFrom('1', '50', '500', '501', '0', '-1', 'sent', 'queued', 'nope', '2026-01-01', '2026-02-30', '9007199254740993', '1e3', '+7916', '%_'), urlNasty))), { maxLength: 5 }),
    })
    .map(
      (r): Req => ({
        endpoint,
        method: 'GET',
        path: r.pairs.length > 0 ? `${path}?${encodePairs(r.pairs.map(([k, v]) => [k, v]))}` : path,
        headers: authHeader(r.auth, 'bearer'),
        body: null,
        sent: r.pairs.map(([k]) => k),
        expect: null,
      }),
    );
}
const list = queryRequest('list', '/api/v1/messages', ['state', 'limit', 'user_id', 'to', 'since', 'until', 'before']);
const inbox = queryRequest('inbox', '/api/v1/inbox', ['limit', 'sim', 'from', 'since', 'before']);

/** How a request shows in a counterexample: cut short (a 100 kB string would drown the report). */
function summary(req: Req): string {
  const cut = (t: string) => (t.length > 400 ? `${t.slice(0, 400)}… (${t.length} characters)` : t);
  return `${req.endpoint} ${req.method} ${cut(req.path)} ${JSON.stringify(req.headers)} ${cut(req.body?.toString('utf8') ?? '')} expect ${JSON.stringify(req.expect, (_k, v) => (v instanceof Set ? [...v] : v))}`;
}

const request = fc
  .oneof({ weight: 3, arbitrary: classic }, { weight: 4, arbitrary: apiSend }, { weight: 2, arbitrary: a2p }, { weight: 1, arbitrary: preview }, { weight: 1, arbitrary: list }, { weight: 1, arbitrary: inbox })
  .map((req) => Object.assign(req, { [fc.toStringMethod]: () => summary(req) }));

// ---- the properties

const KNOWN_FIELDS: Record<Req['endpoint'], string[]> = {
  'classic-get': CLASSIC_KNOWN,
  'classic-form': CLASSIC_KNOWN,
  'classic-json': CLASSIC_KNOWN,
  'api-send': API_KNOWN,
  a2p: ['from', 'to', 'message', 'callback_url', 'msg_id'],
  preview: ['template', 'body', 'vars'],
  list: ['state', 'limit', 'user_id', 'to', 'since', 'until', 'before'],
  inbox: ['limit', 'sim', 'from', 'since', 'before'],
};

const figures = {
  runs: 0,
  requests: 0,
  status2xx: 0,
  status4xx: 0,
  status5xx: 0,
  notJson: 0,
  noField: 0,
  partialStores: 0,
  acceptedRequests: 0,
  storedMessages: 0,
  wrongContent: 0,
  headTooLarge: 0,
  byEndpoint: {} as Record<string, number>,
};

async function totalMessages(): Promise<number> {
  return Object.values(await storage.countByState()).reduce((a, b) => a + (b ?? 0), 0);
}
async function lastId(): Promise<number> {
  return (await storage.listMessages({ limit: 1 }))[0]?.id ?? 0;
}

/** The ids an answer reports, per endpoint (empty for an endpoint that stores nothing). */
function reportedIds(req: Req, body: any): number[] {
  if (req.endpoint.startsWith('classic')) return Array.isArray(body?.ids) ? body.ids : [];
  if (req.endpoint === 'api-send') return Array.isArray(body?.messages) ? body.messages.map((m: { id: number }) => m.id) : [];
  if (req.endpoint === 'a2p') return typeof body?.result?.id === 'number' ? [body.result.id] : [];
  return [];
}

function fieldOf(req: Req, body: any): unknown {
  return req.endpoint === 'a2p' ? body?.result?.field : body?.field;
}

async function exercise(req: Req): Promise<void> {
  figures.requests++;
  figures.byEndpoint[req.endpoint] = (figures.byEndpoint[req.endpoint] ?? 0) + 1;
  const before = await totalMessages();
  const beforeId = await lastId();
  const head = [`${req.method} ${req.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', `X-Forwarded-For: ${nextAddress()}`, ...req.headers.map(([k, v]) => `${k}: ${v}`)];
  if (req.body) head.push(`Content-Length: ${req.body.length}`);
  const raw = Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), req.body ?? Buffer.alloc(0)]);
  const answer = await rawHttp(gateway.url, raw, 30_000);
  const after = await totalMessages();
  const where = `${summary(req)} -> ${answer.status} ${answer.body.slice(0, 300)}`;
  if (answer.status === 431) {
    // Node's own limit on the request head (16 kB), before the gateway sees the request: nothing stored.
    figures.status4xx++;
    figures.headTooLarge++;
    expect(head.join('\r\n').length, where).toBeGreaterThan(16_000);
    expect(after - before, where).toBe(0);
    return;
  }

  // Never a 5xx.
  if (answer.status >= 500) figures.status5xx++;
  else if (answer.status >= 400) figures.status4xx++;
  else figures.status2xx++;
  expect(answer.status, where).toBeLessThan(500);

  // Always JSON.
  let body: any;
  try {
    body = JSON.parse(answer.body);
  } catch {
    figures.notJson++;
    throw new Error(`not JSON: ${where}`);
  }
  expect(answer.headers['content-type'] ?? '', where).toMatch(/^application\/json/);

  // A refusal of the request's content names the parameter.
  if ([400, 404, 409, 413, 415].includes(answer.status)) {
    const field = fieldOf(req, body);
    const known = [...KNOWN_FIELDS[req.endpoint], 'body', 'query', 'form', 'id'];
    const root = typeof field === 'string' ? field.split(/[.[]/)[0]! : '';
    const seen = req.sent.map((k) => Buffer.from(k, 'utf8').toString('utf8'));
    const named = typeof field === 'string' && (known.includes(root) || seen.some((k) => k.slice(0, 40) === field || k === root));
    if (!named) figures.noField++;
    expect(named, `no field naming the parameter: ${where}`).toBe(true);
  }

  // Never a partial store: the count grows by the new messages the answer reports, or not at all.
  const ok = answer.status >= 200 && answer.status < 300;
  const ids = ok ? reportedIds(req, body) : [];
  const fresh = ids.filter((id) => id > beforeId);
  const delta = after - before;
  const partial = delta !== fresh.length || (fresh.length > 0 && fresh.length !== ids.length) || (!ok && delta !== 0);
  if (partial) figures.partialStores++;
  expect({ delta, reported: fresh.length }, `partial store: ${where}`).toEqual({ delta: fresh.length, reported: fresh.length });
  if (fresh.length > 0) expect(fresh.length, `a repeat mixed with new messages: ${where}`).toBe(ids.length);
  if (req.expect) {
    if (req.expect.mustFail) expect(ok, `accepted a request that must be refused: ${where}`).toBe(false);
    else if (ok && fresh.length > 0 && req.expect.count !== null) expect(fresh.length, `stored ${fresh.length}, the request names ${req.expect.count} distinct numbers: ${where}`).toBe(req.expect.count);
  }
  if (ok && fresh.length > 0) {
    figures.acceptedRequests++;
    figures.storedMessages += fresh.length;
    for (const id of fresh) {
      const m = (await storage.getMessage(id))!;
      const right = (req.expect?.text == null || m.text === req.expect.text) && (req.expect?.numbers == null || req.expect.numbers.has(m.recipient));
      if (!right) figures.wrongContent++;
      expect(right, `message ${id} (${m.recipient}, ${JSON.stringify(m.text).slice(0, 80)}) is not what was asked: ${where}`).toBe(true);
    }
  }
}

describe('HTTP fuzz', () => {
  it(`${RUNS} random requests: never a 5xx, always JSON, the field named, never a partial store`, async () => {
    const started = Date.now();
    let failure: unknown = null;
    try {
      await fc.assert(
        fc.asyncProperty(request, async (req) => {
          figures.runs++;
          await exercise(req);
        }),
        // A failure prints its seed and path; SMSGATE_FUZZ_SEED (and SMSGATE_FUZZ_PATH) replay it.
        { numRuns: RUNS, ...(process.env.SMSGATE_FUZZ_SEED ? { seed: Number(process.env.SMSGATE_FUZZ_SEED), path: process.env.SMSGATE_FUZZ_PATH } : {}) },
      );
    } catch (error) {
      failure = error;
    }
    // The gateway is still there.
    const health = await rawHttp(gateway.url, `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    writeFigures('api-fuzz', {
      runs: figures.runs,
      requests: figures.requests,
      status2xx: figures.status2xx,
      status4xx: figures.status4xx,
      status5xx: figures.status5xx,
      notJson: figures.notJson,
      noField: figures.noField,
      partialStores: figures.partialStores,
      wrongContent: figures.wrongContent,
      headTooLarge: figures.headTooLarge,
      acceptedRequests: figures.acceptedRequests,
      storedMessages: figures.storedMessages,
      unexpectedErrorsLogged: unexpected.length,
      healthAfter: health.status,
      endpoints: JSON.stringify(figures.byEndpoint),
      seconds: Math.round((Date.now() - started) / 100) / 10,
    });
    if (failure) throw failure;
    expect(health.status).toBe(200);
    expect(unexpected).toEqual([]);
    // The run met every way in, and both outcomes (a replay of one failure's path meets only that one).
    if (process.env.SMSGATE_FUZZ_PATH) return;
    expect(Object.keys(figures.byEndpoint).sort()).toEqual(['a2p', 'api-send', 'classic-form', 'classic-get', 'classic-json', 'inbox', 'list', 'preview']);
    expect(figures.acceptedRequests).toBeGreaterThan(0);
    expect(figures.status4xx).toBeGreaterThan(0);
  }, 900_000);
});
