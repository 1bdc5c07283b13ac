/**
 * HTTP plumbing shared by every route: body parsers that refuse invalid UTF-8, the credentials of a request (Bearer
 * token, HTTP Basic, the classic login/pass parameters, the web session cookie), and the mapping of errors to
 * status codes and JSON bodies that name the field at fault.
 */
import { parse as parseCookie, serialize as serializeCookie } from 'cookie';
import express, { type Request, type RequestHandler, type Response } from 'express';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import type { BalanceChecker } from '../scheduler/balance.js';
import type { Dispatcher } from '../scheduler/dispatcher.js';
import type { Storage, User } from '../sql/storage.js';
import { AuthError, type Authenticator, type Principal } from './auth.js';
import type { DeliveryWorker } from './deliveries.js';
import type { CallbackWorker } from './callbacks.js';
import type { Config } from './config.js';
import type { Metrics } from './metrics.js';
import { RecipientsError, bad } from './requests.js';

/** What the routes work with. */
export interface Services {
  storage: Storage;
  config: Config;
  auth: Authenticator;
  dispatcher?: Dispatcher;
  callbacks?: CallbackWorker;
  deliveries?: DeliveryWorker;
  balance?: BalanceChecker;
  metrics?: Metrics;
}

export const SESSION_COOKIE = 'smsgate_session';
/** The header the web pages send with every request that changes something (a cross-site form cannot). */
export const CSRF_HEADER = 'x-requested-with';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Throws when a percent-encoded string (query string, form body) does not decode to valid UTF-8. */
export function checkPercentEncoding(encoded: string, where: string): void {
  for (const pair of encoded.split('&')) {
    try {
      decodeURIComponent(pair.replace(/\+/g, ' '));
    } catch {
      const name = pair.split('=')[0] ?? '';
      let field = name;
      try {
        field = decodeURIComponent(name);
      } catch {
        field = where;
      }
      throw new SmsgateError(ErrorCodes.BadMessage, `${where} parameter "${field.slice(0, 40)}" is not valid UTF-8 percent-encoding`, field.slice(0, 40));
    }
  }
}

const LIMIT = '4mb';

/** JSON and form bodies, each checked to be valid UTF-8 before it is parsed; the query string too. */
export function bodyParsers(): RequestHandler[] {
  return [
    (req, _res, next) => {
      const q = req.originalUrl.indexOf('?');
      if (q >= 0) checkPercentEncoding(req.originalUrl.slice(q + 1), 'query');
      next();
    },
    express.json({
      limit: LIMIT,
      strict: false,
      verify: (_req, _res, buf) => {
        try {
          strictUtf8.decode(buf);
        } catch {
          throw new SmsgateError(ErrorCodes.BadMessage, 'the body is not valid UTF-8', 'body');
        }
      },
    }),
    express.urlencoded({
      extended: false,
      limit: LIMIT,
      parameterLimit: 1000,
      verify: (req, _res, buf) => {
        const raw = buf.toString('latin1');
        checkPercentEncoding(raw, 'form');
        (req as Request & { rawForm?: string }).rawForm = raw;
      },
    }),
  ];
}

/** The client's address (the proxy's X-Forwarded-For when trust_proxy is set). */
export function clientAddress(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

/** Credentials from Basic, Bearer or the session cookie; null when the request carries none. */
export async function principalOf(req: Request, services: Services): Promise<Principal | null> {
  const header = req.headers.authorization;
  const address = clientAddress(req);
  if (header) {
    const [scheme, value = ''] = header.trim().split(/\s+/, 2);
    if (/^bearer$/i.test(scheme ?? '')) return services.auth.token(value);
    if (/^basic$/i.test(scheme ?? '')) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new AuthError(401, 'malformed Basic credentials');
      return services.auth.password(decoded.slice(0, colon), decoded.slice(colon + 1), address);
    }
    throw new AuthError(401, `unsupported authorization scheme "${(scheme ?? '').slice(0, 20)}" (use Bearer or Basic)`);
  }
  const session = sessionToken(req);
  if (session) {
    if (!['GET', 'HEAD'].includes(req.method) && req.headers[CSRF_HEADER] !== 'smsgate') {
      throw new AuthError(403, `a request from the web pages must carry the header X-Requested-With: smsgate`);
    }
    return services.auth.token(session, 'session');
  }
  return null;
}

export function sessionToken(req: Request): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  return parseCookie(header)[SESSION_COOKIE] ?? null;
}

