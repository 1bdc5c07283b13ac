/**
 * Octet helpers for the PDU codec: hex text, BCD semi-octets (3GPP TS 23.040 §9.1.2.3) and a bounds-checked reader
 * that turns every short read into a clear error instead of `undefined` bytes. No Node APIs: the browser's segment
 * counter imports this codec too.
 */
import { ErrorCodes, SmsgateError } from '../errors.js';

/** Upper-case hex of octets, as modems print PDUs. */
export function toHex(octets: ArrayLike<number>): string {
  let out = '';
  for (let i = 0; i < octets.length; i++) out += (octets[i]! & 0xff).toString(16).padStart(2, '0');
  return out.toUpperCase();
}

/** Octets of a hex string; whitespace is ignored, anything else that is not hex is an error. */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, '');
  if (clean.length === 0) throw invalid('the PDU is empty');
  if (!/^[0-9a-fA-F]*$/.test(clean)) throw invalid('the PDU has characters that are not hex digits');
  if (clean.length % 2 !== 0) throw invalid(`the PDU has an odd number of hex digits (${clean.length})`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

const SEMI_OCTET_DIGITS = '0123456789*#abc';

/** Swapped-nibble BCD of a digit string ("*", "#", "a", "b", "c" allowed), padded with F (§9.1.2.3). */
export function encodeSemiOctets(digits: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < digits.length; i += 2) {
    const low = semiOctet(digits[i]!);
    const high = i + 1 < digits.length ? semiOctet(digits[i + 1]!) : 0xf;
    out.push((high << 4) | low);
  }
  return out;
}

function semiOctet(ch: string): number {
  const value = SEMI_OCTET_DIGITS.indexOf(ch.toLowerCase());
  if (value < 0) throw new SmsgateError(ErrorCodes.BadNumber, `"${ch}" cannot be written as a semi-octet`);
  return value;
}

/** Digits of `count` swapped-nibble semi-octets; a filler (F) ends the number early. */
export function decodeSemiOctets(octets: ArrayLike<number>, count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) {
    const octet = octets[i >> 1]!;
    const nibble = i % 2 === 0 ? octet & 0x0f : octet >> 4;
    if (nibble === 0xf) break;
    out += SEMI_OCTET_DIGITS[nibble];
  }
  return out;
}

/** Reads a PDU front to back; every read past the end throws a PduInvalid error naming the field. */
export class OctetReader {
  private pos = 0;
  constructor(private readonly octets: Uint8Array) {}

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.octets.length - this.pos;
  }

  /** One octet, for `field`. */
  byte(field: string): number {
    return this.bytes(1, field)[0]!;
  }

  /** `count` octets, for `field`. */
  bytes(count: number, field: string): Uint8Array {
    if (count > this.remaining) {
      throw invalid(`the PDU ends inside ${field} (needs ${count} octets at offset ${this.pos}, ${this.remaining} left)`);
    }
    const out = this.octets.subarray(this.pos, this.pos + count);
    this.pos += count;
    return out;
  }

  /** Everything left. */
  rest(): Uint8Array {
    return this.bytes(this.remaining, 'the rest');
  }
}

/** A PduInvalid error. */
export function invalid(message: string): SmsgateError {
  return new SmsgateError(ErrorCodes.PduInvalid, message);
}
