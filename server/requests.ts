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
import { type SegmentCount, countSegments } from '../modem/pdu/index.js';
import type { InboxMessage } from '../sql/inbox.js';
import { type Message, type NewMessage, SHARED_TEMPLATE_OWNER, type Sim, type Storage, type Template, type User } from '../sql/storage.js';
import type { Config } from './config.js';
import { type ParsedTemplate, parseTemplate, readVars, renderTemplate } from './templates.js';

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
  /**
   * Recipients, each a string; a string with commas (or semicolons, newlines) holds several. In an array, an item
   * may also be an object `{to, vars}`: one number with its own template variables.
   */
  to: unknown;
  text: unknown;
  /** A stored template (name or id) to render instead of `text`; only the JSON API offers it. */
  template?: unknown;
  /** The template's variables, shared by every recipient (a recipient's own vars win). */
  vars?: unknown;
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

/** One recipient as a request names it: the normalised number and, for an item given as an object, its own vars. */
export interface RecipientItem {
  number: string;
  /** The item's own template variables (null: a plain number, or an object without vars). */
  vars: Record<string, string> | null;
  /** Where the item stood in the `to` array (null when `to` was not an array), for error fields. */
  index: number | null;
}

/** An object item of `to`: `{to, vars?}`, its number one string. */
function recipientObject(item: Record<string, unknown>, at: string): { input: string; vars: Record<string, string> | null } {
  for (const key of Object.keys(item)) {
    if (key !== 'to' && key !== 'vars') throw bad(`unknown field "${key.slice(0, 40)}" in ${at} (known: to, vars)`, `${at}.${key.slice(0, 40)}`);
  }
  const to = item.to;
  const input = typeof to === 'number' && Number.isSafeInteger(to) ? String(to) : to;
  if (typeof input !== 'string' || input.trim() === '' || /[,;\n]/.test(input)) throw bad(`${at}.to must be one phone number`, `${at}.to`);
  return { input, vars: 'vars' in item ? readVars(item.vars, `${at}.vars`) : null };
}

/**
 * Splits and normalises the recipients, keeping each one's own vars and place; throws RecipientsError listing every
 * invalid one. Repeats are kept (the caller drops a repeat once it knows the texts).
 */
export function parseRecipientItems(value: unknown, field: string, config: Config['send']): RecipientItem[] {
  type Item = { input: string; vars: Record<string, string> | null; index: number | null };
  let items: Item[];
  const split = (text: string, index: number | null): Item[] => text.split(/[,;\n]/).map((input) => ({ input, vars: null, index }));
  const plain = (v: unknown): v is string | number => typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v));
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (typeof value === 'string') items = split(value, null);
  else if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) items = split(String(value), null);
  else if (Array.isArray(value) && value.length > 0 && value.every((v) => plain(v) || isObject(v))) {
    items = value.flatMap((v: unknown, index): Item[] => (isObject(v) ? [{ ...recipientObject(v, `${field}[${index}]`), index }] : split(String(v), index)));
  } else if (value === undefined || value === null || value === '') throw new RecipientsError('no recipient given', field, []);
  else throw bad(`${field} must be a phone number, a comma-separated list of them, or an array of them`, field);
  items = items.map((item) => ({ ...item, input: item.input.trim() })).filter((item) => item.input !== '');
  if (items.length === 0) throw new RecipientsError('no recipient given', field, []);
  if (items.length > config.maxRecipients) {
    throw bad(`too many recipients: ${items.length} (at most ${config.maxRecipients} per request)`, field);
  }
  const out: RecipientItem[] = [];
  const invalid: { input: string; reason: string }[] = [];
  for (const item of items) {
    try {
      const { number } = normaliseNumber(item.input, { defaultCountryCode: config.defaultCountryCode || undefined, field });
      out.push({ number, vars: item.vars, index: item.index });
    } catch (error) {
      if (!(error instanceof SmsgateError)) throw error;
      invalid.push({ input: item.input.slice(0, 64), reason: error.message });
    }
  }
  if (invalid.length > 0) {
    const first = invalid[0]!;
    const more = invalid.length > 1 ? ` (and ${invalid.length - 1} more)` : '';
    throw new RecipientsError(`invalid recipient ${first.reason}${more}; nothing was stored`, field, invalid.slice(0, 100));
  }
  return out;
}

