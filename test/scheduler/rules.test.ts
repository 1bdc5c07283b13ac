/** The dispatcher's pure rules: billing periods, quiet hours, SIM choice. */
import { describe, expect, it } from 'vitest';
import { billingPeriod, quietHours, selectSim, type SimState } from '../../scheduler/rules.js';
import type { Sim } from '../../sql/storage.js';

const at = (text: string) => new Date(text).getTime(); // local time: the rules read the box's clock

function sim(id: number, over: Partial<Sim> = {}): Sim {
  return {
    id,
    imsi: `25002000000000${id}`,
    iccid: null,
    number: null,
    label: null,
    operator: null,
    monthlyQuota: null,
    billingDay: 1,
    pacingMs: 0,
    quietStart: null,
    quietEnd: null,
    enabled: true,
    balance: null,
    balanceAt: null,
    balanceUssd: null,
    balancePattern: null,
    balanceLow: null,
    balancePause: false,
    balanceAlerted: false,
    pausedReason: null,
    lastSentAt: null,
    createdAt: 0,
    ...over,
  };
}

const state = (s: Sim, over: Partial<SimState> = {}): SimState => ({ sim: s, owners: [1], idleChannel: true, healthyChannel: true, taken: 0, ...over });
const message = { userId: 1, parts: 1, recipient: '+79161234567' };

describe('billingPeriod', () => {
  it.each([
    [1, '2026-11-24T10:00:00', '2026-11-01'],
    [15, '2026-11-24T10:00:00', '2026-11-15'],
    [25, '2026-11-24T10:00:00', '2026-10-25'],
    [25, '2026-01-03T00:00:00', '2025-12-25'],
    [31, '2026-03-29T00:00:00', '2026-03-28'], // days beyond 28 are the 28th: every month has one
  ])('billing day %i at %s is the period starting %s', (day, now, period) => {
    expect(billingPeriod(day, at(now))).toBe(period);
  });
});

describe('quietHours', () => {
  it('holds from start to end across midnight and says until when', () => {
    expect(quietHours('22:00', '08:00', at('2026-11-24T23:30:00'))).toEqual({ quiet: true, until: at('2026-11-25T08:00:00') });
    expect(quietHours('22:00', '08:00', at('2026-11-24T07:59:00'))).toEqual({ quiet: true, until: at('2026-11-24T08:00:00') });
    expect(quietHours('22:00', '08:00', at('2026-11-24T08:00:00'))).toEqual({ quiet: false });
    expect(quietHours('13:00', '14:00', at('2026-11-24T13:10:00'))).toEqual({ quiet: true, until: at('2026-11-24T14:00:00') });
    expect(quietHours(null, null, at('2026-11-24T03:00:00'))).toEqual({ quiet: false });
    expect(quietHours('25:00', '08:00', at('2026-11-24T03:00:00'))).toEqual({ quiet: false });
  });
});

describe('selectSim', () => {
  const now = at('2026-11-24T12:00:00');

  it('takes the SIM with the largest share of its quota left; ties go to the least recently used', () => {
    const sims = [state(sim(1, { monthlyQuota: 10 }), { taken: 5 }), state(sim(2, { monthlyQuota: 30 }), { taken: 9 }), state(sim(3, { monthlyQuota: 20 }), { taken: 10 })];
    expect(selectSim(message, sims, now)).toMatchObject({ sim: { id: 2 } });
    const tie = [state(sim(1, { lastSentAt: 500 })), state(sim(2, { lastSentAt: 100 }))];
    expect(selectSim(message, tie, now)).toMatchObject({ sim: { id: 2 } });
  });

  it('keeps to SIMs the user owns, that are enabled, with quota, a healthy idle channel, paced and awake', () => {
    expect(selectSim(message, [state(sim(1), { owners: [2] })], now)).toMatchObject({ sim: null, reason: 'no SIM is assigned to this user' });
    expect(selectSim(message, [state(sim(1, { enabled: false }))], now)).toMatchObject({ reason: "all of this user's SIMs are disabled" });
    expect(selectSim({ ...message, parts: 3 }, [state(sim(1, { monthlyQuota: 10 }), { taken: 8 })], now)).toMatchObject({
      reason: 'quota exhausted on all SIMs (the message needs 3 parts)',
    });
    expect(selectSim(message, [state(sim(1), { healthyChannel: false, idleChannel: false })], now)).toMatchObject({
      reason: 'no healthy channel for the SIMs with quota left',
    });
    expect(selectSim(message, [state(sim(1), { idleChannel: false })], now)).toMatchObject({ reason: 'all channels are busy', retryAt: null });
    expect(selectSim(message, [state(sim(1, { pacingMs: 60_000, lastSentAt: now - 10_000 }))], now)).toMatchObject({
      reason: 'waiting for the pacing interval',
      retryAt: now + 50_000,
    });
    expect(selectSim(message, [state(sim(1, { quietStart: '11:00', quietEnd: '13:30' }))], now)).toMatchObject({
      reason: 'quiet hours until 13:30',
      retryAt: at('2026-11-24T13:30:00'),
    });
  });

  it('sends through an awake SIM while another is quiet, and avoids the SIM that just failed when it can', () => {
    const sims = [state(sim(1, { quietStart: '11:00', quietEnd: '13:00' })), state(sim(2, { monthlyQuota: 100 }), { taken: 90 })];
    expect(selectSim(message, sims, now)).toMatchObject({ sim: { id: 2 } });
    const two = [state(sim(1)), state(sim(2), { taken: 5 })];
    expect(selectSim({ ...message, avoidSimId: 1 }, two, now)).toMatchObject({ sim: { id: 2 } });
    expect(selectSim({ ...message, avoidSimId: 1 }, [state(sim(1))], now)).toMatchObject({ sim: { id: 1 } });
  });

  it('routes by recipient prefix and keeps a recipient on its SIM when it can', () => {
    const sims = [state(sim(1)), state(sim(2)), state(sim(3))];
    expect(selectSim(message, sims, now, { routes: [{ prefix: '+7916', simIds: [3] }] })).toMatchObject({ sim: { id: 3 } });
    expect(selectSim({ ...message, recipient: '+4477' }, sims, now, { routes: [{ prefix: '+7916', simIds: [3] }] })).toMatchObject({ sim: { id: 1 } });
    expect(selectSim(message, sims, now, { affinitySimId: 2 })).toMatchObject({ sim: { id: 2 } });
  });
});
