#!/usr/bin/env node
/**
 * `gwsmsgate`: a BILLmanager 6 notification gateway module that sends BILLmanager's SMS notifications (its `ntsms`
 * notification type) through smsgate's JSON API. Installed as BILLmanager's gateway module executable (see the
 * README, "BILLmanager"), with its description `billmgr_mod_gwsmsgate.xml` in BILLmanager's etc/xml.
 *
 * BILLmanager runs the module with `--command NAME`; XML comes on stdin and goes to stdout:
 *
 * - `features`: no input; answers what the module does and for which notification type:
 *   `<doc><feature><check_connection>on</check_connection><formtune>on</formtune><outgoing>on</outgoing></feature>
 *   <notify_module>ntsms</notify_module></doc>`.
 * - `formtune`: the gateway's settings form on stdin, written back (an empty smsgate URL gets the local default).
 * - `check_connection`: the gateway's settings on stdin (`smsgate_url`, `smsgate_token`, optional `smsgate_sim`,
 *   wherever they are in the document); answers `<doc/>` when the token is accepted (and the SIM, if named, is one
 *   the token's user may use), else an error.
 * - `outgoing`: the settings and the messages on stdin (`<message>` elements with `<id>`, the number in `<phone>`
 *   (or `<to>`, `<destination>`, a `<user><phone>`), the text in `<text>` (or `<body>`, `<content>`)); each goes to
 *   `POST /api/v1/messages` with `Authorization: Bearer <token>` and `msg_id` "billmanager-<id>", so a run that
 *   BILLmanager repeats after a failure never sends a message twice. Numbers of digits only that make a valid
 *   international number get their "+". Answers `<doc><message id="…"><result>ok</result><smsgate_id>…</smsgate_id>
 *   <state>…</state></message>…</doc>`; a message smsgate refuses carries its `<error>` instead.
 *
 * Errors are ISPsystem's shape, `<doc><error type="T" object="O"><param name="object" type="msg" msg="O">O</param>
 * <param name="value">what happened</param></error></doc>`, with types smsgate_unreachable (gateway down or too
 * slow), smsgate_auth (token refused), smsgate_error (smsgate failed, HTTP 5xx or 429), smsgate_sim (no such SIM
 * for this token), smsgate_refused (smsgate refused a message: a bad number, say), smsgate_answer (an answer that
 * is not smsgate's), value (a setting or a message's number or text missing or wrong), xml (input that is not
 * well-formed XML) and command (an unknown command); the exit status is then 1 (0 on success), and one line goes
 * to stderr for the log. In `outgoing`, a message smsgate refuses (or that has no number) fails alone, in its own
 * `<message>`; the others are sent, and the exit status is 1 so that BILLmanager knows.
 *
 * Sources and assumptions: the command names, the XML-on-stdin protocol, the `<doc/>` answer, the error shape and
 * the description file's layout (plugin, `<metadata … type="form">`, `<lang>` messages) follow ISPsystem's
 * documentation ("How to add a notification module", BILLmanager 6) and ISPsystem's published modules (the payment
 * and processing modules in github.com/ISPsystemLLC/billmanager: their features answer, their error XML, their
 * check_connection reading the settings from the input document). The public material does not show a gateway
 * module's exact `outgoing` input, so it is read tolerantly (the elements above, found at any depth) and the answer
 * is designed the same way; the settings are read by name anywhere in the document for the same reason.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { internationalRecipients } from '../requests.js';
import { XmlError, type XmlElement, childNamed, el, findAll, findElement, parseXml, serialiseXml, textOf } from './xml.js';

/** The module's name: BILLmanager finds it by this name (the executable and billmgr_mod_<name>.xml). */
export const MODULE = 'gwsmsgate';

/** The gateway's settings, as named in the form of billmgr_mod_gwsmsgate.xml. */
export const SETTINGS = { url: 'smsgate_url', token: 'smsgate_token', sim: 'smsgate_sim' } as const;