/** Splits and normalises the recipients, each number once; throws RecipientsError listing every invalid one. */
export function parseRecipients(value: unknown, field: string, config: Config['send']): string[] {
  return [...new Set(parseRecipientItems(value, field, config).map((r) => r.number))];
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
  /** The first message's encoding and parts (every message's, for a plain text; a template's may differ per recipient). */
  encoding: string;
  parts: number;
  /** What a repeat of this request under the same msg_id must match (SHA-256 of everything it asks for). */
  requestHash: string;
  /** What was asked but cannot be done as asked, and was left out (e.g. a replace-ID on a multipart text). */
  warnings: string[];
  /** The template the texts were rendered from, if any. */
  template: Template | null;
}

/** May this user send with (and read) this template? Their own, a shared one, or any for an admin. */
export function mayUseTemplate(user: User, template: Template): boolean {
  return template.userId === SHARED_TEMPLATE_OWNER || template.userId === user.id || user.role === 'admin';
}

/**
 * The template a request names: a number (or a string of digits) is an id, any other string a name (the user's own
 * template first, then the shared one). NOT_FOUND naming `field` for one the user may not use.
 */
export async function resolveTemplate(ref: unknown, user: User, storage: Storage, field: string): Promise<Template> {
  let template: Template | null = null;
  if (typeof ref === 'number' && Number.isSafeInteger(ref) && ref > 0) template = await storage.getTemplate(ref);
  else if (typeof ref === 'string' && /^\d{1,15}$/.test(ref.trim())) template = await storage.getTemplate(Number(ref.trim()));
  else if (typeof ref === 'string' && ref.trim() !== '') template = await storage.findTemplate(user.id, ref);
  else throw bad(`${field} must be a template's name or id`, field);
  if (!template || !mayUseTemplate(user, template)) throw new SmsgateError(ErrorCodes.NotFound, `no template "${String(ref).slice(0, 64)}"`, field);
  return template;
}

/** A stored template, parsed; a body that no longer parses is named as the template's fault. */
export function parseStoredTemplate(template: Template, field: string): ParsedTemplate {
  try {
    return parseTemplate(template.body);
  } catch (error) {
    if (error instanceof SmsgateError) throw bad(`template "${template.name}" cannot be used: ${error.message}`, field);
    throw error;
  }
}

/**
 * Checks one text against the limits every send has (not empty, at most max_text_length characters, printable,
 * at most 255 parts) and measures it. `subject` names the text in messages ("the text for +7…" for a template's).
 */
export function measureText(text: string, field: string, config: Config['send'], subject = 'the text'): SegmentCount {
  if (text.trim() === '') throw bad(subject === 'the text' ? 'the message text is missing or empty' : `${subject} is empty`, field);
  const length = [...text].length;
  if (length > config.maxTextLength) throw bad(`${subject} is too long: ${length} characters (at most ${config.maxTextLength})`, field);
  const problem = textProblem(text);
  if (problem) throw bad(`${subject} ${problem}`, field);
  const count = countSegments(text);
  if (count.parts > 255) throw bad(`${subject} needs ${count.parts} parts; a message has at most 255`, field);
  return count;
}

/**
 * Checks a request for `user` and returns the queue rows to store (one per recipient). The SIM, when asked for,
 * must exist and be the user's (any SIM for an admin).
 *
 * With a template instead of a text, each recipient's text is rendered from the template with the shared `vars`
 * and the recipient's own (which win), and each is checked and measured by itself: encoding and parts may differ
 * per row. A rendering error for any recipient refuses the whole request, naming the variable's field
 * (`vars.name`, or `to[3].vars.name` for a recipient given with its own vars). A number named twice is sent once
 * per distinct text.
 */
