/**
 * The JSON API under /api/v1 (described in /api/v1/openapi.json): messages (send, look up, list, cancel), message
 * templates (keep, preview, send with), SIMs and channels, and for admins SIM settings, users and tokens; plus the
 * web pages' session (login and logout).
 * Routes stay thin: read and check the parameters, call storage or the dispatcher, answer with the shared views.
 *
 * Templates: a user keeps their own; shared ones (owner 0) are made, changed and deleted by admins and used by
 * everyone; admins see and manage every template. To a user, another user's template reads as one that does not
 * exist (404), and a shared one can be read but not changed (403). A body is checked by the template parser when it
 * is saved, so a stored template always renders (or names the variable it lacks).
 */
import { Router } from 'express';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import { billingPeriod, parseClock } from '../scheduler/rules.js';
import {
  MESSAGE_STATES,
  type Message,
  type MessageState,
  type Role,
  SHARED_TEMPLATE_OWNER,
  type Sim,
  type SimSettings,
  type Storage,
  type Template,
  type User,
} from '../sql/storage.js';
import { AuthError, hashPassword, newToken, passwordProblem, tokenHash } from './auth.js';
import type { Config } from './config.js';
import { type Services, clientAddress, objectBody, pathId, requireAdmin, requireUser, sessionToken, setSessionCookie } from './http.js';
import { inboxRoutes } from './api-inbox.js';
import { openApiDocument } from './openapi.js';
import {
  bad,
  findSim,
  iso,
  mayUseTemplate,
  measureText,
  messageView,
  optBool,
  optInt,
  optString,
  optTime,
  parseStoredTemplate,
  prepareSend,
  reqString,
  resolveTemplate,
  simMap,
  textProblem,
} from './requests.js';
import { type ParsedTemplate, parseTemplate, readVars, renderTemplate, templateVariables } from './templates.js';


/** Stores a prepared request and wakes the dispatcher; the answer every send endpoint builds on. */
export async function enqueueRequest(
  services: Services,
  user: User,
  request: Parameters<typeof prepareSend>[0],
  source: string,
): Promise<{ messages: Message[]; duplicate: boolean; warnings: string[]; template: Template | null }> {
  const prepared = await prepareSend(request, user, source, services.config.send, services.storage);
  const result = await services.storage.enqueue(prepared.items, Date.now(), { requestHash: prepared.requestHash });
  if (!result.duplicate) services.dispatcher?.wake();
  return { ...result, warnings: prepared.warnings, template: prepared.template };
}

/** A template name: 1 to 64 printable characters on one line, no spaces at either end, not all digits (an id). */
export const TEMPLATE_NAME_MAX = 64;

export function checkTemplateName(name: string): void {
  const length = [...name].length;
  if (length === 0 || length > TEMPLATE_NAME_MAX) throw bad(`a template name has 1 to ${TEMPLATE_NAME_MAX} characters`, 'name');
  if (name.trim() !== name || /[\t\r\n]/.test(name) || textProblem(name)) throw bad('a template name is one line of printable characters, without spaces at either end', 'name');
  if (/^\d+$/.test(name)) throw bad('a template name cannot be all digits (a number names a template by its id)', 'name');
}

/** The longest template body: twice the longest text (markup and conditional branches take room). */
export function templateBodyMax(config: Config['send']): number {
  return config.maxTextLength * 2;
}

/** Checks a body to be saved or previewed (length, printable, the template syntax) and parses it; errors name `body`. */
export function checkTemplateBody(value: unknown, config: Config['send']): ParsedTemplate {
  const body = reqString(value, 'body', 'the template body');
  const length = [...body].length;
  const max = templateBodyMax(config);
  if (length > max) throw bad(`the template body is too long: ${length} characters (at most ${max})`, 'body');
  const problem = textProblem(body);
  if (problem) throw bad(`the template body ${problem}`, 'body');
  return parseTemplate(body);
}

