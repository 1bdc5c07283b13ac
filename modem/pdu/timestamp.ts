/**
 * TP-SCTS / TP-DT time stamps (3GPP TS 23.040 §9.2.3.11): seven swapped-nibble BCD octets, year month day hour
 * minute second and the zone in quarter hours, whose sign is bit 3 of the zone octet's low nibble.
 */
import { ErrorCodes, SmsgateError } from '../errors.js';

/**
 * ISO 8601 with the sender's own offset ("2007-05-03T07:04:40+02:00"), from the seven octets; null when they are
 * not a real date and time (all zeros, a non-decimal digit, 31 February, a zone octet of FF): some SMSCs and phones
 * send such stamps, and the message is still worth reading (Gammu too reads the text and drops the date).
 */
export function decodeTimestamp(octets: ArrayLike<number>): string | null {
  const digits: number[] = [];
  for (let i = 0; i < 6; i++) {
    const octet = octets[i]!;
    const tens = octet & 0x0f;
    const units = octet >> 4;
    if (tens > 9 || units > 9) return null;
    digits.push(tens * 10 + units);
  }
  const [yy, month, day, hour, minute, second] = digits as [number, number, number, number, number, number];
  const zone = octets[6]!;
  const zoneTens = zone & 0x07;
  const zoneUnits = zone >> 4;
  if (zoneUnits > 9) return null;
  const quarters = zoneTens * 10 + zoneUnits;
  if (quarters > 56) return null; // ±14:00 is the widest offset in use
  const offset = (zone & 0x08 ? -1 : 1) * quarters * 15;
  const year = yy >= 90 ? 1900 + yy : 2000 + yy;
  const check = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    return null;
  }
  return `${year}-${p2(month)}-${p2(day)}T${p2(hour)}:${p2(minute)}:${p2(second)}${formatOffset(offset)}`;
}

/** The seven octets for an ISO 8601 time with an offset that is a whole number of quarter hours ("Z" = +00:00). */
export function encodeTimestamp(iso: string): number[] {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|([+-])(\d{2}):?(\d{2}))$/.exec(iso);
  if (!m) throw new SmsgateError(ErrorCodes.BadMessage, `"${iso}" is not an ISO 8601 time with an offset`, 'timestamp');
  const offset = m[7] === 'Z' ? 0 : (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10]));
  if (offset % 15 !== 0 || Math.abs(offset) > 79 * 15) {
    throw new SmsgateError(ErrorCodes.BadMessage, `the offset of "${iso}" is not a whole number of quarter hours`, 'timestamp');
  }
  const fields = [Number(m[1]) % 100, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  const quarters = Math.abs(offset) / 15;
  const zone = ((quarters % 10) << 4) | Math.floor(quarters / 10) | (offset < 0 ? 0x08 : 0);
  return [...fields.map((v) => ((v % 10) << 4) | Math.floor(v / 10)), zone];
}

function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${p2(Math.floor(abs / 60))}:${p2(abs % 60)}`;
}

function p2(n: number): string {
  return String(n).padStart(2, '0');
}
