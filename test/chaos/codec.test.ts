/**
 * Codec fuzz (fast-check): random texts — any Unicode, GSM-7 with extension characters, mixed scripts and emoji,
 * texts that sit on a part boundary, and UTF-16 with lone surrogates — go through encodeSubmit, each part is decoded
 * as a phone would (decodePdu), the parts are put back together by their concatenation headers (shuffled first, as
 * a network may deliver them), and the text must come back whole, in the encoding the 23.038 alphabet asks for, in
 * exactly the 3GPP minimal number of parts. That minimum is computed here independently of the encoder: GSM-7 counts
 * septets (an extension character is two and never split), 160 in one part or 153 per concatenated part (152 with a
 * 16-bit reference); UCS-2 counts UTF-16 units (a surrogate pair is two and never split), 70 or 67 (66). Random bytes
 * never make the decoder crash. Runs per property: 300 in the short form, 3000 in the long one (mode.ts).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SmsgateError } from '../../modem/errors.js';
import { countSegments, decodePdu, encodeSubmit } from '../../modem/pdu/index.js';
import { SCALE, writeFigures } from './mode.js';

const RUNS = SCALE.codecRuns;
const started = Date.now();
const figures = { properties: 0, runs: 0, texts: 0, parts: 0, failures: 0 };

afterAll(() => {
  writeFigures('codec', { ...figures, runsPerProperty: RUNS, seconds: Math.round((Date.now() - started) / 100) / 10 });
});

/** Runs a property `runs` times and counts it for the figures (a failure is counted, then thrown). */
function check(property: Parameters<typeof fc.assert>[0], runs = RUNS): void {
  figures.properties++;
  figures.runs += runs;
  try {
    fc.assert(property, { numRuns: runs });
  } catch (error) {
    figures.failures++;
    throw error;
  }
}

/**
 * The fewest parts for a sequence of unit costs, by dynamic programming over every cut — written independently of
 * the encoder's greedy splitter, so the two can check each other.
 */
function minimalParts(costs: number[], single: number, multi: number): number {
  const total = costs.reduce((a, b) => a + b, 0);
  if (total <= single) return 1;
  const best = new Array<number>(costs.length + 1).fill(Infinity);
  best[0] = 0;
  for (let end = 1; end <= costs.length; end++) {
    let load = 0;
    for (let start = end - 1; start >= 0; start--) {
      load += costs[start]!;
      if (load > multi) break;
      best[end] = Math.min(best[end]!, best[start]! + 1);
    }
  }
  return best[costs.length]!;
}

/** 23.038's default alphabet (ESC aside) and its extension table, whose characters cost two septets. */
const BASIC = [...'@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà'];
const EXTENSION = new Set(['^', '{', '}', '\\', '[', '~', ']', '|', '€', '\f']);
const GSM_CHARS = [...BASIC, ...EXTENSION];
const GSM_SET = new Set(GSM_CHARS);

/** The septets of a GSM-7 text, or null when a character has no GSM-7 form. */
function septetCost(text: string): number | null {
  let n = 0;
  for (const ch of text) {
    if (!GSM_SET.has(ch)) return null;
    n += EXTENSION.has(ch) ? 2 : 1;
  }
  return n;
}

const gsmText = fc.array(fc.constantFrom(...GSM_CHARS), { maxLength: 700 }).map((chars) => chars.join(''));
// Any code points, astral ones included (emoji), as a phone's keyboard would give; lone surrogates are excluded.
const anyText = fc.string({ unit: 'binary', maxLength: 400 });
const mixedText = fc
  .array(fc.oneof(fc.constantFrom(...GSM_CHARS), fc.constantFrom('ж', 'Я', '😀', '👍🏽', '€', 'ñ', 'ç', '—', '\u00a0', 'e\u0301', '\u0000', '\u200d')), { maxLength: 400 })
  .map((chars) => chars.join(''));
/**
 * Texts on a part boundary: a run of plain characters of a length around 153/160 or 67/70 (or twice that), with an
 * extension character, an emoji or a Cyrillic letter at a random place — where a splitter that counts characters
 * instead of septets or units, or cuts a pair, goes wrong.
 */
const boundaryText = fc
  .record({
    base: fc.constantFrom('a', 'ж'),
    length: fc.oneof(fc.integer({ min: 60, max: 75 }), fc.integer({ min: 128, max: 140 }), fc.integer({ min: 148, max: 165 }), fc.integer({ min: 300, max: 310 })),
    // Where a cut falls (66/67, 133/134, 152/153, 159/160, 305/306), or anywhere.
    insert: fc.array(
      fc.record({
        ch: fc.constantFrom('€', '[', '\f', '😀', 'ж', 'e\u0301'),
        at: fc.oneof(fc.nat(), fc.integer({ min: 64, max: 68 }), fc.integer({ min: 131, max: 135 }), fc.integer({ min: 150, max: 161 }), fc.integer({ min: 303, max: 307 })),
      }),
      { maxLength: 3 },
    ),
  })
  .map(({ base, length, insert }) => {
    const chars: string[] = Array.from({ length }, () => base);
    for (const { ch, at } of insert) chars.splice(at % (chars.length + 1), 0, ch);
    return chars.join('');
  });

/** A shuffle decided by fast-check (so a failing order is reproduced and shrunk). */
function shuffled<T>(items: T[], keys: number[]): T[] {
  return items
    .map((item, i) => ({ item, key: keys[i % Math.max(1, keys.length)] ?? 0, i }))
    .sort((a, b) => a.key - b.key || a.i - b.i)
    .map((x) => x.item);
}

