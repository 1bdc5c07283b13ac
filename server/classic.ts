/**
 * The two ways in that clients written for something else use, kept exactly as those clients expect:
 *
 * - The classic device endpoint, `/smsc.php` and `/send`, GET or POST (query or form), for devices that can only
 *   build a URL: `login`, `pass`, `tel` (comma-separated), `msg`, `flash`, `replacemessages_id`, `attempts`, and
 *   `intl=1` for clients that write international numbers without their "+" (Carbon Billing's "remove +"): there digits
 *   that make a valid international number are read as one, never as national. The answer is JSON with `success` and a
 *   `description` devices parse: 200 "Saved to queue" with the message ids, 400 for a missing or invalid phone or
 *   message, 403 without credentials, 401 with wrong ones (429 after too many).
 * - An operator-style A2P endpoint, `POST /sms/v1/sms` with HTTP Basic and a JSON body
 *   `{"from","to","message","callback_url","msg_id"}` (`to` one number, international, with or without "+"), so a
 *   client written for an operator's HTTPS SMS API works by changing the host. It answers
 *   `{"result":{"status":{"code":0,"description":"ok"},"msg_id":…}}`; the status goes to `callback_url`.
 *   A GSM modem cannot set a sender name: `from` picks the SIM whose number or label it names, and is otherwise
 *   ignored.
 */
import { Router, type Request, type Response } from 'express';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import { enqueueRequest } from './api.js';
import { AuthError } from './auth.js';
import { type Services, clientAddress, errorAnswer, principalOf, rawParam } from './http.js';
import { RecipientsError, internationalRecipients, optBool, optString } from './requests.js';

/** The classic endpoint's descriptions, which devices compare against. */
export const CLASSIC = {
  saved: 'Saved to queue',
  noCredentials: 'Login and password required',
  wrongCredentials: 'Wrong login or password',
  emptyPhone: 'Empty phone number',
  invalidPhone: 'Invalid phone number',
  emptyMessage: 'Empty message',
} as const;

function classicParams(req: Request): Record<string, unknown> {
  const body = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Record<string, unknown>) : {};
  return { ...(req.query as Record<string, unknown>), ...body };
}

/** The classic endpoint's paths. */
export const CLASSIC_PATHS = ['/smsc.php', '/send'];

/** Answers an error in the classic shape: success false, a description, and the field for those who read it. */
export function classicError(res: Response, error: unknown): void {
  const answer = errorAnswer(error);
  if (!answer) throw error;
  let description = String(answer.body.description);
  if (error instanceof AuthError && error.status === 401) description = CLASSIC.wrongCredentials;
  if (error instanceof AuthError && error.status === 403) description = CLASSIC.noCredentials;
  if (error instanceof RecipientsError) description = error.invalid.length === 0 ? CLASSIC.emptyPhone : `${CLASSIC.invalidPhone}: ${error.message}`;
  if (error instanceof SmsgateError && error.field === 'msg' && /missing or empty/.test(error.message)) description = CLASSIC.emptyMessage;
  for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
  res.status(answer.status).json({ success: false, description, error: answer.body.error, field: answer.body.field ?? null, ...(error instanceof RecipientsError ? { invalid: error.invalid } : {}) });
}

/**
 * The recipients of a classic request: one string, comma-separated (a repeated tel= is a client's mistake, not a
 * list). A "+" that a device did not encode is a plus where a number starts, and a space inside one.
 */
function classicRecipients(req: Request, parsed: unknown): string {
  const given = optString(parsed, 'tel');
  const raw = rawParam(req, 'tel');
  // A JSON body has no "+" to lose.
  if (raw === undefined) return given ?? '';
  return raw
    .split(',')
    .map((item) => item.trim().replace(/(?!^)\+/g, ' '))
    .join(',');
}

