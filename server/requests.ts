/**
 * A send request, whichever way it came in (classic endpoint, JSON API, A2P endpoint, web form, CLI), checked once
 * and turned into queue rows: every recipient normalised (a request with any invalid recipient is refused whole,
 * with the list of offenders), the text checked and measured by the codec the modem will use, the options checked
 * and bounded. Nothing is stored unless everything is valid.
 *
 * Also the typed readers for raw request values (strings, booleans, integers, times), which name the field at fault
 * and never let an array or an object through where a scalar belongs.
 */
import { createHash } from 'node:crypto';
import { parsePhoneNumberFromString } from 'libphonenumber-js/min';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import { normaliseNumber } from '../modem/number.js';
import { countSegments } from '../modem/pdu/index.js';
import type { Message, NewMessage, Sim, Storage, User } from '../sql/storage.js';
import type { Config } from './config.js';

/** A request refused as a whole because some recipients are not numbers; `invalid` lists them. */
export class RecipientsError extends SmsgateError {
  constructor(
    message: string,
    field: string,
    readonly invalid: { input: string; reason: string }[],
  ) {
    super(ErrorCodes.BadNumber, message, field);
  }
}

export function bad(message: string, field: string): SmsgateError {
  return new SmsgateError(ErrorCodes.BadMessage, message, field);
}

/** A scalar parameter: absent (undefined), or one string. Arrays and objects are refused. */
export function optString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw bad(`${field} must be given once, as a string`, field);
}

export function reqString(value: unknown, field: string, what = field): string {
  const s = optString(value, field);
  if (s === undefined || s.trim() === '') throw bad(`${what} is missing or empty`, field);
  return s;
}

/** Booleans as devices write them: true/false, 1/0, yes/no, on/off (any case); absent or "" is undefined. */
export function optBool(value: unknown, field: string): boolean | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value === 'string') {
    if (/^(1|true|yes|on)$/i.test(value.trim())) return true;
    if (/^(0|false|no|off)$/i.test(value.trim())) return false;
  }
  throw bad(`${field} must be true or false (or 1/0)`, field);
}

/** An integer in [min, max]; absent or "" is undefined. */
export function optInt(value: unknown, field: string, min: number, max: number): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw bad(`${field} must be a whole number from ${min} to ${max}`, field);
  if (n < min || n > max) throw bad(`${field} must be from ${min} to ${max} (not ${n})`, field);
  return n;
}

/** A time: ISO 8601 with an offset (or Z), or milliseconds since the epoch. */
export function optTime(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string') {
    if (/^\d{1,15}$/.test(value)) return Number(value);
    const m = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(value);
    // A date that exists (not 2026-02-30, which Date.parse would roll over); without an offset, the box's local time.
    const day = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
    if (m && day!.getUTCDate() === Number(m[3]) && day!.getUTCMonth() === Number(m[2]) - 1) {
      const t = Date.parse(value);
      if (Number.isFinite(t)) return t;
    }
  }
  throw bad(`${field} must be a time: ISO 8601 (2026-11-24T09:00:00+03:00) or milliseconds since 1970`, field);
}

/** Text people may send: well-formed Unicode, no control characters but tab, CR and LF. */
export function textProblem(text: string): string | null {
  if (!text.isWellFormed()) return 'contains a broken character (an unpaired UTF-16 surrogate)';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) return 'contains a control character';
  return null;
}

/** What a send request asks for, as each endpoint reads it from its own parameters. */
export interface SendRequest {
  /** Recipients, each a string; a string with commas (or semicolons, newlines) holds several. */
  to: unknown;
  text: unknown;
  flash?: unknown;
  replaceId?: unknown;
  report?: unknown;
  attempts?: unknown;
  priority?: unknown;
  sendAt?: unknown;
  sim?: unknown;
  msgId?: unknown;
  callbackUrl?: unknown;
  /** The names of these fields in this endpoint's parameters, for error messages. */
  fields?: Partial<Record<keyof Omit<SendRequest, 'fields'>, string>>;
}

