/**
 * Phone number normalisation for recipients: E.164 ("+" and up to 15 digits) whenever the number can be placed in a
 * country, national short codes kept as they are.
 *
 * National numbers become international with the configured default country calling code, using libphonenumber-js
 * (Google's libphonenumber metadata): it knows each country's trunk prefix (8 in Russia, 0 in most of Europe, 1 in
 * North America) and number lengths, which no hand-written rule gets right for long. Pure and browser-safe (the
 * send form uses it too).
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/min';
import { ErrorCodes, SmsgateError } from './errors.js';

export type NumberKind = 'international' | 'national' | 'short';

export interface NormalisedNumber {
  /** E.164 with "+" (international), or digits (national without a default country, or a short code). */
  number: string;
  kind: NumberKind;
}

export interface NumberOptions {
  /** Country calling code for national numbers, e.g. "7" or "+49". Without it national numbers stay national. */
  defaultCountryCode?: string;
  /** The field to name in errors (default "to"). */
  field?: string;
}

/** Short codes (balance, operator services, alerts) have at most this many digits and are never rewritten. */
export const MAX_SHORT_CODE_DIGITS = 6;
/** No operator service has a shorter number that takes an SMS. */
export const MIN_SHORT_CODE_DIGITS = 3;

/** Separators people and devices put in numbers; they are dropped. */
const SEPARATORS = /[\s\u00a0\u2000-\u200b\-‐‑‒–—().\/]/g;

/** Normalises one recipient; throws SmsgateError BAD_NUMBER naming the field and the reason. */
export function normaliseNumber(input: string, options: NumberOptions = {}): NormalisedNumber {
  const field = options.field ?? 'to';
  const fail = (why: string) => new SmsgateError(ErrorCodes.BadNumber, `"${input}" ${why}`, field);
  // "+44 (0)20 …": the bracketed trunk zero after a country code is not dialled from abroad.
  let compact = input.trim().replace(/^(\+\d{1,3})[\s\u00a0]*\(0\)/, '$1').replace(SEPARATORS, '');
  if (compact === '') throw fail('is empty');
  if (/^\d+$/.test(compact) && compact.length <= MAX_SHORT_CODE_DIGITS) {
    if (compact.length < MIN_SHORT_CODE_DIGITS) throw fail(`is too short for a phone number or a short code (${MIN_SHORT_CODE_DIGITS} to ${MAX_SHORT_CODE_DIGITS} digits)`);
    return { number: compact, kind: 'short' };
  }
  if (compact.startsWith('00')) compact = `+${compact.slice(2)}`;
  if (!/^\+?\d+$/.test(compact)) throw fail('is not a phone number: only digits, an optional leading +, spaces, dashes and brackets');

  if (compact.startsWith('+')) {
    const digits = compact.slice(1);
    if (digits.startsWith('0')) throw fail('is not an international number: a country code never starts with 0');
    if (digits.length < 7 || digits.length > 15) throw fail('is not an international number: E.164 has 7 to 15 digits');
    return { number: compact, kind: 'international' };
  }
  if (compact.length > 15) throw fail('is too long for a phone number (more than 15 digits)');

  const countryCode = options.defaultCountryCode?.replace(/^\+/, '');
  if (!countryCode) return { number: compact, kind: 'national' };
  if (!/^\d{1,3}$/.test(countryCode)) {
    throw new SmsgateError(ErrorCodes.BadNumber, `the default country code "${options.defaultCountryCode}" is not 1 to 3 digits`, 'defaultCountryCode');
  }
  let parsed: ReturnType<typeof parsePhoneNumberFromString>;
  try {
    parsed = parsePhoneNumberFromString(compact, { defaultCallingCode: countryCode });
  } catch {
    throw new SmsgateError(ErrorCodes.BadNumber, `the default country code +${countryCode} is not in use`, 'defaultCountryCode');
  }
  // Valid, not merely possible: a national number read in the wrong way would reach a stranger. Anyone can write
  // the number in international form instead.
  if (!parsed || !parsed.isValid()) {
    throw fail(`is not a valid number in country +${countryCode}; write it in international form (+CC…)`);
  }
  return { number: parsed.number, kind: 'international' };
}
