/**
 * The JSON API's received messages and SIM money (mounted under /api/v1 by api.ts):
 *
 * - `GET /inbox` (newest first; `sim`, `from`, `since`, `before`, `limit`), `GET /inbox/:id` with what was
 *   delivered where. A user sees what came in on the SIMs they own; an admin sees everything.
 * - `POST /sims/:id/balance` checks a SIM's balance now; `GET /sims/:id/balances` is its history.
 * - `POST /sims/:id/ussd` `{"code":"*100#"}`: the admins' raw USSD console.
 */
import type { Router } from 'express';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import type { BalanceRecord, Sim, Storage, User } from '../sql/storage.js';
import { type Services, objectBody, pathId, requireAdmin, requireUser } from './http.js';
import { bad, findSim, inboxView, iso, optInt, optString, optTime, reqString, simMap } from './requests.js';

async function visibleSimIds(storage: Storage, user: User): Promise<number[] | undefined> {
  return user.role === 'admin' ? undefined : (await storage.simsOfUser(user.id)).map((s) => s.id);
}

function balanceView(b: BalanceRecord): Record<string, unknown> {
  return { at: iso(b.at), amount: b.amount, currency: b.currency, answer: b.answer, error: b.error };
}

/** A SIM the user may see (its owner, or an admin); NOT_FOUND otherwise. */
async function ownSim(storage: Storage, user: User, ref: unknown): Promise<Sim> {
  const sims = user.role === 'admin' ? await storage.listSims() : await storage.simsOfUser(user.id);
  return findSim(sims, ref, 'id');
}

export function inboxRoutes(router: Router, services: Services): void {
  const { storage } = services;

  router.get('/inbox', async (req, res) => {
    const { user } = await requireUser(req, services);
    const q = req.query;
    const limit = optInt(q.limit, 'limit', 1, 500) ?? 50;
    const simIds = await visibleSimIds(storage, user);
    const simRef = optString(q.sim, 'sim');
    const simId = simRef === undefined ? undefined : (await ownSim(storage, user, simRef)).id;
    const rows = await storage.inbox.list({
      simIds,
      simId,
      sender: optString(q.from, 'from') || undefined,
      since: optTime(q.since, 'since'),
      before: optInt(q.before, 'before', 1, Number.MAX_SAFE_INTEGER),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const sims = await simMap(storage);
    res.json({ messages: page.map((m) => inboxView(m, sims)), next_before: rows.length > limit ? page[page.length - 1]!.id : null });
  });

  router.get('/inbox/:id', async (req, res) => {
    const { user } = await requireUser(req, services);
    const m = await storage.inbox.get(pathId(req.params.id, 'received message'));
    const simIds = await visibleSimIds(storage, user);
    if (!m || (simIds && (m.simId === null || !simIds.includes(m.simId)))) throw new SmsgateError(ErrorCodes.NotFound, `no received message ${req.params.id}`, 'id');
    const deliveries = (await storage.inbox.deliveriesOf(m.id)).map((d) => ({
      id: d.id,
      kind: d.kind,
      // Where it went is the admins' business (URLs may carry secrets).
      target: user.role === 'admin' ? d.target : null,
      state: d.state,
      attempts: d.attempts,
      // Errors may quote a hook's output: also the admins' business.
      last_error: user.role === 'admin' ? d.lastError : null,
      done_at: iso(d.doneAt),
    }));
    res.json({ ...inboxView(m, await simMap(storage)), deliveries });
  });

  router.post('/sims/:id/balance', async (req, res) => {
    const { user } = await requireUser(req, services);
    const sim = await ownSim(storage, user, req.params.id);
    if (!services.balance) throw new SmsgateError(ErrorCodes.NoChannel, 'balance checks need the running gateway', 'id');
    const result = await services.balance.check(sim.id);
    res.json({ sim: sim.id, ...balanceView(result.record), low: result.low, is_low: result.isLow, enabled: result.sim.enabled, paused_reason: result.sim.pausedReason });
  });

  router.get('/sims/:id/balances', async (req, res) => {
    const { user } = await requireUser(req, services);
    const sim = await ownSim(storage, user, req.params.id);
    const limit = optInt(req.query.limit, 'limit', 1, 1000) ?? 50;
    res.json({ sim: sim.id, balances: (await storage.listBalances(sim.id, limit)).map(balanceView) });
  });

  router.post('/sims/:id/ussd', async (req, res) => {
    const { user } = await requireUser(req, services);
    requireAdmin(user);
    const sim = findSim(await storage.listSims(), req.params.id, 'id');
    const code = reqString(objectBody(req).code, 'code').trim();
    if (!/^[0-9*#+]{1,160}$/.test(code)) throw bad('code must be a USSD code: digits, * and #, e.g. *100#', 'code');
    if (!services.balance) throw new SmsgateError(ErrorCodes.NoChannel, 'USSD needs the running gateway', 'id');
    const answer = await services.balance.ussd(sim.id, code);
    await storage.logEvent({ kind: 'sim.ussd', simId: sim.id, detail: { by: user.name, code, status: answer.status, text: answer.text } });
    res.json({ sim: sim.id, code, status: answer.status, status_code: answer.code, text: answer.text, raw: answer.raw, dcs: answer.dcs });
  });
}