/** Splits and normalises the recipients; throws RecipientsError listing every invalid one. */
export function parseRecipients(value: unknown, field: string, config: Config['send']): string[] {
  let items: string[];
  if (typeof value === 'string') items = value.split(/[,;\n]/);
  else if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) items = [String(value)];
  else if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v)))) {
    items = value.flatMap((v: string | number) => String(v).split(/[,;\n]/));
  } else if (value === undefined || value === null || value === '') throw new RecipientsError('no recipient given', field, []);
  else throw bad(`${field} must be a phone number, a comma-separated list of them, or an array of them`, field);
  items = items.map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new RecipientsError('no recipient given', field, []);
  if (items.length > config.maxRecipients) {
    throw bad(`too many recipients: ${items.length} (at most ${config.maxRecipients} per request)`, field);
  }
  const out: string[] = [];
  const seen = new Set<string>();
  const invalid: { input: string; reason: string }[] = [];
  for (const item of items) {
    try {
      const { number } = normaliseNumber(item, { defaultCountryCode: config.defaultCountryCode || undefined, field });
      if (!seen.has(number)) {
        seen.add(number);
        out.push(number);
      }
    } catch (error) {
      if (!(error instanceof SmsgateError)) throw error;
      invalid.push({ input: item.slice(0, 64), reason: error.message });
    }
  }
  if (invalid.length > 0) {
    const first = invalid[0]!;
    const more = invalid.length > 1 ? ` (and ${invalid.length - 1} more)` : '';
    throw new RecipientsError(`invalid recipient ${first.reason}${more}; nothing was stored`, field, invalid.slice(0, 100));
  }
  return out;
}

/**
 * Recipients that are international numbers whose "+" the client left out (the classic endpoint's `intl=1`, the
 * BILLmanager module): one written as 7 to 15 digits (separators aside) gets its "+" when that makes a valid number (libphonenumber's metadata), so "79161234567" is
 * +7 916…, never a national number nor one read in another default country (+49 79161234567 is valid too). A
 * number that is no valid international one ("89161234567": no country +89) is left as written, for the default
 * country code to read as usual; short codes (up to 6 digits) stay as they are.
 */
export function internationalRecipients(list: string): string {
  return list
    .split(/([,;\n])/)
    .map((item) => {
      const digits = item.replace(/[\s\u00a0\-().]/g, '');
      if (!/^[1-9]\d{6,14}$/.test(digits)) return item;
      return parsePhoneNumberFromString(`+${digits}`)?.isValid() ? `+${digits}` : item;
    })
    .join('');
}

export interface PreparedSend {
  items: NewMessage[];
  encoding: string;
  parts: number;
  /** What a repeat of this request under the same msg_id must match (SHA-256 of everything it asks for). */
  requestHash: string;
  /** What was asked but cannot be done as asked, and was left out (e.g. a replace-ID on a multipart text). */
  warnings: string[];
}

/**
 * Checks a request for `user` and returns the queue rows to store (one per recipient). The SIM, when asked for,
 * must exist and be the user's (any SIM for an admin).
 */
