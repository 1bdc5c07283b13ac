/** The SMS-SUBMIT/DELIVER encoder, field by field, against published examples and 3GPP TS 23.040. */
import { describe, expect, it } from 'vitest';
import {
  MAX_VALIDITY_MINUTES,
  decodePdu,
  encodeDeliver,
  encodeSubmit,
  relativeValidity,
  validityMinutes,
} from '../../modem/pdu/index.js';
import { packSeptets, textToSeptets } from '../../modem/pdu/gsm7.js';
import { toHex } from '../../modem/pdu/octets.js';
import { errorOf } from '../helpers/errors.js';

describe('published examples', () => {
  it('23.038 §6.1.2.1.1: "hellohello" packs to E8329BFD4697D9EC37', () => {
    expect(toHex(packSeptets(textToSeptets('hellohello')))).toBe('E8329BFD4697D9EC37');
  });

  it('the classic SMS-SUBMIT: "hellohello" to +46708251358, valid 4 days', () => {
    const message = encodeSubmit({ to: '+46708251358', text: 'hellohello', validity: 4 * 1440 });
    expect(message.parts).toEqual([{ pdu: '0011000B916407281553F80000AA0AE8329BFD4697D9EC37', length: 23, text: 'hellohello' }]);
  });

  it('the SMS-DELIVER of Gammu\'s getallsms dialogue decodes to "Hello world"', () => {
    const pdu = '07919761989901F0040B919700214365F70000422011311120610BC8329BFD06DDDF723619';
    expect(decodePdu(pdu)).toMatchObject({
      type: 'deliver',
      smsc: '+79168999100',
      number: '+79001234567',
      text: 'Hello world',
      timestamp: '2024-02-11T13:11:02+04:00',
    });
  });
});