function templateView(t: Template): Record<string, unknown> {
  let variables: string[] = [];
  try {
    variables = templateVariables(parseTemplate(t.body));
  } catch {
    // Bodies are checked when saved; one written otherwise shows no variables (and says why when used).
  }
  const shared = t.userId === SHARED_TEMPLATE_OWNER;
  return { id: t.id, name: t.name, body: t.body, shared, user_id: shared ? null : t.userId, variables, created_at: iso(t.createdAt), updated_at: iso(t.updatedAt) };
}

/** A template the caller may change: their own, or any for an admin; a shared one a user sees is 403, another's 404. */
async function ownTemplate(storage: Storage, user: User, idText: unknown): Promise<Template> {
  const id = pathId(idText, 'template');
  const t = await storage.getTemplate(id);
  if (!t || !mayUseTemplate(user, t)) throw new SmsgateError(ErrorCodes.NotFound, `no template ${id}`, 'id');
  if (user.role !== 'admin' && t.userId !== user.id) throw new AuthError(403, 'only admins change shared templates');
  return t;
}

function refuseUnknown(body: Record<string, unknown>, known: string[]): void {
  for (const key of Object.keys(body)) if (!known.includes(key)) throw bad(`unknown field "${key.slice(0, 40)}" (known: ${known.join(', ')})`, key.slice(0, 40));
}

function userView(u: User): Record<string, unknown> {
  return { id: u.id, name: u.name, role: u.role, disabled: u.disabled, report_default: u.reportDefault, created_at: iso(u.createdAt) };
}

/** The SIMs a user may see and send through: their own, or every SIM for an admin. */
async function visibleSims(storage: Storage, user: User): Promise<Sim[]> {
  return user.role === 'admin' ? storage.listSims() : storage.simsOfUser(user.id);
}

async function simView(storage: Storage, sim: Sim, forAdmin: boolean, now: number): Promise<Record<string, unknown>> {
  const period = billingPeriod(sim.billingDay, now);
  const usage = await storage.usage(sim.id, period);
  const view: Record<string, unknown> = {
    id: sim.id,
    imsi: sim.imsi,
    iccid: sim.iccid,
    number: sim.number,
    label: sim.label,
    operator: sim.operator,
    enabled: sim.enabled,
    monthly_quota: sim.monthlyQuota,
    billing_day: sim.billingDay,
    period,
    quota_used: usage.used,
    quota_reserved: usage.reserved,
    quota_left: sim.monthlyQuota === null ? null : Math.max(0, sim.monthlyQuota - usage.used - usage.reserved),
    pacing_ms: sim.pacingMs,
    quiet_start: sim.quietStart,
    quiet_end: sim.quietEnd,
    balance: sim.balance,
    balance_at: iso(sim.balanceAt),
    balance_low: sim.balanceLow,
    paused_reason: sim.pausedReason,
    last_sent_at: iso(sim.lastSentAt),
  };
  if (forAdmin) {
    view.owners = await storage.simOwners(sim.id);
    view.balance_ussd = sim.balanceUssd;
    view.balance_pattern = sim.balancePattern;
    view.balance_pause = sim.balancePause;
  }
  return view;
}

/** Reads a message the caller may see (their own; any for an admin), or 404. */
async function ownMessage(storage: Storage, user: User, idText: unknown): Promise<Message> {
  const id = pathId(idText, 'message');
  const m = await storage.getMessage(id);
  if (!m || (user.role !== 'admin' && m.userId !== user.id)) throw new SmsgateError(ErrorCodes.NotFound, `no message ${id}`, 'id');
  return m;
}

const USER_NAME = /^[A-Za-z0-9._@-]{1,64}$/;

export function checkUserName(name: string): void {
  if (!USER_NAME.test(name)) throw bad('a user name has 1 to 64 letters, digits, dots, dashes, underscores or @', 'name');
}

function parseRole(value: unknown): Role | undefined {
  const role = optString(value, 'role');
  if (role === undefined) return undefined;
  if (role !== 'admin' && role !== 'user') throw bad('role must be "admin" or "user"', 'role');
  return role;
}

