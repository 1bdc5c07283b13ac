/**
 * The pure rules of the dispatcher: billing periods, quiet hours, and which SIM takes a message.
 *
 * A SIM may take a message when it is enabled, owned by (or shared with) the message's user (an admin may use every
 * SIM), has an idle healthy
 * channel, has at least the message's parts left of this billing period's quota, has let its pacing interval pass
 * since its last send, and is not in its quiet hours. Among those the SIM with the largest share of its quota left
 * wins (an unlimited SIM counts as wholly free); ties go to the SIM used least recently. A message that no SIM can
 * take gets the reason that best tells its user why it waits — and when to look again.
 *
 * Times are the box's local time (the TZ of the service), as an operator reads "quiet from 22:00".
 */
import type { Sim } from '../sql/storage.js';

/** The billing period `now` falls in: the local date its cycle started on, "YYYY-MM-DD". */
export function billingPeriod(billingDay: number, now: number): string {
  const day = Math.min(Math.max(1, Math.floor(billingDay)), 28);
  const d = new Date(now);
  let year = d.getFullYear();
  let month = d.getMonth();
  if (d.getDate() < day) {
    month -= 1;
    if (month < 0) {
      month = 11;
      year -= 1;
    }
  }
  return `${year}-${String(month + 1).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** Minutes after local midnight of "HH:MM"; null when the text is not such a time. */
export function parseClock(text: string | null): number | null {
  const m = text === null ? null : /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

/**
 * Whether `now` is inside the quiet hours from `start` to `end` (local "HH:MM", across midnight when end < start),
 * and when they end.
 */
export function quietHours(start: string | null, end: string | null, now: number): { quiet: false } | { quiet: true; until: number } {
  const from = parseClock(start);
  const to = parseClock(end);
  if (from === null || to === null || from === to) return { quiet: false };
  const d = new Date(now);
  const minute = d.getHours() * 60 + d.getMinutes();
  const inside = from < to ? minute >= from && minute < to : minute >= from || minute < to;
  if (!inside) return { quiet: false };
  const until = new Date(d);
  until.setHours(Math.floor(to / 60), to % 60, 0, 0);
  if (until.getTime() <= now) until.setDate(until.getDate() + 1);
  return { quiet: true, until: until.getTime() };
}

/** What the dispatcher knows of one SIM when it looks for a sender. */
export interface SimState {
  sim: Sim;
  owners: number[];
  /** An idle channel of this SIM is ready now. */
  idleChannel: boolean;
  /** Any channel of this SIM is healthy (busy or not). */
  healthyChannel: boolean;
  /** Parts used and reserved in the current billing period. */
  taken: number;
}

export interface Candidate {
  userId: number;
  /** Admins may send through every SIM. */
  isAdmin?: boolean;
  parts: number;
  recipient: string;
  /** The SIM to avoid (it just failed this message with a SIM error). */
  avoidSimId?: number | null;
  /** The one SIM the request asked for. */
  wantSimId?: number | null;
}

export interface RouteRule {
  /** Recipient prefix, e.g. "+7916". */
  prefix: string;
  simIds: number[];
}

export interface SelectOptions {
  /** Recipients with these prefixes go through these SIMs when one of them can take the message. */
  routes?: RouteRule[];
  /** The SIM a recipient last got a message from, to keep it (affinity); looked up by the caller. */
  affinitySimId?: number | null;
}

export type Selection = { sim: Sim } | { sim: null; reason: string; retryAt: number | null };

/** Chooses the SIM for a message, or says why none can take it now. */
export function selectSim(candidate: Candidate, sims: SimState[], now: number, options: SelectOptions = {}): Selection {
  const allowed = candidate.isAdmin ? sims : sims.filter((s) => s.owners.includes(candidate.userId));
  const wanted = candidate.wantSimId ?? null;
  const owned = wanted === null ? allowed : allowed.filter((s) => s.sim.id === wanted);
  if (owned.length === 0) {
    return { sim: null, reason: wanted === null ? 'no SIM is assigned to this user' : `SIM ${wanted} is not assigned to this user`, retryAt: null };
  }
  const enabled = owned.filter((s) => s.sim.enabled);
  if (enabled.length === 0) return { sim: null, reason: "all of this user's SIMs are disabled", retryAt: null };
  const withQuota = enabled.filter((s) => s.sim.monthlyQuota === null || s.sim.monthlyQuota - s.taken >= candidate.parts);
  if (withQuota.length === 0) {
    return { sim: null, reason: `quota exhausted on all SIMs (the message needs ${candidate.parts} part${candidate.parts === 1 ? '' : 's'})`, retryAt: null };
  }
  const healthy = withQuota.filter((s) => s.healthyChannel);
  if (healthy.length === 0) return { sim: null, reason: 'no healthy channel for the SIMs with quota left', retryAt: null };
  let soonest = Infinity;
  let quietUntil = Infinity;
  const ready = healthy.filter((s) => {
    const quiet = quietHours(s.sim.quietStart, s.sim.quietEnd, now);
    if (quiet.quiet) {
      quietUntil = Math.min(quietUntil, quiet.until);
      soonest = Math.min(soonest, quiet.until);
      return false;
    }
    const paced = s.sim.lastSentAt === null ? now : s.sim.lastSentAt + s.sim.pacingMs;
    if (paced > now) {
      soonest = Math.min(soonest, paced);
      return false;
    }
    return s.idleChannel;
  });
  const choosable = ready.filter((s) => s.sim.id !== candidate.avoidSimId);
  // A message that failed on a SIM with an error another SIM may not have (no service, SMSC unknown) waits for
  // another healthy SIM rather than go straight back to the one that failed it; that SIM only when it is the last.
  const others = candidate.avoidSimId !== null && candidate.avoidSimId !== undefined && healthy.some((s) => s.sim.id !== candidate.avoidSimId);
  const pool = choosable.length > 0 ? choosable : others ? [] : ready;
  if (pool.length === 0) {
    if (quietUntil !== Infinity && quietUntil === soonest) {
      return { sim: null, reason: `quiet hours until ${clock(quietUntil)}`, retryAt: quietUntil };
    }
    if (soonest !== Infinity) return { sim: null, reason: 'waiting for the pacing interval', retryAt: soonest };
    // Looked at again in a few seconds, not at once: messages waiting for another SIM must not take the claims of
    // the SIM they avoid from the messages that could go through it.
    if (others) return { sim: null, reason: `waiting for a channel of a SIM other than ${candidate.avoidSimId} (which failed it)`, retryAt: now + 5_000 };
    return { sim: null, reason: 'all channels are busy', retryAt: null };
  }
  const routed = options.routes
    ?.filter((r) => candidate.recipient.startsWith(r.prefix))
    .flatMap((r) => pool.filter((s) => r.simIds.includes(s.sim.id)));
  const affinity = pool.find((s) => s.sim.id === options.affinitySimId);
  const preferred = routed && routed.length > 0 ? routed : affinity ? [affinity] : pool;
  const best = [...preferred].sort((a, b) => share(b) - share(a) || (a.sim.lastSentAt ?? 0) - (b.sim.lastSentAt ?? 0) || a.sim.id - b.sim.id)[0]!;
  return { sim: best.sim };
}

/** Share of the quota left after what is taken; an unlimited SIM is wholly free. */
function share(s: SimState): number {
  return s.sim.monthlyQuota === null ? 1 : s.sim.monthlyQuota === 0 ? 0 : (s.sim.monthlyQuota - s.taken) / s.sim.monthlyQuota;
}

function clock(at: number): string {
  const d = new Date(at);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}