export const DEFAULT_URL = 'http://127.0.0.1:8080';
export const COMMANDS = ['features', 'formtune', 'check_connection', 'outgoing'] as const;
const TIMEOUT_MS = 15_000;

/** An error BILLmanager shows: its type, the object (field) at fault, and what happened. */
export class ModuleError extends Error {
  constructor(
    readonly type: string,
    readonly object: string,
    readonly detail: string,
  ) {
    super(`${type}${object ? ` (${object})` : ''}: ${detail}`);
  }
}

/** ISPsystem's error element. */
export function errorElement(e: ModuleError): XmlElement {
  const attributes: Record<string, string> = { type: e.type };
  const params: XmlElement[] = [];
  if (e.object) {
    attributes.object = e.object;
    params.push(el('param', { name: 'object', type: 'msg', msg: e.object }, e.object));
  }
  params.push(el('param', { name: 'value' }, e.detail));
  return el('error', attributes, ...params);
}

/** `--command NAME` or `--command=NAME`; other options BILLmanager may add are ignored. */
export function commandOf(argv: string[]): string {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--command') return argv[i + 1] ?? '';
    if (arg.startsWith('--command=')) return arg.slice('--command='.length);
  }
  return '';
}

export function featuresDoc(): XmlElement {
  return el(
    'doc',
    {},
    el('feature', {}, el('check_connection', {}, 'on'), el('formtune', {}, 'on'), el('outgoing', {}, 'on')),
    el('notify_module', {}, 'ntsms'),
  );
}

/** The settings form, with the local gateway's URL where none is set yet. */
export function formtune(doc: XmlElement): XmlElement {
  const url = findElement(doc, SETTINGS.url);
  if (!url) doc.children.push(el(SETTINGS.url, {}, DEFAULT_URL));
  else if (textOf(url).trim() === '') url.children = [DEFAULT_URL];
  return doc;
}

export interface Connection {
  /** The gateway's base URL, without a trailing "/" or "/api/v1". */
  url: string;
  token: string;
  sim: string | null;
}

