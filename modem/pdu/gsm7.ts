/**
 * The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1 and §6.2.1.1), and septet packing
 * (§6.1.2.1.1).
 *
 * A character of the extension table costs two septets: ESC (0x1B) then its code. The encoder never splits such a
 * pair across message parts; see `segments.ts`.
 */

/** Escape to the extension table. */
export const ESC = 0x1b;

/** The default alphabet, indexed by septet value. 0x1B is the escape and has no character of its own. */
const BASIC: readonly string[] = [
  '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
  'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u001b', 'Æ', 'æ', 'ß', 'É',
  ' ', '!', '"', '#', '¤', '%', '&', "'", '(', ')', '*', '+', ',', '-', '.', '/',
  '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
  '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
  'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
  '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
  'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
];

/**
 * The extension table (§6.2.1.1): septet after ESC -> character. 0x0A is a page break (form feed). 0x0D ("CR2") and
 * 0x1B (escape to a further table) have no character; a receiver shows the default-table character or a space.
 */
const EXTENSION: ReadonlyMap<number, string> = new Map([
  [0x0a, '\f'], [0x14, '^'], [0x28, '{'], [0x29, '}'], [0x2f, '\\'],
  [0x3c, '['], [0x3d, '~'], [0x3e, ']'], [0x40, '|'], [0x65, '€'],
]);

const BASIC_CODE = new Map<string, number>();
BASIC.forEach((ch, code) => {
  if (code !== ESC) BASIC_CODE.set(ch, code);
});
const EXTENSION_CODE = new Map<string, number>();
for (const [code, ch] of EXTENSION) EXTENSION_CODE.set(ch, code);

/** Septets for one character: [code] for the default table, [ESC, code] for the extension table, null if neither. */
export function gsm7Septets(ch: string): readonly number[] | null {
  const basic = BASIC_CODE.get(ch);
  if (basic !== undefined) return [basic];
  const ext = EXTENSION_CODE.get(ch);
  if (ext !== undefined) return [ESC, ext];
  return null;
}

/** Septet cost of one character in GSM-7 (1 or 2), or 0 when it has no GSM-7 form. */
export function gsm7Cost(ch: string): 0 | 1 | 2 {
  if (BASIC_CODE.has(ch)) return 1;
  if (EXTENSION_CODE.has(ch)) return 2;
  return 0;
}

/** True when every character of `text` is in the default alphabet or its extension table. */
export function isGsm7(text: string): boolean {
  for (const ch of text) if (gsm7Cost(ch) === 0) return false;
  return true;
}

/**
 * Septets of a text that must be GSM-7. Characters outside the alphabet are transliterated (accents dropped, as
 * Gammu does for its "Default" coding: "š" -> "s"), and what still has no form becomes "?".
 */
export function textToSeptets(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) {
    const direct = gsm7Septets(ch);
    if (direct) {
      out.push(...direct);
      continue;
    }
    for (const alt of transliterate(ch)) out.push(...(gsm7Septets(alt) ?? [0x3f]));
  }
  return out;
}

/** Strips combining marks (NFD) from a character that has no GSM-7 form; what is left may or may not be GSM-7. */
export function transliterate(ch: string): string {
  // A lone combining mark (an accent typed apart from its letter) has nothing to show: it goes.
  if (/^\p{M}$/u.test(ch)) return '';
  const stripped = ch.normalize('NFD').replace(/\p{M}+/gu, '');
  return stripped === '' ? '?' : stripped;
}

/**
 * Text of a septet sequence. An escape followed by a code the extension table does not define shows the
 * default-table character for that code (23.038 §6.2.1.1, note 1); a trailing lone escape is dropped.
 */
export function septetsToText(septets: ArrayLike<number>): string {
  let out = '';
  for (let i = 0; i < septets.length; i++) {
    const s = septets[i]! & 0x7f;
    if (s !== ESC) {
      out += BASIC[s];
      continue;
    }
    if (i + 1 >= septets.length) break;
    const next = septets[++i]! & 0x7f;
    if (next === ESC) out += ' ';
    else out += EXTENSION.get(next) ?? BASIC[next];
  }
  return out;
}

/**
 * Packs septets into octets, least significant bit first (§6.1.2.1.1). `fillBits` (0..6) zero bits come first, so
 * that septets after a User Data Header start on a septet boundary (23.040 §9.2.3.24).
 */
export function packSeptets(septets: ArrayLike<number>, fillBits = 0): Uint8Array {
  const totalBits = fillBits + septets.length * 7;
  const out = new Uint8Array(Math.ceil(totalBits / 8));
  let bit = fillBits;
  for (let i = 0; i < septets.length; i++) {
    const value = septets[i]! & 0x7f;
    const index = bit >> 3;
    const shift = bit & 7;
    out[index]! |= (value << shift) & 0xff;
    if (shift > 1) out[index + 1]! |= value >> (8 - shift);
    bit += 7;
  }
  return out;
}

/** Unpacks `count` septets from `octets`, skipping `fillBits` leading bits. Throws when the octets are too few. */
export function unpackSeptets(octets: ArrayLike<number>, count: number, fillBits = 0): number[] {
  const needed = Math.ceil((fillBits + count * 7) / 8);
  if (octets.length < needed) {
    throw new RangeError(`${count} septets need ${needed} octets, only ${octets.length} present`);
  }
  const out: number[] = [];
  let bit = fillBits;
  for (let i = 0; i < count; i++) {
    const index = bit >> 3;
    const shift = bit & 7;
    let value = octets[index]! >> shift;
    if (shift > 1) value |= octets[index + 1]! << (8 - shift);
    out.push(value & 0x7f);
    bit += 7;
  }
  return out;
}