export function setSessionCookie(req: Request, res: Response, token: string | null, expiresAt = 0): void {
  res.append(
    'Set-Cookie',
    serializeCookie(SESSION_COOKIE, token ?? '', {
      httpOnly: true,
      sameSite: 'strict',
      secure: req.secure,
      path: '/',
      expires: new Date(token ? expiresAt : 0),
    }),
  );
}

/** The authenticated user of a request, or 401. */
export async function requireUser(req: Request, services: Services): Promise<Principal> {
  const principal = await principalOf(req, services);
  if (!principal) throw new AuthError(401, 'credentials required: Authorization: Bearer <token>, HTTP Basic, or a web login');
  return principal;
}

export function requireAdmin(user: User): void {
  if (user.role !== 'admin') throw new AuthError(403, 'this needs an admin');
}

/** An id in a path; 404 for anything that is not a positive integer. */
export function pathId(value: unknown, what: string): number {
  const n = typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new SmsgateError(ErrorCodes.NotFound, `no ${what} "${String(value).slice(0, 40)}"`, 'id');
  return n;
}

/** A JSON object body (or {} for none); 400 for an array or a scalar. */
export function objectBody(req: Request): Record<string, unknown> {
  const body: unknown = req.body;
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw bad('the body must be a JSON object', 'body');
  return body as Record<string, unknown>;
}

/** HTTP statuses of the error codes that are not the request's fault (400 for the rest). */
const STATUS_OF: Partial<Record<string, number>> = {
  [ErrorCodes.NotFound]: 404,
  [ErrorCodes.Conflict]: 409,
  [ErrorCodes.NoChannel]: 503,
  [ErrorCodes.AtTimeout]: 504,
  [ErrorCodes.AtError]: 502,
  [ErrorCodes.AtCme]: 502,
  [ErrorCodes.AtCms]: 502,
  [ErrorCodes.AtBadAnswer]: 502,
  [ErrorCodes.PortClosed]: 502,
  [ErrorCodes.PortOpen]: 502,
  [ErrorCodes.PortLocked]: 502,
  [ErrorCodes.SimLocked]: 502,
};

/** Status and JSON body for an error; `undefined` for one that is not the client's fault (a 500). */
export function errorAnswer(error: unknown): { status: number; body: Record<string, unknown>; headers?: Record<string, string> } | undefined {
  if (error instanceof AuthError) {
    const code = error.status === 429 ? 'RATE_LIMITED' : error.status === 403 ? 'FORBIDDEN' : 'UNAUTHORIZED';
    return {
      status: error.status,
      body: { error: code, description: error.message },
      headers: error.retryAfterS ? { 'Retry-After': String(error.retryAfterS) } : undefined,
    };
  }
  if (error instanceof SmsgateError) {
    const status = STATUS_OF[error.code] ?? 400;
    const body: Record<string, unknown> = { error: error.code, field: error.field ?? null, description: error.message };
    // A modem's own error code, with its meaning in the description (the console's USSD, a balance check).
    if (error.modemCode !== undefined) body.modem_code = error.modemCode;
    if (error instanceof RecipientsError) body.invalid = error.invalid;
    return { status, body };
  }
  // body-parser's own errors carry a status and a type.
  const e = error as { status?: number; type?: string; message?: string };
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    const description =
      e.type === 'entity.parse.failed'
        ? 'the body is not valid JSON'
        : e.type === 'entity.too.large'
          ? `the body is larger than ${LIMIT}`
          : e.type === 'charset.unsupported' || e.type === 'encoding.unsupported'
            ? `${e.message ?? 'unsupported charset'} (send UTF-8)`
            : (e.message ?? 'bad request');
    return { status: e.status, body: { error: 'BAD_REQUEST', field: 'body', description } };
  }
  return undefined;
}

/**
 * A parameter as it was written, percent-decoded but with "+" kept: devices write "tel=+7916…" unencoded, and
 * form decoding would turn that "+" into a space. From the form body when it has the parameter, else the query.
 */
export function rawParam(req: Request, name: string): string | undefined {
  const q = req.originalUrl.indexOf('?');
  for (const source of [(req as Request & { rawForm?: string }).rawForm, q >= 0 ? req.originalUrl.slice(q + 1) : undefined]) {
    if (!source) continue;
    const found = source
      .split('&')
      .map((pair) => pair.split('='))
      .filter(([key]) => key !== undefined && decodeURIComponent(key.replace(/\+/g, ' ')) === name);
    if (found.length > 0) return decodeURIComponent(found[0]!.slice(1).join('='));
  }
  return undefined;
}