/** The settings from wherever they are in the document; a missing or wrong one is a `value` error naming it. */
export function connectionOf(doc: XmlElement): Connection {
  const read = (name: string) => {
    const found = findElement(doc, name);
    return found ? textOf(found).trim() : '';
  };
  const url = read(SETTINGS.url).replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  const token = read(SETTINGS.token);
  const sim = read(SETTINGS.sim);
  if (url === '') throw new ModuleError('value', SETTINGS.url, 'the smsgate URL is not set');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ModuleError('value', SETTINGS.url, `"${url.slice(0, 100)}" is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ModuleError('value', SETTINGS.url, 'the smsgate URL must be http:// or https://');
  if (token === '') throw new ModuleError('value', SETTINGS.token, 'the smsgate API token is not set (smsgate token create USER)');
  return { url, token, sim: sim === '' ? null : sim };
}

type Fetch = typeof fetch;

interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** One call to smsgate's API; a network failure or timeout is smsgate_unreachable, a 401/403 smsgate_auth. */
async function api(connection: Connection, method: string, path: string, http: Fetch, body?: unknown): Promise<ApiAnswer> {
  let response: Response;
  try {
    response = await http(`${connection.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${connection.token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'error',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    const e = error as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new ModuleError('smsgate_unreachable', SETTINGS.url, `cannot reach smsgate at ${connection.url}: ${why}`);
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (response.status === 401 || response.status === 403) {
    throw new ModuleError('smsgate_auth', SETTINGS.token, `smsgate refused the token (HTTP ${response.status})`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ModuleError('smsgate_answer', SETTINGS.url, `${connection.url} answered HTTP ${response.status} without smsgate's JSON: is it smsgate?`);
  }
  return { status: response.status, body: parsed as Record<string, unknown> };
}

/** Checks the token (GET /sims) and, when a SIM is named, that it is one of the token's user's SIMs. */
export async function checkConnection(connection: Connection, http: Fetch = fetch): Promise<void> {
  const { status, body } = await api(connection, 'GET', '/sims', http);
  if (status !== 200 || !Array.isArray(body.sims)) throw new ModuleError('smsgate_answer', SETTINGS.url, `GET /api/v1/sims answered HTTP ${status}`);
  if (connection.sim === null) return;
  const wanted = connection.sim;
  const sims = body.sims as { id?: unknown; imsi?: unknown; number?: unknown; label?: unknown }[];
  if (!sims.some((s) => [s.id, s.imsi, s.number, s.label].some((v) => v !== null && v !== undefined && String(v) === wanted))) {
    throw new ModuleError('smsgate_sim', SETTINGS.sim, `no SIM "${wanted.slice(0, 64)}" among the SIMs this token's user may send through`);
  }
}

export interface OutgoingMessage {
  /** BILLmanager's message id ("" when the input has none). */
  id: string;
  to: string;
  text: string;
  /** Why this message cannot be sent as given (no number, no text); the others still go. */
  problem: ModuleError | null;
}

const RECIPIENT = ['phone', 'to', 'destination', 'receiver', 'recipient'];
const TEXT = ['text', 'body', 'content'];

/** The first of `names` directly in `element` (or in its `<user>`), as text, or null. */
function firstText(element: XmlElement, names: string[]): string | null {
  for (const scope of [element, childNamed(element, 'user')]) {
    if (!scope) continue;
    for (const name of names) {
      const found = childNamed(scope, name);
      if (found) return textOf(found);
    }
  }
  return null;
}

/** The messages to send: every `<message>` that holds elements, or the document itself as one message. */
export function outgoingMessages(doc: XmlElement): OutgoingMessage[] {
  const containers = findAll(doc, 'message').filter((m) => m.children.some((c) => typeof c !== 'string'));
  const list = containers.length > 0 ? containers : [doc];
  return list.map((m) => {
    const id = (m.attributes.id ?? (childNamed(m, 'id') ? textOf(childNamed(m, 'id')!) : '')).trim();
    const to = firstText(m, RECIPIENT);
    // A text-only <message> in a document without containers is the text itself.
    const textOnly = containers.length === 0 ? childNamed(m, 'message') : null;
    const text = firstText(m, TEXT) ?? (textOnly ? textOf(textOnly) : null);
    let problem: ModuleError | null = null;
    if (text === null || text.trim() === '') problem = new ModuleError('value', 'text', `message ${id || '(no id)'} has no text`);
    if (to === null || to.trim() === '') problem = new ModuleError('value', 'phone', `message ${id || '(no id)'} has no phone number`);
    return { id, to: (to ?? '').trim(), text: text ?? '', problem };
  });
}

export interface Sent {
  id: string;
  smsgateId: number;
  state: string;
  duplicate: boolean;
}

/** Queues one message in smsgate; a refusal (4xx) is smsgate_refused naming the field smsgate named. */
export async function sendMessage(connection: Connection, message: OutgoingMessage, http: Fetch = fetch): Promise<Sent> {
  const request: Record<string, unknown> = { to: internationalRecipients(message.to), text: message.text };
  if (connection.sim !== null) request.sim = connection.sim;
  if (message.id !== '') request.msg_id = `billmanager-${message.id}`;
  const { status, body } = await api(connection, 'POST', '/messages', http, request);
  if (status === 200 || status === 201) {
    const first = (Array.isArray(body.messages) ? body.messages[0] : undefined) as { id?: unknown; state?: unknown } | undefined;
    if (typeof first?.id !== 'number') throw new ModuleError('smsgate_answer', SETTINGS.url, `POST /api/v1/messages answered HTTP ${status} without a message`);
    return { id: message.id, smsgateId: first.id, state: String(first.state), duplicate: body.duplicate === true };
  }
  if (status >= 500 || status === 429) {
    throw new ModuleError('smsgate_error', SETTINGS.url, `smsgate could not take message ${message.id || '(no id)'} now (HTTP ${status}): ${String(body.description ?? body.error ?? '')}`);
  }
  const field = typeof body.field === 'string' ? body.field : '';
  const object = field === 'to' ? 'phone' : field === 'sim' ? SETTINGS.sim : field;
  throw new ModuleError('smsgate_refused', object, `smsgate refused message ${message.id || '(no id)'} (HTTP ${status}): ${String(body.description ?? body.error ?? 'no reason given')}`);
}

/** The answer to `outgoing`: each message's result, and whether all went through. */
export async function outgoing(doc: XmlElement, http: Fetch = fetch): Promise<{ answer: XmlElement; ok: boolean }> {
  const connection = connectionOf(doc);
  const messages = outgoingMessages(doc);
  const answer = el('doc');
  let ok = true;
  for (const message of messages) {
    const attributes: Record<string, string> = message.id === '' ? {} : { id: message.id };
    try {
      if (message.problem) throw message.problem;
      const sent = await sendMessage(connection, message, http);
      answer.children.push(
        el('message', attributes, el('result', {}, 'ok'), el('smsgate_id', {}, String(sent.smsgateId)), el('state', {}, sent.state), ...(sent.duplicate ? [el('duplicate', {}, 'on')] : [])),
      );
    } catch (error) {
      // A gateway that is down, failing or refusing the token fails the whole run; a refused message only itself.
      if (!(error instanceof ModuleError) || (error.type !== 'smsgate_refused' && error.type !== 'value')) throw error;
      ok = false;
      answer.children.push(el('message', attributes, el('result', {}, 'error'), errorElement(error)));
    }
  }
  return { answer, ok };
}

function readInput(stdin: string): XmlElement {
  try {
    return parseXml(stdin);
  } catch (error) {
    if (error instanceof XmlError) throw new ModuleError('xml', '', `the input is not well-formed XML: ${error.message}`);
    throw error;
  }
}

/** Runs one command: what to print and the exit status. `stdin` is read only by the commands that take input. */
export async function run(argv: string[], stdin: () => Promise<string>, http: Fetch = fetch): Promise<{ stdout: string; stderr: string; code: number }> {
  const command = commandOf(argv);
  try {
    switch (command) {
      case 'features':
        return { stdout: serialiseXml(featuresDoc()), stderr: '', code: 0 };
      case 'formtune':
        return { stdout: serialiseXml(formtune(readInput(await stdin()))), stderr: '', code: 0 };
      case 'check_connection':
        await checkConnection(connectionOf(readInput(await stdin())), http);
        return { stdout: serialiseXml(el('doc')), stderr: '', code: 0 };
      case 'outgoing': {
        const { answer, ok } = await outgoing(readInput(await stdin()), http);
        const failed = answer.children.filter((c) => typeof c !== 'string' && childNamed(c, 'error')).length;
        return { stdout: serialiseXml(answer), stderr: ok ? '' : `${MODULE}: ${failed} message(s) refused by smsgate\n`, code: ok ? 0 : 1 };
      }
      default:
        throw new ModuleError('command', 'command', `unknown command "${command.slice(0, 40)}" (known: ${COMMANDS.join(', ')})`);
    }
  } catch (error) {
    if (!(error instanceof ModuleError)) throw error;
    return { stdout: serialiseXml(el('doc', {}, errorElement(error))), stderr: `${MODULE}: ${error.message}\n`, code: 1 };
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** True when this file is the program being run (directly, or through a symlink such as BILLmanager's gate). */
function isMain(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const result = await run(process.argv.slice(2), readStdin);
  process.stderr.write(result.stderr);
  process.stdout.write(result.stdout);
  process.exitCode = result.code;
}