function roundTrip(input: string, concat16: boolean, order: number[]): void {
  const reference = concat16 ? 0xabcd : 0xab;
  const message = encodeSubmit({ to: '+79161234567', text: input, concat16, reference });
  figures.texts++;
  figures.parts += message.parts.length;
  // The encoder sends the canonical composition (NFC) of the text, as phones send it.
  const text = input.normalize('NFC');
  const septets = septetCost(text);
  const encoding = septets === null ? 'ucs2' : 'gsm7';
  expect(message.encoding).toBe(encoding);

  // What a phone receives, in any order, put back together by the concatenation header.
  const decoded = shuffled(
    message.parts.map((part) => {
      const d = decodePdu(part.pdu);
      // AT+CMGS's length is the TPDU's; a part is at most first, MR, DA (8 here), PID, DCS, VP, UDL and 140 octets.
      expect(d.length).toBe(part.length);
      expect(d.length).toBeLessThanOrEqual(8 + 1 + 1 + 140 + 4);
      return d;
    }),
    order,
  );
  const multipart = message.parts.length > 1;
  for (const d of decoded) {
    expect(d.type).toBe('submit');
    expect(d.encoding).toBe(encoding);
    if (multipart) expect(d.concat).toMatchObject({ ref: reference, total: message.parts.length, bits: concat16 ? 16 : 8 });
    else expect(d.concat).toBeNull();
  }
  const sorted = multipart ? [...decoded].sort((a, b) => a.concat!.seq - b.concat!.seq) : decoded;
  expect(sorted.map((d) => d.concat?.seq ?? 1)).toEqual(sorted.map((_, i) => i + 1));
  const ordered = sorted.map((d) => ({ ...d, text: d.text ?? '' }));
  expect(sorted.every((d) => d.text !== null)).toBe(true);
  expect(ordered.map((d) => d.text).join('')).toBe(text);

  // Each part within its capacity, and no pair cut: an escape pair would decode to a stray character, and a cut
  // surrogate pair would leave a part that is not well-formed UTF-16 (for a well-formed text).
  const single = encoding === 'gsm7' ? 160 : 70;
  const multi = encoding === 'gsm7' ? (concat16 ? 152 : 153) : concat16 ? 66 : 67;
  for (const d of ordered) {
    const units = encoding === 'gsm7' ? septetCost(d.text) : d.text.length;
    expect(units).not.toBeNull();
    expect(units!).toBeLessThanOrEqual(multipart ? multi : single);
    if (text.isWellFormed()) expect(d.text.isWellFormed()).toBe(true);
  }
  for (let i = 1; i < ordered.length; i++) {
    const cut = /[\ud800-\udbff]$/.test(ordered[i - 1]!.text) && /^[\udc00-\udfff]/.test(ordered[i]!.text);
    expect(cut, `a surrogate pair cut between parts ${i} and ${i + 1}`).toBe(false);
  }

  // The 3GPP minimum, computed here: code points cost 1 or 2 septets (GSM-7) or 1 or 2 UTF-16 units (UCS-2).
  const costs = [...text].map((ch) => (encoding === 'gsm7' ? (EXTENSION.has(ch) ? 2 : 1) : ch.length));
  expect(message.parts.length).toBe(minimalParts(costs, single, multi));
  // The counter the API and the send form show agrees with what is sent.
  expect(countSegments(input, { concat16 }).parts).toBe(message.parts.length);
}

const order = fc.array(fc.nat(), { maxLength: 8 });

describe('encode -> decode (parts shuffled, reassembled by header) round trips in the minimal number of parts', () => {
  it('GSM-7 texts with extension characters', () => {
    check(fc.property(gsmText, fc.boolean(), order, roundTrip));
  });

  it('any Unicode text', () => {
    check(fc.property(anyText, fc.boolean(), order, roundTrip));
  });

  it('mixed Latin, Cyrillic, emoji, combining marks and the characters that force UCS-2', () => {
    check(fc.property(mixedText, fc.boolean(), order, roundTrip));
  });

  it('texts on a part boundary, with an extension character or an emoji where the cut falls', () => {
    check(fc.property(boundaryText, fc.boolean(), order, roundTrip));
  });

  it('UTF-16 with lone surrogates goes through code unit for code unit (the API refuses such texts before)', () => {
    check(fc.property(fc.string({ unit: fc.oneof(fc.constantFrom('\ud800', '\udfff', '\ud83d', '\ude00'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 200 }), fc.boolean(), order, roundTrip));
  });
});

describe('the decoder on random input', () => {
  it('either decodes or throws a PDU error; it never crashes with anything else', () => {
    check(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (bytes) => {
        const hex = Buffer.from(bytes).toString('hex');
        try {
          const decoded = decodePdu(hex);
          expect(['deliver', 'submit', 'status-report']).toContain(decoded.type);
        } catch (error) {
          expect(error).toBeInstanceOf(SmsgateError);
          expect((error as SmsgateError).code).toMatch(/^PDU_(INVALID|UNSUPPORTED)$/);
        }
      }),
      RUNS * 10,
    );
  });

  it('refuses every PDU whose user data is cut short or flipped into a longer length', () => {
    check(
      fc.property(mixedText.filter((t) => t.length > 0), fc.integer({ min: 1, max: 40 }), (text, cut) => {
        const pdu = encodeSubmit({ to: '+79161234567', text, reference: 1 }).parts[0]!.pdu;
        const short = pdu.slice(0, Math.max(2, pdu.length - 2 * cut));
        expect(() => decodePdu(short)).toThrowError(SmsgateError);
      }),
    );
  });
});
