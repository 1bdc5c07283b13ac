/**
 * USSD answers: `+CUSD: <m>[,<str>[,<dcs>]]` (27.007 §7.15) with <dcs> a CBS data coding scheme (23.038 §5).
 *
 * What modems put in <str> varies, and the recorded answers of real devices (test/fixtures/gammu/at-ussd) show all
 * of it: plain text (most, under AT+CSCS="GSM"); the GSM-7 septets packed and hex-coded (Huawei E160, DCS 15);
 * UCS-2 hex under an honest DCS 72 (Huawei E3276); and UCS-2 hex under a DCS that says GSM-7 (Quectel M35). So a
 * hex-looking string is decoded every way it could be meant and the reading that looks most like text wins; a
 * short or non-hex string is taken as it is.
 */
import { packSeptets, septetsToText, textToSeptets, unpackSeptets } from './pdu/gsm7.js';
import { toHex } from './pdu/octets.js';

export type UssdStatus = 'done' | 'action-required' | 'terminated' | 'other-client' | 'not-supported' | 'timeout';

export interface UssdAnswer {
  status: UssdStatus;
  /** <m> as the modem gave it. */
  code: number;
  text: string | null;
  dcs: number | null;
  /** <str> as the modem gave it. */
  raw: string | null;
}

const STATUS: Record<number, UssdStatus> = {
  0: 'done',
  1: 'action-required',
  2: 'terminated',
  3: 'other-client',
  4: 'not-supported',
  5: 'timeout',
};

/** Parses one `+CUSD:` line; null when the line is not one. */
export function parseCusd(line: string): UssdAnswer | null {
  const m = /^\+CUSD:\s*(\d)\s*(?:,\s*(?:"([^"]*)"?|([^,]*?))\s*(?:,\s*(\d+))?)?\s*$/.exec(line);
  if (!m) return null;
  const code = Number(m[1]);
  const raw = m[2] ?? (m[3] !== undefined && m[3] !== '' ? m[3] : null);
  const dcs = m[4] === undefined ? null : Number(m[4]);
  return { status: STATUS[code] ?? 'terminated', code, raw, dcs, text: raw === null ? null : decodeUssdText(raw, dcs) };
}

type Alphabet = 'gsm7' | 'ucs2' | '8bit';

/** The alphabet a CBS DCS names (23.038 §5); unknown and reserved groups read as GSM-7. */
export function ussdAlphabet(dcs: number | null): Alphabet {
  if (dcs === null) return 'gsm7';
  if (dcs === 0x11) return 'ucs2'; // UCS-2 preceded by a language indication
  const group = dcs >> 4;
  // 01xx (general) and 1001 (message with UDH): bits 3-2 name the alphabet; 11 is reserved (GSM-7).
  const general: Alphabet[] = ['gsm7', '8bit', 'ucs2', 'gsm7'];
  if ((group >= 0x4 && group <= 0x7) || group === 0x9) return general[(dcs >> 2) & 3]!;
  if (group === 0xf) return dcs & 0x04 ? '8bit' : 'gsm7';
  return 'gsm7';
}

/** The text of <str>, decoded the way that makes sense of it. */
export function decodeUssdText(raw: string, dcs: number | null): string {
  const alphabet = ussdAlphabet(dcs);
  const hex = /^[0-9A-Fa-f]+$/.test(raw) && raw.length % 2 === 0;
  const candidates: { text: string; score: number }[] = [];
  if (hex && alphabet === 'gsm7' && raw.length >= 8) {
    const text = packed(raw);
    candidates.push({ text, score: textScore(text) });
  }
  if (hex && raw.length % 4 === 0 && (alphabet === 'ucs2' || raw.length >= 8)) {
    const text = ucs2(raw, dcs === 0x11);
    // Under a DCS that says GSM-7, a UCS-2 reading counts only as far as its characters come from the scripts
    // below U+0800 (Latin, Greek, Cyrillic, Hebrew, Arabic, …), as with the Quectel M35: random octets read as
    // UCS-2 give CJK and Hangul "letters" that would otherwise look like text.
    const low = [...text].filter((ch) => ch.codePointAt(0)! < 0x800).length / Math.max(1, text.length);
    candidates.push({ text, score: textScore(text) * (alphabet === 'gsm7' ? low : 1) });
  }
  if (hex && alphabet === '8bit') {
    const text = latin1(raw);
    candidates.push({ text, score: textScore(text) });
  }
  // The raw string competes too (digits-only answers are hex-looking), but loses ties to a decoding the DCS names.
  let best = { text: raw, score: hex && alphabet !== 'gsm7' ? -1 : textScore(raw) - (hex ? 0.5 : 0) };
  for (const candidate of candidates) if (candidate.score > best.score) best = candidate;
  return best.text;
}

function ucs2(hex: string, languagePrefix: boolean): string {
  let out = '';
  for (let i = 0; i < hex.length; i += 4) out += String.fromCharCode(parseInt(hex.slice(i, i + 4), 16));
  out = languagePrefix ? out.slice(1) : out;
  // Modems pad with NUL and FFFF after the text.
  return out.replace(/[\u0000\uffff][\s\S]*$/, '').trimEnd();
}

/** A USSD string as Huawei modems take and give it: the GSM-7 septets packed, hex-coded. */
export function packUssd(text: string): string {
  return toHex(packSeptets(textToSeptets(text)));
}

/** The text of GSM-7 packed hex; seven spare bits at the end are filled with CR (23.038 §6.1.2.3.1), not text. */
export function unpackUssd(hex: string): string {
  const octets = hex.match(/../g)!.map((h) => parseInt(h, 16));
  return septetsToText(unpackSeptets(octets, Math.floor((octets.length * 8) / 7))).replace(/[\r@]$/, '');
}

function packed(hex: string): string {
  return unpackUssd(hex).trimEnd();
}

function latin1(hex: string): string {
  return hex.match(/../g)!.map((h) => String.fromCharCode(parseInt(h, 16))).join('');
}

/** Share of characters that are letters, digits, spaces and ordinary punctuation: how much a string looks like text. */
function textScore(text: string): number {
  if (text.length === 0) return 0;
  const ordinary = text.match(/[\p{L}\p{N}\s.,:;!?'"()\-+*#/%€$£=_]/gu)?.length ?? 0;
  const controls = text.match(/[\u0000-\u0008\u000e-\u001f\u007f-\u009f\ufffd]/g)?.length ?? 0;
  return (ordinary - 2 * controls) / text.length;
}