/** Refuses to leave the gateway without an enabled admin (`field` is named in the error). */
export async function keepAnAdmin(storage: Storage, target: User, patch: { role?: Role; disabled?: boolean }, field = 'role'): Promise<void> {
  const losesAdmin = target.role === 'admin' && !target.disabled && (patch.role === 'user' || patch.disabled === true);
  if (!losesAdmin) return;
  const others = (await storage.listUsers()).filter((u) => u.id !== target.id && u.role === 'admin' && !u.disabled);
  if (others.length === 0) throw new SmsgateError(ErrorCodes.Conflict, `${target.name} is the last enabled admin`, field);
}

/** Reads SIM settings from a PATCH body (also the CLI's `sim set`, its flags turned into such a body). */
/** The balance settings of a SIM patch: code, pattern (a valid regular expression), threshold, pause. */
function balanceSettings(body: Record<string, unknown>): SimSettings {
  const settings: SimSettings = {};
  const text = (key: string) => (body[key] === null || body[key] === '' ? null : optString(body[key], key)!);
  if ('balance_ussd' in body) {
    const code = text('balance_ussd');
    if (code !== null && !/^[0-9*#+]{1,160}$/.test(code)) throw bad('balance_ussd must be a USSD code (digits, * and #, e.g. *100#) or null', 'balance_ussd');
    settings.balanceUssd = code;
  }
  if ('balance_pattern' in body) {
    const pattern = text('balance_pattern');
    if (pattern !== null) {
      if (pattern.length > 500) throw bad('balance_pattern has at most 500 characters', 'balance_pattern');
      try {
        new RegExp(pattern, 'iu');
      } catch (error) {
        throw bad(`balance_pattern is not a valid regular expression: ${(error as Error).message}`, 'balance_pattern');
      }
    }
    settings.balancePattern = pattern;
  }
  if ('balance_low' in body) {
    const low = typeof body.balance_low === 'number' ? String(body.balance_low) : text('balance_low');
    if (low !== null && !/^-?\d{1,12}([.,]\d{1,2})?$/.test(low)) throw bad('balance_low must be an amount such as 50 or 12.50, or null', 'balance_low');
    settings.balanceLow = low === null ? null : low.replace(',', '.');
  }
  if ('balance_pause' in body) settings.balancePause = optBool(body.balance_pause, 'balance_pause');
  return settings;
}

export async function simPatch(storage: Storage, body: Record<string, unknown>, current: Sim): Promise<{ settings: SimSettings; owners?: number[] }> {
  const known = ['label', 'monthly_quota', 'billing_day', 'pacing_ms', 'quiet_start', 'quiet_end', 'enabled', 'owners', 'balance_ussd', 'balance_pattern', 'balance_low', 'balance_pause'];
  for (const key of Object.keys(body)) if (!known.includes(key)) throw bad(`unknown field "${key.slice(0, 40)}" (known: ${known.join(', ')})`, key.slice(0, 40));
  const settings: SimSettings = {};
  if ('label' in body) {
    const label = body.label === null ? null : optString(body.label, 'label');
    if (label !== null && label !== undefined && label.length > 64) throw bad('label has at most 64 characters', 'label');
    settings.label = label || null;
  }
  if ('monthly_quota' in body) settings.monthlyQuota = body.monthly_quota === null ? null : (optInt(body.monthly_quota, 'monthly_quota', 0, 10_000_000) ?? null);
  if ('billing_day' in body) settings.billingDay = optInt(body.billing_day, 'billing_day', 1, 28);
  if ('pacing_ms' in body) settings.pacingMs = optInt(body.pacing_ms, 'pacing_ms', 0, 86_400_000);
  for (const key of ['quiet_start', 'quiet_end'] as const) {
    if (!(key in body)) continue;
    const value = body[key] === null || body[key] === '' ? null : optString(body[key], key)!;
    if (value !== null && parseClock(value) === null) throw bad(`${key} must be a time "HH:MM" (24 h) or null`, key);
    settings[key === 'quiet_start' ? 'quietStart' : 'quietEnd'] = value;
  }
  if ('enabled' in body) {
    settings.enabled = optBool(body.enabled, 'enabled');
    // Enabled or paused by hand: no longer the gateway's doing (a save that leaves it as it is changes nothing).
    if (settings.enabled !== undefined && settings.enabled !== current.enabled) settings.pausedReason = null;
  }
  Object.assign(settings, balanceSettings(body));
  let owners: number[] | undefined;
  if ('owners' in body) {
    if (!Array.isArray(body.owners)) throw bad('owners must be an array of user ids or names', 'owners');
    owners = [];
    // A number is a user id, a string a user name (names may be all digits).
    for (const ref of body.owners as unknown[]) {
      let user: User | null = null;
      if (typeof ref === 'number' && Number.isSafeInteger(ref)) user = await storage.getUser(ref);
      else if (typeof ref === 'string') user = await storage.getUserByName(ref);
      else throw bad('owners must be an array of user ids (numbers) or names (strings)', 'owners');
      if (!user) throw new SmsgateError(ErrorCodes.NotFound, `no user ${JSON.stringify(ref).slice(0, 64)}`, 'owners');
      owners.push(user.id);
    }
  }
  return { settings, owners };
}

export function apiRouter(services: Services): Router {
  const { storage, config, auth } = services;
  const router = Router();

  router.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });

  // ---- the web pages' session

  router.post('/session', async (req, res) => {
    // JSON only: a cross-site form cannot send it, so no page elsewhere can log a visitor in as someone else.
    if (!req.is('application/json')) throw bad('send the login as JSON (Content-Type: application/json)', 'body');
    const body = objectBody(req);
    const login = reqString(body.login ?? body.name, 'login', 'the login');
    const password = reqString(body.password, 'password', 'the password');
    const { user } = await auth.password(login, password, clientAddress(req));
    const session = await auth.startSession(user);
    setSessionCookie(req, res, session.token, session.expiresAt);
    res.json({ user: userView(user), expires_at: iso(session.expiresAt) });
  });

  router.get('/session', async (req, res) => {
    const { user, via } = await requireUser(req, services);
    res.json({ user: userView(user), via });
  });

  router.delete('/session', async (req, res) => {
    const token = sessionToken(req);
    if (token) await auth.endSession(token);
    setSessionCookie(req, res, null);
    res.json({ ok: true });
  });

  // ---- messages

  router.post('/messages', async (req, res) => {
    const { user, via } = await requireUser(req, services);
    const b = objectBody(req);
    const known = ['to', 'text', 'template', 'vars', 'flash', 'replace_id', 'report', 'attempts', 'priority', 'send_at', 'sim', 'msg_id', 'callback_url'];
    refuseUnknown(b, known);
    const result = await enqueueRequest(
      services,
      user,
      {
        to: b.to,
        text: b.text,
        template: b.template,
        vars: b.vars,
        flash: b.flash,
        replaceId: b.replace_id,
        report: b.report,
        attempts: b.attempts,
        priority: b.priority,
        sendAt: b.send_at,
        sim: b.sim,
        msgId: b.msg_id,
        callbackUrl: b.callback_url,
        fields: { replaceId: 'replace_id', sendAt: 'send_at', msgId: 'msg_id', callbackUrl: 'callback_url' },
      },
      via === 'session' ? 'web' : 'api',
    );
    const sims = await simMap(storage);
    const answer: Record<string, unknown> = { duplicate: result.duplicate, warnings: result.warnings, messages: result.messages.map((m) => messageView(m, sims)) };
    if (result.template) answer.template = { id: result.template.id, name: result.template.name };
    res.status(result.duplicate ? 200 : 201).json(answer);
  });

  router.get('/messages/:id', async (req, res) => {
    const { user } = await requireUser(req, services);
    const m = await ownMessage(storage, user, req.params.id);
    res.json(messageView(m, await simMap(storage)));
  });

  router.get('/messages', async (req, res) => {
    const { user } = await requireUser(req, services);
    const q = req.query;
    const state = optString(q.state, 'state');
    if (state !== undefined && !MESSAGE_STATES.includes(state as MessageState)) throw bad(`state must be one of ${MESSAGE_STATES.join(', ')}`, 'state');
    // One more than the page is read to know whether another page follows (storage reads at most 1000).
    const limit = optInt(q.limit, 'limit', 1, 500) ?? 50;
    let userId: number | undefined = user.id;
    if (user.role === 'admin') userId = optInt(q.user_id, 'user_id', 1, Number.MAX_SAFE_INTEGER);
    const to = optString(q.to, 'to');
    const messages = await storage.listMessages({
      userId,
      state: state as MessageState | undefined,
      recipientContains: to?.replace(/[\s\-().]/g, '') || undefined,
      since: optTime(q.since, 'since'),
      until: optTime(q.until, 'until'),
      beforeId: optInt(q.before, 'before', 1, Number.MAX_SAFE_INTEGER),
      limit: limit + 1,
    });
    const page = messages.slice(0, limit);
    const sims = await simMap(storage);
    res.json({ messages: page.map((m) => messageView(m, sims)), next_before: messages.length > limit ? page[page.length - 1]!.id : null });
  });

  router.delete('/messages/:id', async (req, res) => {
    const { user } = await requireUser(req, services);
    const m = await ownMessage(storage, user, req.params.id);
    if (!(await storage.cancelMessage(m.id))) {
      const now = (await storage.getMessage(m.id))!;
      throw new SmsgateError(ErrorCodes.Conflict, `message ${m.id} is ${now.state}${now.state === 'queued' ? ' and about to be sent' : ''}: only a queued message can be cancelled`, 'id');
    }
    res.json(messageView((await storage.getMessage(m.id))!, await simMap(storage)));
  });

  // ---- templates

  router.get('/templates', async (req, res) => {
    const { user } = await requireUser(req, services);
    const templates = await storage.listTemplates(user.role === 'admin' ? undefined : user.id);
    res.json({ templates: templates.map(templateView) });
  });

  router.post('/templates', async (req, res) => {
    const { user } = await requireUser(req, services);
    const body = objectBody(req);
    refuseUnknown(body, ['name', 'body', 'shared']);
    const name = reqString(body.name, 'name', 'the name');
    checkTemplateName(name);
    checkTemplateBody(body.body, config.send);
    const shared = optBool(body.shared, 'shared') ?? false;
    if (shared && user.role !== 'admin') throw new AuthError(403, 'only admins create shared templates');
    const created = await storage.createTemplate({ userId: shared ? SHARED_TEMPLATE_OWNER : user.id, name, body: body.body as string });
    await storage.logEvent({ kind: 'template.created', detail: { by: user.name, id: created.id, name, shared } });
    res.status(201).json(templateView(created));
  });

  // The text a template (stored, or a body not saved yet) gives with these vars, measured as a send measures it.
  router.post('/templates/preview', async (req, res) => {
    const { user } = await requireUser(req, services);
    const b = objectBody(req);
    refuseUnknown(b, ['template', 'body', 'vars']);
    const given = (v: unknown) => v !== undefined && v !== null;
    if (given(b.template) && given(b.body)) throw bad('give either template (a name or id) or body, not both', 'body');
    let parsed: ParsedTemplate;
    let template: Template | null = null;
    if (given(b.template)) {
      template = await resolveTemplate(b.template, user, storage, 'template');
      parsed = parseStoredTemplate(template, 'template');
    } else if (given(b.body)) parsed = checkTemplateBody(b.body, config.send);
    else throw bad('give a template (a name or id) or a body to preview', 'template');
    const vars = readVars(b.vars, 'vars');
    const text = renderTemplate(parsed, vars);
    const count = measureText(text, template ? 'template' : 'body', config.send, 'the rendered text');
    res.json({
      text,
      encoding: count.encoding,
      parts: count.parts,
      characters: [...text].length,
      remaining: count.remaining,
      variables: templateVariables(parsed),
      template: template ? { id: template.id, name: template.name } : null,
    });
  });

  router.get('/templates/:id', async (req, res) => {
    const { user } = await requireUser(req, services);
    const id = pathId(req.params.id, 'template');
    const t = await storage.getTemplate(id);
    if (!t || !mayUseTemplate(user, t)) throw new SmsgateError(ErrorCodes.NotFound, `no template ${id}`, 'id');
    res.json(templateView(t));
  });

  router.put('/templates/:id', async (req, res) => {
    const { user } = await requireUser(req, services);
    const t = await ownTemplate(storage, user, req.params.id);
    const body = objectBody(req);
    refuseUnknown(body, ['name', 'body']);
    const patch: { name?: string; body?: string } = {};
    if (body.name !== undefined) {
      patch.name = reqString(body.name, 'name', 'the name');
      checkTemplateName(patch.name);
    }
    if (body.body !== undefined) {
      checkTemplateBody(body.body, config.send);
      patch.body = body.body as string;
    }
    if (patch.name === undefined && patch.body === undefined) throw bad('give the new name or body (or both)', 'body');
    const updated = await storage.updateTemplate(t.id, patch);
    await storage.logEvent({ kind: 'template.updated', detail: { by: user.name, id: t.id, name: updated.name } });
    res.json(templateView(updated));
  });

  router.delete('/templates/:id', async (req, res) => {
    const { user } = await requireUser(req, services);
    const t = await ownTemplate(storage, user, req.params.id);
    await storage.deleteTemplate(t.id);
    await storage.logEvent({ kind: 'template.deleted', detail: { by: user.name, id: t.id, name: t.name } });
    res.json({ id: t.id, deleted: true });
  });

  // ---- SIMs and channels

  router.get('/sims', async (req, res) => {
    const { user } = await requireUser(req, services);
    const now = Date.now();
    const sims = await visibleSims(storage, user);
    res.json({ sims: await Promise.all(sims.map((s) => simView(storage, s, user.role === 'admin', now))) });
  });

  router.patch('/sims/:id', async (req, res) => {
    const { user } = await requireUser(req, services);
    requireAdmin(user);
    const sim = findSim(await storage.listSims(), req.params.id, 'id');
    const { settings, owners } = await simPatch(storage, objectBody(req), sim);
    const updated = await storage.updateSim(sim.id, settings);
    if (owners) await storage.setSimOwners(sim.id, owners);
    await storage.logEvent({ kind: 'sim.settings', simId: sim.id, detail: { by: user.name, settings, owners } });
    await services.dispatcher?.settingsChanged();
    res.json(await simView(storage, updated, true, Date.now()));
  });

  router.get('/channels', async (req, res) => {
    const { user } = await requireUser(req, services);
    const now = Date.now();
    const sims = new Map((await visibleSims(storage, user)).map((s) => [s.id, s]));
    const live = new Map((services.dispatcher?.channels ?? []).map((slot) => [slot.channelId, slot]));
    const boxes = new Map((await storage.listBoxes()).map((b) => [b.id, b.name]));
    const out: Record<string, unknown>[] = [];
    for (const c of await storage.listChannels()) {
      const sim = c.simId === null ? undefined : sims.get(c.simId);
      if (!sim && user.role !== 'admin') continue;
      const slot = live.get(c.id);
      const period = sim ? billingPeriod(sim.billingDay, now) : null;
      const usage = sim && period ? await storage.usage(sim.id, period) : null;
      out.push({
        id: c.id,
        port: c.port,
        box: c.boxId === 0 ? null : (boxes.get(c.boxId) ?? c.boxId),
        imei: c.imei,
        sim: sim ? { id: sim.id, number: sim.number, label: sim.label, operator: sim.operator } : null,
        attached: slot !== undefined,
        healthy: slot ? slot.healthy : c.healthy,
        busy: slot?.busy ?? false,
        signal_dbm: c.signalDbm,
        operator: c.operator,
        registration: c.registration,
        last_error: c.lastError,
        last_seen_at: iso(c.lastSeenAt),
        quota_used: usage ? usage.used : null,
        quota_left: sim && usage ? (sim.monthlyQuota === null ? null : Math.max(0, sim.monthlyQuota - usage.used - usage.reserved)) : null,
      });
    }
    res.json({ channels: out });
  });

  // ---- users (admins) and tokens

  router.get('/users', async (req, res) => {
    const { user } = await requireUser(req, services);
    requireAdmin(user);
    res.json({ users: (await storage.listUsers()).map(userView) });
  });

  router.post('/users', async (req, res) => {
    const { user } = await requireUser(req, services);
    requireAdmin(user);
    const body = objectBody(req);
    const name = reqString(body.name, 'name', 'the name');
    checkUserName(name);
    const password = reqString(body.password, 'password', 'the password');
    const problem = passwordProblem(password);
    if (problem) throw bad(problem, 'password');
    const created = await storage.createUser({ name, passwordHash: await hashPassword(password, config.auth.bcryptCost), role: parseRole(body.role) ?? 'user' });
    await storage.logEvent({ kind: 'user.created', detail: { by: user.name, name, role: created.role } });
    res.status(201).json(userView(created));
  });

  router.patch('/users/:id', async (req, res) => {
    const { user } = await requireUser(req, services);
    requireAdmin(user);
    const target = await storage.getUser(pathId(req.params.id, 'user'));
    if (!target) throw new SmsgateError(ErrorCodes.NotFound, `no user ${req.params.id}`, 'id');
    const body = objectBody(req);
    const patch: { passwordHash?: string; role?: Role; disabled?: boolean; reportDefault?: boolean } = {
      role: parseRole(body.role),
      disabled: optBool(body.disabled, 'disabled'),
      reportDefault: optBool(body.report_default, 'report_default'),
    };
    const password = optString(body.password, 'password');
    if (password !== undefined) {
      const problem = passwordProblem(password);
      if (problem) throw bad(problem, 'password');
      patch.passwordHash = await hashPassword(password, config.auth.bcryptCost);
    }
    await keepAnAdmin(storage, target, patch);
    const updated = await storage.updateUser(target.id, patch);
    // A new password ends the user's web sessions (API tokens stay: devices use them).
    if (patch.passwordHash) await storage.revokeSessions(target.id);
    await storage.logEvent({ kind: 'user.updated', detail: { by: user.name, name: target.name, role: patch.role, disabled: patch.disabled, password: password !== undefined } });
    res.json(userView(updated));
  });

  router.get('/tokens', async (req, res) => {
    const { user } = await requireUser(req, services);
    const forUser = user.role === 'admin' ? (optInt(req.query.user_id, 'user_id', 1, Number.MAX_SAFE_INTEGER) ?? user.id) : user.id;
    const tokens = (await storage.listTokens(forUser)).filter((t) => t.expiresAt === null);
    res.json({
      tokens: tokens.map((t) => ({ id: t.id, user_id: t.userId, label: t.label, created_at: iso(t.createdAt), last_used_at: iso(t.lastUsedAt), revoked_at: iso(t.revokedAt) })),
    });
  });

  router.post('/tokens', async (req, res) => {
    const { user } = await requireUser(req, services);
    const body = objectBody(req);
    const label = optString(body.label, 'label') ?? null;
    if (label !== null && label.length > 64) throw bad('label has at most 64 characters', 'label');
    let owner = user;
    const forUser = optInt(body.user_id, 'user_id', 1, Number.MAX_SAFE_INTEGER);
    if (forUser !== undefined && forUser !== user.id) {
      requireAdmin(user);
      const target = await storage.getUser(forUser);
      if (!target) throw new SmsgateError(ErrorCodes.NotFound, `no user ${forUser}`, 'user_id');
      owner = target;
    }
    const token = newToken();
    const stored = await storage.createToken(owner.id, tokenHash(token), label);
    await storage.logEvent({ kind: 'token.created', detail: { by: user.name, for: owner.name, id: stored.id, label } });
    res.status(201).json({ id: stored.id, user_id: owner.id, label, token, note: 'the token is shown once; store it now' });
  });

  router.delete('/tokens/:id', async (req, res) => {
    const { user } = await requireUser(req, services);
    const id = pathId(req.params.id, 'token');
    const token = await storage.getToken(id);
    if (!token || token.expiresAt !== null || (user.role !== 'admin' && token.userId !== user.id)) throw new SmsgateError(ErrorCodes.NotFound, `no token ${id}`, 'id');
    await storage.revokeToken(id);
    await storage.logEvent({ kind: 'token.revoked', detail: { by: user.name, id } });
    res.json({ id, revoked: true });
  });

  inboxRoutes(router, services);
  return router;
}

