/**
 * Property-based tests (fast-check): random texts round-trip through encode -> decode in the minimal number of
 * parts, and random bytes never make the decoder crash or invent text.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SmsgateError } from '../../modem/errors.js';
import { countSegments, decodePdu, encodeSubmit, isGsm7 } from '../../modem/pdu/index.js';

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

const EXTENSION = new Set(['^', '{', '}', '\\', '[', '~', ']', '|', '€', '\f']);
const GSM_CHARS = [
  ...'@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
  ...EXTENSION,
];

const gsmText = fc.array(fc.constantFrom(...GSM_CHARS), { maxLength: 700 }).map((chars) => chars.join(''));
// Any code points, astral ones included (emoji), as a phone's keyboard would give; lone surrogates are excluded.
const anyText = fc.string({ unit: 'binary', maxLength: 400 });
const mixedText = fc
  .array(fc.oneof(fc.constantFrom(...GSM_CHARS), fc.constantFrom('ж', 'Я', '😀', '👍🏽', '€', 'ñ', 'ç', '—', '\u00a0')), { maxLength: 400 })
  .map((chars) => chars.join(''));

function roundTrip(text: string, concat16: boolean): void {
  const message = encodeSubmit({ to: '+79161234567', text, concat16, reference: concat16 ? 0xabcd : 0xab });
  const decoded = message.parts.map((part) => decodePdu(part.pdu));
  // The encoder sends the canonical composition (NFC) of the text, as phones do.
  text = text.normalize('NFC');
  expect(decoded.map((d) => d.text).join('')).toBe(text);
  for (const [i, d] of decoded.entries()) {
    expect(d.encoding).toBe(message.encoding);
    expect(d.length).toBe(message.parts[i]!.length);
    expect(d.length).toBeLessThanOrEqual(8 + 1 + 1 + 140 + 4); // first, MR, DA (≤ 8 here), PID, DCS, VP, UDL + 140
    if (message.parts.length > 1) {
      expect(d.concat).toEqual({ ref: concat16 ? 0xabcd : 0xab, total: message.parts.length, seq: i + 1, bits: concat16 ? 16 : 8 });
    } else {
      expect(d.concat).toBeNull();
    }
  }
  const gsm = message.encoding === 'gsm7';
  expect(gsm).toBe(isGsm7(text));
  const costs = [...text].map((ch) => (gsm ? (EXTENSION.has(ch) ? 2 : 1) : ch.length));
  const multi = gsm ? (concat16 ? 152 : 153) : concat16 ? 66 : 67;
  expect(message.parts.length).toBe(minimalParts(costs, gsm ? 160 : 70, multi));
  expect(countSegments(text, { concat16 }).parts).toBe(message.parts.length);
}

describe('encode -> decode round trips in the minimal number of parts', () => {
  it('GSM-7 texts with extension characters', () => {
    fc.assert(fc.property(gsmText, fc.boolean(), (text, concat16) => roundTrip(text, concat16)), { numRuns: 300 });
  });

  it('any Unicode text', () => {
    fc.assert(fc.property(anyText, fc.boolean(), (text, concat16) => roundTrip(text, concat16)), { numRuns: 300 });
  });

  it('mixed Latin, Cyrillic, emoji and the characters that force UCS-2', () => {
    fc.assert(fc.property(mixedText, fc.boolean(), (text, concat16) => roundTrip(text, concat16)), { numRuns: 300 });
  });
});

describe('the decoder on random input', () => {
  it('either decodes or throws a PDU error; it never crashes with anything else', () => {
    fc.assert(
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
      { numRuns: 3000 },
    );
  });

  it('refuses every PDU whose user data is cut short or flipped into a longer length', () => {
    fc.assert(
      fc.property(mixedText.filter((t) => t.length > 0), fc.integer({ min: 1, max: 40 }), (text, cut) => {
        const pdu = encodeSubmit({ to: '+79161234567', text, reference: 1 }).parts[0]!.pdu;
        const short = pdu.slice(0, Math.max(2, pdu.length - 2 * cut));
        expect(() => decodePdu(short)).toThrowError(SmsgateError);
      }),
      { numRuns: 300 },
    );
  });
});