describe('SMS-SUBMIT fields', () => {
  const one = (options: Partial<Parameters<typeof encodeSubmit>[0]>) =>
    encodeSubmit({ to: '+79161234567', text: 'Test', ...options });

  it('puts 00 for the SMSC, 0 for TP-MR, and relative validity 0xFF by default, like Gammu', () => {
    const pdu = one({}).parts[0]!.pdu;
    expect(pdu.slice(0, 6)).toBe('001100');
    expect(decodePdu(pdu)).toMatchObject({ smsc: null, reference: 0, validity: MAX_VALIDITY_MINUTES, pid: 0 });
  });

  it('writes an international number as type 0x91 and a national one as 0x81', () => {
    expect(one({}).parts[0]!.pdu.slice(6, 10)).toBe('0B91');
    expect(one({ to: '89161234567' }).parts[0]!.pdu.slice(6, 22)).toBe('0B819861214365F7');
    expect(decodePdu(one({ to: '89161234567' }).parts[0]!.pdu)).toMatchObject({ number: '89161234567', numberType: 0x81 });
    expect(decodePdu(one({ to: '*100#' }).parts[0]!.pdu).number).toBe('*100#');
  });

  it('tolerates spaces, dashes and brackets in the number but nothing else', () => {
    expect(decodePdu(one({ to: '+7 (916) 123-45-67' }).parts[0]!.pdu).number).toBe('+79161234567');
    expect(errorOf(() => one({ to: '+7916abc' })).code).toBe('BAD_NUMBER');
    expect(errorOf(() => one({ to: '' })).code).toBe('BAD_NUMBER');
    expect(errorOf(() => one({ to: '1'.repeat(21) })).code).toBe('BAD_NUMBER');
  });

  it('flash is message class 0: DCS F0 for GSM-7, 18 for UCS-2 (as Gammu writes)', () => {
    expect(decodePdu(one({ flash: true }).parts[0]!.pdu)).toMatchObject({ class: 0, encoding: 'gsm7' });
    expect(one({ flash: true }).parts[0]!.pdu).toContain('0B919761214365F700F0FF');
    expect(one({ flash: true, text: 'Тест' }).parts[0]!.pdu).toContain('0B919761214365F70018FF');
    expect(decodePdu(one({ messageClass: 2 }).parts[0]!.pdu).class).toBe(2);
  });

  it('replace-ID n is TP-PID 0x40+n for n = 1..7 and refuses anything else', () => {
    for (let n = 1; n <= 7; n++) {
      const decoded = decodePdu(one({ replace: n }).parts[0]!.pdu);
      expect(decoded).toMatchObject({ pid: 0x40 + n, replace: n });
    }
    for (const bad of [0, 8, 1.5, -1]) expect(errorOf(() => one({ replace: bad })).field).toBe('replace');
  });

  it('drops replace-ID on a multipart text, with a warning, because the parts would replace each other', () => {
    const message = one({ replace: 3, text: 'x'.repeat(200) });
    expect(message.parts.map((p) => decodePdu(p.pdu).pid)).toEqual([0, 0]);
    expect(message.warnings).toEqual(['replace-ID 3 ignored: the text needs 2 parts']);
  });

  it('sets TP-SRR on every part when a report is requested', () => {
    const parts = one({ report: true, text: 'x'.repeat(200) }).parts;
    for (const part of parts) expect(decodePdu(part.pdu).reportRequested).toBe(true);
    expect(decodePdu(one({}).parts[0]!.pdu).reportRequested).toBe(false);
  });

  it('omits TP-VP (and clears TP-VPF) when validity is null', () => {
    const pdu = one({ validity: null }).parts[0]!.pdu;
    expect(pdu.slice(0, 4)).toBe('0001');
    expect(decodePdu(pdu).validity).toBeNull();
  });

  it('gives the AT+CMGS length: the TPDU without the SMSC field', () => {
    const part = one({ smsc: '+79168999100' }).parts[0]!;
    expect(part.pdu.slice(0, 16)).toBe('07919761989901F0');
    expect(part.length).toBe(part.pdu.length / 2 - 8);
    expect(one({}).parts[0]!.length).toBe(one({}).parts[0]!.pdu.length / 2 - 1);
  });

  it('puts the concatenation header first and starts the GSM-7 text on a septet boundary (one fill bit)', () => {
    const part = one({ text: 'a'.repeat(153) + 'b'.repeat(10), reference: 0x42 }).parts[0]!;
    // first octet 51 (UDHI + relative VP), UDL A0 = 160 septets = 7 for the 6-octet header + 153 text septets,
    // then UDH 05 00 03 42 02 01 and 'a' (0x61) shifted left by the one fill bit: C2.
    expect(part.pdu).toMatch(/^0051000B919761214365F70000FFA0050003420201C2/);
    // TPDU: first octet, MR, DA (8), PID, DCS, VP, UDL = 14 octets, then 140 octets of user data.
    expect(part.length).toBe(14 + 140);
  });

  it('uses the reference it is given, and a random one in range otherwise', () => {
    expect(decodePdu(one({ text: 'x'.repeat(200), reference: 255 }).parts[1]!.pdu).concat).toEqual({ ref: 255, total: 2, seq: 2, bits: 8 });
    expect(one({ text: 'x'.repeat(200) }).reference).toBeLessThanOrEqual(255);
    expect(one({ text: 'x'.repeat(400), concat16: true }).reference).toBeLessThanOrEqual(0xffff);
    expect(one({}).reference).toBeNull();
    expect(errorOf(() => one({ text: 'x'.repeat(200), reference: 256 })).field).toBe('reference');
    expect(errorOf(() => one({ text: 'x'.repeat(200), reference: 65536, concat16: true })).field).toBe('reference');
  });

  it('refuses a text that would need more than 255 parts', () => {
    expect(errorOf(() => one({ text: 'x'.repeat(153 * 255 + 1) })).field).toBe('text');
    expect(one({ text: 'x'.repeat(153 * 255) }).parts).toHaveLength(255);
  });
});

