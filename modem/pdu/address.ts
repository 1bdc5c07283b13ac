/**
 * Addresses in PDUs: TP-DA/TP-OA/TP-RA (3GPP TS 23.040 §9.1.2.5, length in useful semi-octets) and the SMSC address
 * that modems put in front of the TPDU (TS 24.011 §8.2.5.1 RP address, length in octets including the type).
 *
 * Type of address = 1 | TON (3 bits) | NPI (4 bits). We write 0x91 (international, ISDN) for "+" numbers and 0x81
 * (unknown, ISDN) for every other number, as Gammu does; alphanumeric senders are TON 101 (0xD0), GSM-7 packed.
 */
import { ErrorCodes, SmsgateError } from '../errors.js';
import { isGsm7, packSeptets, septetsToText, textToSeptets, unpackSeptets } from './gsm7.js';
import { OctetReader, decodeSemiOctets, encodeSemiOctets, invalid, toHex } from './octets.js';

export const TOA_INTERNATIONAL = 0x91;
export const TOA_UNKNOWN = 0x81;
export const TOA_ALPHANUMERIC = 0xd0;

/** A decoded address. `number` carries "+" when the type says international. */
export interface Address {
  number: string;
  /** The raw type-of-address octet. */
  type: number;
}

/** Digits a phone number may hold in a PDU besides 0-9 (service codes). */
const NUMBER_RE = /^\+?[0-9*#]{1,20}$/;

/** TP-DA / TP-OA for a phone number ("+" = international) or, with `alphanumeric`, a sender name (≤ 11 chars). */
export function encodeAddress(value: string, alphanumeric = false): number[] {
  if (alphanumeric) {
    const septets = isGsm7(value) ? textToSeptets(value) : [];
    if (septets.length === 0 || septets.length > 11) {
      throw new SmsgateError(ErrorCodes.BadNumber, `an alphanumeric address is 1 to 11 GSM-7 septets: "${value}"`);
    }
    const packed = packSeptets(septets);
    return [Math.ceil((septets.length * 7) / 4), TOA_ALPHANUMERIC, ...packed];
  }
  const { digits, type } = splitNumber(value);
  return [digits.length, type, ...encodeSemiOctets(digits)];
}

/** The SMSC field: `00` (use the modem's configured SMSC) when `smsc` is empty or absent. */
export function encodeSmsc(smsc?: string): number[] {
  if (!smsc) return [0];
  const { digits, type } = splitNumber(smsc);
  const octets = encodeSemiOctets(digits);
  return [octets.length + 1, type, ...octets];
}

function splitNumber(value: string): { digits: string; type: number } {
  const compact = value.replace(/[\s\-().]/g, '');
  if (!NUMBER_RE.test(compact)) {
    throw new SmsgateError(ErrorCodes.BadNumber, `"${value}" is not a phone number (digits, * and #, optional leading +)`);
  }
  return compact.startsWith('+')
    ? { digits: compact.slice(1), type: TOA_INTERNATIONAL }
    : { digits: compact, type: TOA_UNKNOWN };
}

/** Reads a TP address (length in semi-octets) for the field named `field`. */
export function decodeAddress(reader: OctetReader, field: string): Address {
  const length = reader.byte(`${field} length`);
  const type = reader.byte(`${field} type`);
  if (length > 20) throw invalid(`${field} claims ${length} digits; an address holds at most 20`);
  // An empty address (a draft without recipient: "00 00") may carry any type octet.
  if (length > 0 && (type & 0x80) === 0) throw invalid(`${field} type 0x${toHex([type])} lacks its extension bit`);
  const body = reader.bytes(Math.ceil(length / 2), field);
  if ((type & 0x70) === 0x50) {
    const septets = unpackSeptets(body, Math.floor((length * 4) / 7));
    // Some SMSCs give the length as octets × 2; a 7-character name then shows a trailing "@" (septet 0x00).
    if (septets.length % 8 === 0 && septets.at(-1) === 0) septets.pop();
    return { number: septetsToText(septets), type };
  }
  return { number: withPlus(decodeSemiOctets(body, length), type), type };
}

/** Reads the SMSC field in front of a TPDU (length in octets, 0 = none). */
export function decodeSmsc(reader: OctetReader): Address | null {
  const length = reader.byte('the SMSC length');
  if (length === 0) return null;
  if (length > 12) throw invalid(`the SMSC field claims ${length} octets; it holds at most 12`);
  const type = reader.byte('the SMSC type');
  const body = reader.bytes(length - 1, 'the SMSC number');
  // Gammu writes "0181" (a type and no digits) for "no SMSC": that is an empty number, like "00".
  const number = withPlus(decodeSemiOctets(body, body.length * 2), type);
  return number === '' || number === '+' ? null : { number, type };
}

function withPlus(digits: string, type: number): string {
  return (type & 0x70) === 0x10 && digits !== '' ? `+${digits}` : digits;
}
