/** Encoding choice and part counts at every boundary of 3GPP TS 23.038 / 23.040. */
import { describe, expect, it } from 'vitest';
import { countSegments, decodePdu, encodeSubmit, segmentText } from '../../modem/pdu/index.js';

describe('the encoding is GSM-7 unless a character is outside it', () => {
  it.each([
    ['plain ASCII', 'Hello, world!', 'gsm7'],
    ['GSM-7 accents and Greek', 'èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉÄÖÑÜ§¿äöñüà¡£¥¤', 'gsm7'],
    ['the extension table', '^{}\\[~]|€\f', 'gsm7'],
    ['Cyrillic', 'Привет', 'ucs2'],
    ['an emoji', 'ok 👍', 'ucs2'],
    ['a lower-case c cedilla (only Ç is in the table)', 'garçon', 'ucs2'],
    ['a typographic dash', 'a — b', 'ucs2'],
    ['a grave accent', 'a `b`', 'ucs2'],
  ])('%s', (_name, text, encoding) => {
    expect(countSegments(text).encoding).toBe(encoding);
  });
});

describe('part counts at the boundaries', () => {
  it.each([
    ['GSM-7', 'a', 160, 1],
    ['GSM-7', 'a', 161, 2],
    ['GSM-7', 'a', 306, 2],
    ['GSM-7', 'a', 307, 3],
    ['GSM-7', 'a', 459, 3],
    ['GSM-7', 'a', 460, 4],
    ['UCS-2', 'ж', 70, 1],
    ['UCS-2', 'ж', 71, 2],
    ['UCS-2', 'ж', 134, 2],
    ['UCS-2', 'ж', 135, 3],
    ['UCS-2', 'ж', 201, 3],
    ['UCS-2', 'ж', 202, 4],
  ])('%s: %s × %i is %i part(s)', (_alphabet, ch, n, parts) => {
    expect(countSegments(ch.repeat(n)).parts).toBe(parts);
    expect(encodeSubmit({ to: '+1', text: ch.repeat(n) }).parts).toHaveLength(parts);
  });

  it('an extension character costs two septets: 80 × € fill one part, 81 need two', () => {
    expect(countSegments('€'.repeat(80))).toMatchObject({ parts: 1, units: 160, remaining: 0 });
    expect(countSegments('€'.repeat(81))).toMatchObject({ parts: 2, units: 162 });
  });

  it('with a 16-bit reference a part holds 152 septets / 66 units', () => {
    expect(countSegments('a'.repeat(304), { concat16: true }).parts).toBe(2);
    expect(countSegments('a'.repeat(305), { concat16: true }).parts).toBe(3);
    expect(countSegments('ж'.repeat(132), { concat16: true }).parts).toBe(2);
    expect(countSegments('ж'.repeat(133), { concat16: true }).parts).toBe(3);
    const parts = encodeSubmit({ to: '+1', text: 'a'.repeat(305), concat16: true, reference: 0x1234 }).parts;
    expect(parts.map((p) => decodePdu(p.pdu).concat)).toEqual([
      { ref: 0x1234, total: 3, seq: 1, bits: 16 },
      { ref: 0x1234, total: 3, seq: 2, bits: 16 },
      { ref: 0x1234, total: 3, seq: 3, bits: 16 },
    ]);
    expect(parts.map((p) => decodePdu(p.pdu).text!.length)).toEqual([152, 152, 1]);
  });
});

describe('pairs are never split across parts', () => {
  it('an extension character that would straddle the 153rd septet moves whole to the next part', () => {
    const text = 'a'.repeat(152) + '€' + 'b'.repeat(10);
    const { segments } = segmentText(text);
    expect(segments.map((s) => s.units)).toEqual([152, 12]);
    const decoded = encodeSubmit({ to: '+1', text, reference: 1 }).parts.map((p) => decodePdu(p.pdu).text);
    expect(decoded).toEqual(['a'.repeat(152), '€' + 'b'.repeat(10)]);
  });

  it('an extension character that ends exactly on the 153rd septet stays', () => {
    const text = 'a'.repeat(151) + '[' + 'b'.repeat(10);
    expect(segmentText(text).segments.map((s) => s.text)).toEqual(['a'.repeat(151) + '[', 'b'.repeat(10)]);
  });

  it('an emoji that would straddle the 67th unit moves whole to the next part', () => {
    const text = 'я'.repeat(66) + '😀' + 'б'.repeat(5);
    const decoded = encodeSubmit({ to: '+1', text, reference: 1 }).parts.map((p) => decodePdu(p.pdu).text);
    expect(decoded).toEqual(['я'.repeat(66), '😀' + 'б'.repeat(5)]);
  });

  it('an emoji that ends exactly on the 67th unit stays', () => {
    const text = 'я'.repeat(65) + '😀' + 'б'.repeat(5);
    expect(segmentText(text).segments.map((s) => s.text)).toEqual(['я'.repeat(65) + '😀', 'б'.repeat(5)]);
  });

  it('a single part may end on an emoji: 68 letters and one emoji are 70 units, one part', () => {
    expect(countSegments('я'.repeat(68) + '😀')).toMatchObject({ parts: 1, units: 70, remaining: 0 });
  });
});

describe('the counter the send form shows', () => {
  it('counts what is left in the current part', () => {
    expect(countSegments('')).toEqual({ encoding: 'gsm7', parts: 1, units: 0, perPart: 160, remaining: 160 });
    expect(countSegments('Hi €')).toEqual({ encoding: 'gsm7', parts: 1, units: 5, perPart: 160, remaining: 155 });
    expect(countSegments('a'.repeat(161))).toEqual({ encoding: 'gsm7', parts: 2, units: 161, perPart: 153, remaining: 145 });
    expect(countSegments('Привет')).toEqual({ encoding: 'ucs2', parts: 1, units: 6, perPart: 70, remaining: 64 });
    // 33 emoji fill 66 of 67 units (a 34th would straddle), so part 2 holds 3 and has 61 left.
    expect(countSegments('😀'.repeat(36))).toEqual({ encoding: 'ucs2', parts: 2, units: 72, perPart: 67, remaining: 61 });
  });

  it('forcing GSM-7 transliterates what it lacks instead of switching to UCS-2', () => {
    expect(countSegments('Zkouška', { encoding: 'gsm7' })).toMatchObject({ encoding: 'gsm7', units: 7 });
    expect(decodePdu(encodeSubmit({ to: '+1', text: 'Zkouška č', encoding: 'gsm7' }).parts[0]!.pdu).text).toBe('Zkouska c');
    expect(decodePdu(encodeSubmit({ to: '+1', text: 'Жук', encoding: 'gsm7' }).parts[0]!.pdu).text).toBe('???');
  });

  it('composes decomposed accents first (NFC): "e" + U+0301 is GSM-7 "é"', () => {
    expect(countSegments('Caf\u0065\u0301')).toMatchObject({ encoding: 'gsm7', units: 4 });
    expect(decodePdu(encodeSubmit({ to: '+1', text: 'Caf\u0065\u0301' }).parts[0]!.pdu).text).toBe('Café');
  });
});
