/**
 * Relative validity period, TP-VP (3GPP TS 23.040 §9.2.3.12.1), one octet:
 *   0..143    (VP + 1) × 5 minutes            5 min .. 12 h
 *   144..167  12 h + (VP − 143) × 30 minutes  12 h 30 .. 24 h
 *   168..196  (VP − 166) days                 2 .. 30 days
 *   197..255  (VP − 192) weeks                5 .. 63 weeks
 */
import { ErrorCodes, SmsgateError } from '../errors.js';

/** Minutes a TP-VP octet stands for. */
export function validityMinutes(vp: number): number {
  if (vp <= 143) return (vp + 1) * 5;
  if (vp <= 167) return 720 + (vp - 143) * 30;
  if (vp <= 196) return (vp - 166) * 1440;
  return (vp - 192) * 10080;
}

/** The longest validity TP-VP can say: 63 weeks. */
export const MAX_VALIDITY_MINUTES = validityMinutes(255);

/**
 * The TP-VP octet for a validity of `minutes`: the shortest period that is at least that long, so a message never
 * expires earlier than asked (25 minutes is exact; 13 h becomes 13 h; 3 days 1 minute becomes 4 days).
 */
export function relativeValidity(minutes: number): number {
  if (!Number.isFinite(minutes) || minutes <= 0) {
    throw new SmsgateError(ErrorCodes.BadMessage, `validity must be a positive number of minutes, got ${minutes}`, 'validity');
  }
  if (minutes > MAX_VALIDITY_MINUTES) {
    throw new SmsgateError(
      ErrorCodes.BadMessage,
      `validity of ${minutes} minutes exceeds the longest relative period, 63 weeks (${MAX_VALIDITY_MINUTES} minutes)`,
      'validity',
    );
  }
  for (let vp = 0; vp <= 255; vp++) if (validityMinutes(vp) >= minutes) return vp;
  /* c8 ignore next */
  throw new Error('unreachable: MAX_VALIDITY_MINUTES is validityMinutes(255)');
}