export async function prepareSend(
  request: SendRequest,
  user: User,
  source: string,
  config: Config['send'],
  storage: Storage,
): Promise<PreparedSend> {
  const f = (name: keyof Omit<SendRequest, 'fields'>) => request.fields?.[name] ?? name;
  const recipients = parseRecipientItems(request.to, f('to'), config);
  const given = (v: unknown) => v !== undefined && v !== null;
  let text: string | undefined;
  let template: Template | null = null;
  let parsed: ParsedTemplate | null = null;
  let sharedVars: Record<string, string> = {};
  if (given(request.template)) {
    if (given(request.text)) throw bad(`give either ${f('text')} or ${f('template')}, not both`, f('template'));
    template = await resolveTemplate(request.template, user, storage, f('template'));
    parsed = parseStoredTemplate(template, f('template'));
    sharedVars = readVars(request.vars, f('vars'));
  } else {
    if (given(request.vars)) throw bad(`${f('vars')} is for templates: give ${f('template')} instead of ${f('text')}`, f('vars'));
    const withVars = recipients.find((r) => r.vars !== null);
    if (withVars) throw bad(`${f('to')}[${withVars.index}].vars is for templates: give ${f('template')} instead of ${f('text')}`, `${f('to')}[${withVars.index}].vars`);
    text = optString(request.text, f('text'));
    if (text === undefined || text.trim() === '') throw bad('the message text is missing or empty', f('text'));
    const length = [...text].length;
    if (length > config.maxTextLength) throw bad(`the text is too long: ${length} characters (at most ${config.maxTextLength})`, f('text'));
    const problem = textProblem(text);
    if (problem) throw bad(`the text ${problem}`, f('text'));
  }
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
  // Each recipient's text and its measure (once per distinct text); a number repeated with the same text is sent once.
  const measured = new Map<string, { id: number; count: SegmentCount }>();
  const rows: { recipient: string; text: string; count: SegmentCount }[] = [];
  const seen = new Set<string>();
  for (const r of recipients) {
    let rowText: string;
    if (parsed) {
      const own = r.vars;
      const vars = own ? { ...sharedVars, ...own } : sharedVars;
      const field = (name: string) => (own ? `${f('to')}[${r.index}].vars.${name}` : `${f('vars')}.${name}`);
      rowText = renderTemplate(parsed, vars, { field });
    } else rowText = text!;
    let known = measured.get(rowText);
    if (!known) {
      const count = parsed ? measureText(rowText, f('template'), config, `the text for ${r.number}`) : measureText(rowText, f('text'), config);
      known = { id: measured.size, count };
      measured.set(rowText, known);
    }
    const key = `${r.number} ${known.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({ recipient: r.number, text: rowText, count: known.count });
  }
  const first = rows[0]!;
  // One text for all (always so for a plain text): the request is hashed as it always was.
  const uniform = rows.every((row) => row.text === first.text);
  const warnings: string[] = [];
  const multipart = rows.filter((row) => row.count.parts > 1).length;
  if (replaceId !== null && multipart > 0) {
    warnings.push(
      uniform
        ? `${f('replaceId')} is left out: the text needs ${first.count.parts} parts, and each part would replace the one before`
        : `${f('replaceId')} is left out for ${multipart} of ${rows.length} messages: their texts need more than one part, and each part would replace the one before`,
    );
  }
  const numbers = [...new Set(rows.map((row) => row.recipient))];
  const texts = uniform ? first.text : rows.map((row) => [row.recipient, row.text]);
  const requestHash = createHash('sha256')
    .update(JSON.stringify([numbers, texts, flash, replaceId, report, attempts, priority, sendAt ?? null, wantSimId, callbackUrl || null]))
    .digest('hex');
  const items = rows.map<NewMessage>((row) => ({
    userId: user.id,
    recipient: row.recipient,
    text: row.text,
    encoding: row.count.encoding,
    parts: row.count.parts,
    flash,
    replaceId: row.count.parts > 1 ? null : replaceId,
    report,
    priority,
    maxAttempts: attempts,
    clientMsgId: msgId ?? null,
    callbackUrl: callbackUrl || null,
    sendAt: sendAt ?? null,
    wantSimId,
    source,
  }));
  return { items, encoding: first.count.encoding, parts: first.count.parts, requestHash, warnings, template };
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

/** A received message as the API, webhooks and the web pages show it. */
export function inboxView(m: InboxMessage, sims: Map<number, Sim>): Record<string, unknown> {
  const sim = m.simId === null ? null : (sims.get(m.simId) ?? null);
  return {
    id: m.id,
    from: m.sender,
    text: m.text,
    encoding: m.encoding,
    class: m.class,
    flash: m.class === 0,
    parts: m.parts,
    parts_received: m.partsReceived,
    complete: m.complete,
    sim: sim ? { id: sim.id, number: sim.number, label: sim.label, imsi: sim.imsi } : m.simId === null ? null : { id: m.simId },
    channel_id: m.channelId,
    sent_at: m.sentAt,
    received_at: iso(m.receivedAt),
    updated_at: iso(m.updatedAt),
  };
}

/** The SIMs by id, for views. */
export async function simMap(storage: Storage): Promise<Map<number, Sim>> {
  return new Map((await storage.listSims()).map((s) => [s.id, s]));
}