describe('relative validity, every range of 23.040 §9.2.3.12.1', () => {
  it.each([
    [5, 0],
    [6, 1],
    [60, 11],
    [720, 143],
    [721, 144],
    [750, 144],
    [1440, 167],
    [1441, 168],
    [2880, 168],
    [3 * 1440 + 1, 170],
    [30 * 1440, 196],
    [30 * 1440 + 1, 197],
    [35 * 1440, 197],
    [63 * 7 * 1440, 255],
  ])('%i minutes -> TP-VP %i (never shorter than asked)', (minutes, vp) => {
    expect(relativeValidity(minutes)).toBe(vp);
    expect(validityMinutes(vp)).toBeGreaterThanOrEqual(minutes);
    if (vp > 0) expect(validityMinutes(vp - 1)).toBeLessThan(minutes);
  });

  it('every TP-VP value maps to itself', () => {
    for (let vp = 0; vp <= 255; vp++) expect(relativeValidity(validityMinutes(vp))).toBe(vp);
  });

  it('refuses zero, negative and longer than 63 weeks', () => {
    for (const bad of [0, -5, Number.NaN, MAX_VALIDITY_MINUTES + 1]) {
      expect(errorOf(() => relativeValidity(bad))).toMatchObject({ code: 'BAD_MESSAGE', field: 'validity' });
    }
  });
});

describe('SMS-DELIVER (the simulator uses it for incoming messages)', () => {
  it.each(['+03:00', '-05:00', '+05:45', '+00:00', '-11:00', '+13:45'])('keeps the time zone %s', (zone) => {
    const timestamp = `2026-11-24T09:15:30${zone}`;
    const pdu = encodeDeliver({ from: '+79161234567', text: 'hi', timestamp }).parts[0]!.pdu;
    expect(decodePdu(pdu)).toMatchObject({ type: 'deliver', timestamp, number: '+79161234567', text: 'hi' });
  });

  it('writes "Z" as +00:00 and refuses offsets that are not whole quarter hours', () => {
    const pdu = encodeDeliver({ from: '1', text: 'hi', timestamp: '2026-01-02T03:04:05Z' }).parts[0]!.pdu;
    expect(decodePdu(pdu).timestamp).toBe('2026-01-02T03:04:05+00:00');
    expect(errorOf(() => encodeDeliver({ from: '1', text: 'hi', timestamp: '2026-01-02T03:04:05+00:10' })).field).toBe('timestamp');
    expect(errorOf(() => encodeDeliver({ from: '1', text: 'hi', timestamp: 'yesterday' })).field).toBe('timestamp');
  });

  it('encodes an alphanumeric sender as TON 101 and decodes it back', () => {
    const pdu = encodeDeliver({ from: 'Sberbank', alphanumeric: true, text: 'Kod 1234', timestamp: '2026-11-24T10:00:00+03:00' })
      .parts[0]!.pdu;
    expect(decodePdu(pdu)).toMatchObject({ number: 'Sberbank', numberType: 0xd0, text: 'Kod 1234' });
    expect(errorOf(() => encodeDeliver({ from: 'TwelveLetter', alphanumeric: true, text: 'x', timestamp: '2026-11-24T10:00:00Z' })).code)
      .toBe('BAD_NUMBER');
    // Eleven characters, but € takes two septets: twelve septets do not fit.
    expect(errorOf(() => encodeDeliver({ from: 'ABCDEFGHIJ€', alphanumeric: true, text: 'x', timestamp: '2026-11-24T10:00:00Z' })).code)
      .toBe('BAD_NUMBER');
  });

  it('concatenates a long incoming text', () => {
    const text = 'Входящее сообщение '.repeat(6);
    const message = encodeDeliver({ from: '+79161234567', text, timestamp: '2026-11-24T10:00:00+03:00', reference: 77 });
    const decoded = message.parts.map((p) => decodePdu(p.pdu));
    expect(decoded.map((d) => d.concat)).toEqual([
      { ref: 77, total: 2, seq: 1, bits: 8 },
      { ref: 77, total: 2, seq: 2, bits: 8 },
    ]);
    expect(decoded.map((d) => d.text).join('')).toBe(text);
  });
});