export function classicRouter(services: Services): Router {
  const router = Router();
  const handler = async (req: Request, res: Response) => {
    try {
      const p = classicParams(req);
      const login = optString(p.login, 'login');
      const pass = optString(p.pass, 'pass');
      let user;
      if (login !== undefined && login !== '' && pass !== undefined) user = (await services.auth.password(login, pass, clientAddress(req))).user;
      else if (req.headers.authorization) user = (await principalOf(req, services))!.user;
      else throw new AuthError(403, CLASSIC.noCredentials);
      const tel = classicRecipients(req, p.tel);
      const { messages, duplicate, warnings } = await enqueueRequest(
        services,
        user,
        {
          to: optBool(p.intl, 'intl') ? internationalRecipients(tel) : tel,
          text: p.msg,
          flash: p.flash,
          replaceId: p.replacemessages_id,
          attempts: p.attempts,
          msgId: p.msg_id,
          fields: { to: 'tel', text: 'msg', replaceId: 'replacemessages_id', msgId: 'msg_id' },
        },
        'classic',
      );
      // ids in the order of the numbers (repeats of a number are sent once): `numbers` says which is which.
      res.json({ success: true, description: CLASSIC.saved, ids: messages.map((m) => m.id), numbers: messages.map((m) => m.recipient), duplicate, warnings });
    } catch (error) {
      classicError(res, error);
    }
  };
  router.get(CLASSIC_PATHS, handler);
  router.post(CLASSIC_PATHS, handler);
  return router;
}

function a2pError(res: Response, error: unknown): void {
  const answer = errorAnswer(error);
  if (!answer) throw error;
  if (answer.status === 401) res.setHeader('WWW-Authenticate', 'Basic realm="smsgate", charset="UTF-8"');
  for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
  res.status(answer.status).json({ result: { status: { code: answer.status, description: String(answer.body.description) }, error: answer.body.error, field: answer.body.field ?? null } });
}

/** An A2P `to`: one number; international digits without "+" (as operators' APIs take them) get one. */
function a2pRecipient(value: unknown): unknown {
  if (Array.isArray(value)) throw new SmsgateError(ErrorCodes.BadNumber, 'to must be one phone number', 'to');
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text === 'string' && /^\d{11,15}$/.test(text.trim())) return `+${text.trim()}`;
  if (typeof text === 'string' && /[,;\n]/.test(text)) throw new SmsgateError(ErrorCodes.BadNumber, 'to must be one phone number', 'to');
  return text;
}

export function a2pRouter(services: Services): Router {
  const router = Router();
  router.post('/sms/v1/sms', async (req, res) => {
    try {
      const principal = req.headers.authorization?.match(/^\s*basic\s/i) ? await principalOf(req, services) : null;
      if (!principal) throw new AuthError(401, 'HTTP Basic authentication required');
      const body: unknown = req.body;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new SmsgateError(ErrorCodes.BadMessage, 'the body must be a JSON object', 'body');
      const b = body as Record<string, unknown>;
      const from = optString(b.from, 'from');
      let sim: string | undefined;
      if (from) {
        const sims = principal.user.role === 'admin' ? await services.storage.listSims() : await services.storage.simsOfUser(principal.user.id);
        const digits = from.replace(/^\+/, '');
        sim = sims.find((s) => s.label === from || (s.number !== null && s.number.replace(/^\+/, '') === digits))?.id.toString();
      }
      const { messages } = await enqueueRequest(
        services,
        principal.user,
        { to: a2pRecipient(b.to), text: b.message, callbackUrl: b.callback_url, msgId: b.msg_id, sim, fields: { text: 'message', callbackUrl: 'callback_url', msgId: 'msg_id' } },
        'a2p',
      );
      const m = messages[0]!;
      res.json({ result: { status: { code: 0, description: 'ok' }, msg_id: m.clientMsgId ?? String(m.id), id: m.id, state: m.state, parts: m.parts } });
    } catch (error) {
      a2pError(res, error);
    }
  });
  return router;
}