export async function prepareSend(
  request: SendRequest,
  user: User,
  source: string,
  config: Config['send'],
  storage: Storage,
): Promise<PreparedSend> {
  const f = (name: keyof Omit<SendRequest, 'fields'>) => request.fields?.[name] ?? name;
  const recipients = parseRecipients(request.to, f('to'), config);
  const text = optString(request.text, f('text'));
  if (text === undefined || text.trim() === '') throw bad('the message text is missing or empty', f('text'));
  const length = [...text].length;
  if (length > config.maxTextLength) throw bad(`the text is too long: ${length} characters (at most ${config.maxTextLength})`, f('text'));
  const problem = textProblem(text);
  if (problem) throw bad(`the text ${problem}`, f('text'));
  const flash = optBool(request.flash, f('flash')) ?? false;
  const replaceId = optInt(request.replaceId, f('replaceId'), 0, 7) || null;
  // A report when asked; else when a callback will tell of the delivery; else as the user's default says.
  const report = optBool(request.report, f('report')) ?? (optString(request.callbackUrl, f('callbackUrl')) ? true : user.reportDefault);
  const attempts = optInt(request.attempts, f('attempts'), 1, config.maxAttempts) ?? config.defaultAttempts;
  const priority = optInt(request.priority, f('priority'), -100, 100) ?? 0;
  const sendAt = optTime(request.sendAt, f('sendAt'));
  const msgId = optString(request.msgId, f('msgId'));
  if (msgId !== undefined && (msgId.length === 0 || msgId.length > 128 || textProblem(msgId))) {
    throw bad(`${f('msgId')} must be 1 to 128 printable characters`, f('msgId'));
  }
  const callbackUrl = optString(request.callbackUrl, f('callbackUrl'));
  if (callbackUrl !== undefined && callbackUrl !== '') checkCallbackUrl(callbackUrl, f('callbackUrl'));
  let wantSimId: number | null = null;
  const simField = request.sim;
  if (simField !== undefined && simField !== null && simField !== '') {
    // A user looks among their own SIMs only: another user's SIM and no SIM read the same.
    const sims = user.role === 'admin' ? await storage.listSims() : await storage.simsOfUser(user.id);
    wantSimId = findSim(sims, simField, f('sim')).id;
  }
  const count = countSegments(text);
  if (count.parts > 255) throw bad(`the text needs ${count.parts} parts; a message has at most 255`, f('text'));
  const warnings: string[] = [];
  if (replaceId !== null && count.parts > 1) {
    warnings.push(`${f('replaceId')} is left out: the text needs ${count.parts} parts, and each part would replace the one before`);
  }
  const requestHash = createHash('sha256')
    .update(JSON.stringify([recipients, text, flash, replaceId, report, attempts, priority, sendAt ?? null, wantSimId, callbackUrl || null]))
    .digest('hex');
  const items = recipients.map<NewMessage>((recipient) => ({
    userId: user.id,
    recipient,
    text,
    encoding: count.encoding,
    parts: count.parts,
    flash,
    replaceId: count.parts > 1 ? null : replaceId,
    report,
    priority,
    maxAttempts: attempts,
    clientMsgId: msgId ?? null,
    callbackUrl: callbackUrl || null,
    sendAt: sendAt ?? null,
    wantSimId,
    source,
  }));
  return { items, encoding: count.encoding, parts: count.parts, requestHash, warnings };
}

/** A SIM among `sims` by id, IMSI, number or label; NOT_FOUND naming the field. */
export function findSim(sims: Sim[], ref: unknown, field: string): Sim {
  const text = optString(ref, field);
  const sim =
    text === undefined
      ? undefined
      : (sims.find((s) => String(s.id) === text) ?? sims.find((s) => s.imsi === text || s.number === text || (s.label !== null && s.label === text)));
  if (!sim) throw new SmsgateError(ErrorCodes.NotFound, `no SIM "${String(text).slice(0, 64)}"`, field);
  return sim;
}

export function checkCallbackUrl(url: string, field: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad(`${field} is not a URL`, field);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw bad(`${field} must be an http or https URL`, field);
  if (parsed.username || parsed.password) throw bad(`${field} must not carry a user or password (the callback is signed instead)`, field);
  if (url.length > 2048) throw bad(`${field} is longer than 2048 characters`, field);
}

/** A time for an API answer: ISO 8601 in UTC, null for none. */
export const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** A message as every API answer shows it. */
export function messageView(m: Message, sims: Map<number, Sim>): Record<string, unknown> {
  const sim = m.simId === null ? null : (sims.get(m.simId) ?? null);
  return {
    id: m.id,
    to: m.recipient,
    text: m.text,
    state: m.state,
    reason: m.reason,
    encoding: m.encoding,
    parts: m.parts,
    flash: m.flash,
    replace_id: m.replaceId,
    report: m.report,
    priority: m.priority,
    attempts: m.attempts,
    max_attempts: m.maxAttempts,
    sim: sim ? { id: sim.id, number: sim.number, label: sim.label, operator: sim.operator } : m.simId === null ? null : { id: m.simId },
    requested_sim: m.wantSimId,
    channel_id: m.channelId,
    part_refs: m.partRefs,
    error: m.errorCode ? { code: m.errorCode, meaning: m.errorText } : null,
    msg_id: m.clientMsgId,
    callback_url: m.callbackUrl,
    delivered_at: iso(m.deliveredAt),
    part_status: m.partStatus,
    callback: m.callbackUrl ? { pending: m.callbackDue !== null, attempts: m.callbackAttempts, last_error: m.callbackError, notified_state: m.notifiedState } : null,
    source: m.source,
    user_id: m.userId,
    send_at: iso(m.sendAt),
    created_at: iso(m.createdAt),
    updated_at: iso(m.updatedAt),
    sent_at: iso(m.sentAt),
  };
}

/** The SIMs by id, for views. */
export async function simMap(storage: Storage): Promise<Map<number, Sim>> {
  return new Map((await storage.listSims()).map((s) => [s.id, s]));
}
