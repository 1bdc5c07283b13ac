/**
 * Carbon Billing 5 as an smsgate client: its own SMS gateway (operator card → "Настройка сообщений", "Использовать
 * СМС шлюз Carbon" off) is a URL, a parameter string with %sms% (the number) and %text% (the text), GET or POST,
 * an optional login and password sent as HTTP Basic, and a "remove +" option. What goes on the wire is assumed to
 * be what a Python HTTP client makes of it (Carbon's daemons are Python): the parameters form-urlencoded as UTF-8
 * (spaces as "+"), Basic credentials in the Authorization header, success read from the HTTP status (200).
 *
 * Each request here is written byte for byte onto a TCP connection to a real gateway with simulated modems, and
 * the simulated network's record shows the number and the text that went out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { internationalRecipients } from '../../server/requests.js';
import { type RunningGateway, eventually, rawHttp, startRunningGateway } from '../helpers/running.js';

let g: RunningGateway;
const LOGIN = 'carbon';
const PASSWORD = 'carbon-secret-1';

/** Python's urllib.parse.quote_plus: UTF-8, everything but letters, digits and "_.-~" percent-encoded, space as "+". */
function quotePlus(value: string): string {
  return encodeURIComponent(value)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/** Carbon's parameter string with %sms% and %text% filled in, each value encoded, as one form/query string. */
function carbonParams(template: string, number: string, text: string): string {
  return template
    .split('&')
    .map((pair) => {
      const [name = '', value = ''] = pair.split('=');
      return `${name}=${quotePlus(value.replace('%sms%', number).replace('%text%', text))}`;
    })
    .join('&');
}

interface CarbonSend {
  method: 'GET' | 'POST';
  path?: string;
  params: string;
  basic?: [string, string];
}

/** The bytes a Python requests-based sender writes for one message. */
function carbonRequest(send: CarbonSend): Buffer {
  const url = new URL(g.base);
  const path = send.path ?? '/smsc.php';
  const body = send.method === 'POST' ? Buffer.from(send.params, 'utf8') : null;
  const lines = [
    `${send.method} ${send.method === 'GET' ? `${path}?${send.params}` : path} HTTP/1.1`,
    `Host: ${url.host}`,
    'User-Agent: python-requests/2.6.0 CPython/2.7.5 Linux/3.10.0',
    'Accept-Encoding: gzip, deflate',
    'Accept: */*',
    'Connection: keep-alive',
  ];
  if (body) lines.push(`Content-Length: ${body.length}`, 'Content-Type: application/x-www-form-urlencoded');
  if (send.basic) lines.push(`Authorization: Basic ${Buffer.from(`${send.basic[0]}:${send.basic[1]}`, 'utf8').toString('base64')}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
}

async function carbonSend(send: CarbonSend) {
  const answer = await rawHttp(g.base, carbonRequest(send));
  return { ...answer, json: JSON.parse(answer.body) as { success: boolean; description: string; ids?: number[]; numbers?: string[] } };
}

beforeAll(async () => {
  // The gateway's default settings: no default country code.
  g = await startRunningGateway();
  await g.addUser(LOGIN, PASSWORD);
}, 60_000);

afterAll(async () => {
  await g?.stop();
});

describe('Carbon Billing 5 against the classic endpoint', () => {
  it('POST, Basic auth, "remove +" with intl=1: 79161234567 goes out as +79161234567, the Cyrillic text whole', async () => {
    const text = 'Уважаемый абонент! Ваш баланс: 12,50 руб. Пополните счёт до 25.11 (договор №1042).';
    const r = await carbonSend({ method: 'POST', params: carbonParams('tel=%sms%&msg=%text%&intl=1', '79161234567', text), basic: [LOGIN, PASSWORD] });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ success: true, description: 'Saved to queue', numbers: ['+79161234567'] });
    // More than 70 characters of UCS-2: two concatenated parts, both to +7 916 123-45-67.
    const parts = await eventually(
      () => g.network().filter((n) => n.to === '+79161234567'),
      (l) => l.length === 2,
    );
    expect(parts.sort((a, b) => a.concat!.seq - b.concat!.seq).map((p) => p.text).join('')).toBe(text);
  });

  it('GET with the same parameters in the query string', async () => {
    const text = 'Проверка связи: GET-запрос, "кавычки" & амперсанд + плюс';
    const r = await carbonSend({ method: 'GET', params: carbonParams('tel=%sms%&msg=%text%&intl=1', '79161230002', text), basic: [LOGIN, PASSWORD] });
    expect(r.status).toBe(200);
    expect(r.json.numbers).toEqual(['+79161230002']);
    const got = await eventually(
      () => g.received(text),
      (l) => l.length === 1,
    );
    expect(got[0]!.to).toBe('+79161230002');
  });

  it('"remove +" off: the number keeps its "+", percent-encoded, and intl=1 changes nothing', async () => {
    const text = 'Plus kept: %2B arrives as +';
    for (const template of ['tel=%sms%&msg=%text%', 'tel=%sms%&msg=%text%&intl=1']) {
      const r = await carbonSend({ method: 'POST', path: '/send', params: carbonParams(template, '+79161230003', text), basic: [LOGIN, PASSWORD] });
      expect(r.status).toBe(200);
      expect(r.json.numbers).toEqual(['+79161230003']);
    }
    // The same number and text twice (no msg_id): two messages, as two requests are.
    await eventually(
      () => g.received(text),
      (l) => l.length === 2 && l.every((n) => n.to === '+79161230003'),
    );
  });

  it('login and password among the parameters instead of Basic', async () => {
    const text = 'Credentials as parameters';
    const r = await carbonSend({ method: 'POST', params: carbonParams(`login=${LOGIN}&pass=${PASSWORD}&tel=%sms%&msg=%text%&intl=1`, '79161230004', text) });
    expect(r.status).toBe(200);
    await eventually(
      () => g.received(text),
      (l) => l.length === 1 && l[0]!.to === '+79161230004',
    );
  });

  it('without intl=1 and without a default country code a number without "+" is national, as written: hence intl=1', async () => {
    const text = 'National reading';
    const r = await carbonSend({ method: 'POST', params: carbonParams('tel=%sms%&msg=%text%', '79161230005', text), basic: [LOGIN, PASSWORD] });
    expect(r.status).toBe(200);
    expect(r.json.numbers).toEqual(['79161230005']);
    await eventually(
      () => g.received(text),
      (l) => l.length === 1 && l[0]!.to === '79161230005',
    );
  });

  it('a sender that does not encode at all (raw UTF-8, raw spaces in the body) still gets the text through', async () => {
    const text = 'Ваш баланс 100 руб. Спасибо!';
    const raw = `tel=79161230006&msg=${text}&intl=1`;
    const r = await carbonSend({ method: 'POST', params: raw, basic: [LOGIN, PASSWORD] });
    expect(r.status).toBe(200);
    await eventually(
      () => g.received(text),
      (l) => l.length === 1 && l[0]!.to === '+79161230006',
    );
  });

  it('what Carbon counts as a failure is never a 200: wrong password 401, no credentials 403, no number 400; nothing stored', async () => {
    const total = async () => Object.values(await g.storage.countByState()).reduce((a, b) => a + (b ?? 0), 0);
    const stored = await total();
    const wrong = await carbonSend({ method: 'POST', params: carbonParams('tel=%sms%&msg=%text%&intl=1', '79161230007', 'x'), basic: [LOGIN, 'wrong-password'] });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ success: false, description: 'Wrong login or password' });
    const none = await carbonSend({ method: 'POST', params: carbonParams('tel=%sms%&msg=%text%&intl=1', '79161230007', 'x') });
    expect(none.status).toBe(403);
    const empty = await carbonSend({ method: 'POST', params: carbonParams('tel=%sms%&msg=%text%&intl=1', '', 'x'), basic: [LOGIN, PASSWORD] });
    expect(empty.status).toBe(400);
    expect(empty.json.description).toBe('Empty phone number');
    expect(await total()).toBe(stored);
  });
});

describe('internationalRecipients (intl=1)', () => {
  it.each([
    ['79161234567', '+79161234567'],
    ['7 (916) 123-45-67', '+79161234567'],
    ['+79161234567', '+79161234567'],
    ['4915112345678', '+4915112345678'],
    ['380501234567', '+380501234567'],
    // No country +89: left for the default country code (8 is Russia's trunk prefix).
    ['89161234567', '89161234567'],
    // Short codes and service numbers stay.
    ['0611', '0611'],
    ['900', '900'],
    ['*100#', '*100#'],
  ])('%s → %s', (input, output) => {
    expect(internationalRecipients(input)).toBe(output);
  });

  it('works on each number of a list and keeps the separators', () => {
    expect(internationalRecipients('79161234567, 89161234567;380501234567')).toBe('+79161234567, 89161234567;+380501234567');
  });
});
