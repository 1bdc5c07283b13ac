/** The decoder on hand-made PDUs of each kind, and on every way a PDU can be broken. */
import { describe, expect, it } from 'vitest';
import { classifyStatus, decodePdu, encodeDeliver, encodeSubmit, statusText } from '../../modem/pdu/index.js';
import { toHex } from '../../modem/pdu/octets.js';
import { errorOf } from '../helpers/errors.js';
import { encodeTimestamp } from '../../modem/pdu/timestamp.js';

const SCTS = toHex(encodeTimestamp('2026-11-24T09:15:00+03:00'));
const DT = toHex(encodeTimestamp('2026-11-24T09:15:05+03:00'));
/** An SMS-DELIVER from +79161234567 up to TP-DCS (SMSC 00, first octet `first`), for hand-made user data. */
const deliverHead = (first: string, dcs: string) => `00${first}0B919761214365F700${dcs}${SCTS}`;

/** An SMS-STATUS-REPORT as modems list it: SMSC, 06 (MTI 10, MMS), MR, RA, SCTS, DT, ST. */
function statusReport(reference: number, status: number, extra = ''): string {
  const mr = reference.toString(16).padStart(2, '0');
  const st = status.toString(16).padStart(2, '0');
  return `07919761989901F006${mr}0B919761214365F7${SCTS}${DT}${st}${extra}`;
}

describe('SMS-STATUS-REPORT', () => {
  it('gives the reference, the recipient, both time stamps and the status', () => {
    expect(decodePdu(statusReport(0x2a, 0x00))).toMatchObject({
      type: 'status-report',
      reference: 42,
      number: '+79161234567',
      timestamp: '2026-11-24T09:15:00+03:00',
      dischargeTime: '2026-11-24T09:15:05+03:00',
      status: 'delivered',
      statusCode: 0,
      statusText: 'received by the recipient',
      text: null,
    });
  });

  it.each([
    [0x00, 'delivered'],
    [0x01, 'delivered'],
    [0x02, 'delivered'],
    [0x1f, 'delivered'],
    [0x20, 'pending'],
    [0x21, 'pending'],
    [0x3f, 'pending'],
    [0x40, 'failed'],
    [0x41, 'failed'],
    [0x46, 'failed'],
    [0x60, 'failed'],
    [0x65, 'failed'],
    [0x7f, 'failed'],
    [0x80, 'failed'],
    [0xff, 'failed'],
  ] as const)('TP-ST %i is %s', (code, status) => {
    expect(classifyStatus(code)).toBe(status);
    const decoded = decodePdu(statusReport(1, code));
    expect(decoded.status).toBe(status);
    expect(decoded.statusCode).toBe(code);
    expect(decoded.statusText!.length).toBeGreaterThan(5);
  });

  it('names the reasons', () => {
    expect(statusText(0x46)).toBe('validity period expired');
    expect(statusText(0x62)).toBe('no response from the recipient, no longer trying');
    expect(statusText(0x15)).toBe('completed (SC-specific reason)');
  });

  it('reads the optional PID, DCS and user data announced by TP-PI', () => {
    // TP-PI 07: PID 00, DCS 00, UDL 02 "Hi"
    expect(decodePdu(statusReport(5, 0, '07000002C834'))).toMatchObject({ text: 'Hi', status: 'delivered' });
  });

  it('keeps the report when the modem pads it with FF octets', () => {
    const decoded = decodePdu(statusReport(5, 0, 'FFFFFFFFFFFF'));
    expect(decoded).toMatchObject({ reference: 5, status: 'delivered' });
    expect(decoded.warnings[0]).toMatch(/optional part after TP-ST was ignored/);
  });
});

describe('SMS-DELIVER variants', () => {
  it('decodes 8-bit data as hex, not as text', () => {
    // DCS 04: 8-bit, 3 octets DEADBE
    const decoded = decodePdu(deliverHead('04', '04') + '03DEADBE');
    expect(decoded).toMatchObject({ encoding: '8bit', text: null, data: 'DEADBE' });
  });

  it('decodes UCS-2 with surrogate pairs', () => {
    const pdu = encodeDeliver({ from: '+1', text: 'Привет 👋🏽!', timestamp: '2026-11-24T10:00:00Z' }).parts[0]!.pdu;
    expect(decodePdu(pdu)).toMatchObject({ encoding: 'ucs2', text: 'Привет 👋🏽!' });
  });

  it('decodes the extension table, and an undefined escape as the default-table character', () => {
    const pdu = encodeDeliver({ from: '+1', text: '{€}', timestamp: '2026-11-24T10:00:00Z' }).parts[0]!.pdu;
    expect(decodePdu(pdu).text).toBe('{€}');
    // septets 1B 41 ("ESC A", undefined in the extension table) then 42: shows "AB"
    expect(decodePdu(deliverHead('04', '00') + '039BA010').text).toBe('AB');
  });

  it('reads "0181", Gammu\'s way of writing no SMSC, as no SMSC', () => {
    const tpdu = encodeSubmit({ to: '+1', text: 'x' }).parts[0]!.pdu.slice(2);
    expect(decodePdu('0181' + tpdu).smsc).toBeNull();
    expect(decodePdu('00' + tpdu).smsc).toBeNull();
  });

  it('takes a PDU without an SMSC field when its length is what +CMGR said', () => {
    const part = encodeSubmit({ to: '+79161234567', text: 'no SMSC' }).parts[0]!;
    const tpdu = part.pdu.slice(2);
    expect(decodePdu(tpdu, { tpduLength: part.length })).toMatchObject({ smsc: null, text: 'no SMSC', warnings: [] });
    expect(decodePdu(part.pdu, { tpduLength: part.length })).toMatchObject({ text: 'no SMSC', warnings: [] });
  });

  it('ignores a concatenation header that is out of range (23.040 §9.2.3.24.1) but keeps the text', () => {
    // UCS-2 with UDH 05 00 03 01 02 03: part 3 of 2, then "AB"
    const decoded = decodePdu(deliverHead('44', '08') + '0A' + '050003010203' + '00410042');
    expect(decoded.concat).toBeNull();
    expect(decoded.text).toBe('AB');
    expect(decoded.warnings).toContain('concatenation part 3 of 2 is out of range; the header is ignored');
  });

  it('keeps a message whose time stamp is not a real time, with the time stamp null and a warning', () => {
    for (const stamp of ['00000000000000', '62312490510021', '6211A490510021', '422013021421FF', '62112490510696']) {
      const decoded = decodePdu(`00040B919761214365F70000${stamp}0131`);
      expect(decoded).toMatchObject({ text: '1', timestamp: null });
      expect(decoded.warnings[0]).toMatch(/TP-SCTS\) is not a valid date and time/);
    }
  });

  it('reads a status report whose TP-PI is extended (bit 7) by skipping the reserved octets', () => {
    expect(decodePdu(statusReport(5, 0, '840002C834'))).toMatchObject({ text: 'Hi', warnings: [] });
  });

  it('reads a stored draft with an empty recipient', () => {
    expect(decodePdu('00110000000000FF0131')).toMatchObject({ type: 'submit', number: '', text: '1' });
  });

  it("drops the trailing '@' of a 7-character alphanumeric sender whose length counts octets × 2", () => {
    // "Test SM" packed is 7 octets; the SMSC wrote 0x0E semi-octets, which reads as 8 septets.
    const name = encodeDeliver({ from: 'Test SM', alphanumeric: true, text: 'x', timestamp: '2026-11-24T10:00:00Z' }).parts[0]!.pdu;
    const odd = name.replace(/^00040DD0/, '00040ED0');
    expect(decodePdu(odd).number).toBe('Test SM');
  });

  it('warns when a reserved TP-DCS bit decides the alphabet', () => {
    expect(decodePdu(deliverHead('04', 'F9') + '0400410042').warnings).toContain('TP-DCS F9 sets a reserved bit; read as ucs2');
  });
});

describe('broken PDUs give one clear error, never text', () => {
  it.each([
    ['', /empty/],
    ['0011000B91', /ends inside/],
    ['0G11', /not hex/],
    ['00110', /odd number/],
    ['0013000B919761214365F70000FF0431D98C56', /reserved/], // TP-MTI 3
    ['0011000B919761214365F70000FFA1' + '00'.repeat(141), /exceeds/], // UDL 161 septets
    ['0011000B919761214365F70008FF8D' + '00'.repeat(141), /exceeds/], // UDL 141 octets
    ['0011000B919761214365F70008FF03000041', /not a whole number/], // odd UCS-2
    ['0051000B919761214365F70000FF05090003010201', /header claims/], // UDHL 9 in 5 octets... of user data
    ['0051000B919761214365F70008FF0605000401020100', /claims 4 octets/], // IE length past the header
    ['0C911234', /SMSC field claims 12|ends inside/],
  ])('%s', (pdu, message) => {
    const error = errorOf(() => decodePdu(pdu));
    expect(error.code).toMatch(/^PDU_/);
    expect(error.message).toMatch(message);
  });

  it('refuses compressed text and national language shift tables as unsupported, not as garbage', () => {
    expect(errorOf(() => decodePdu(deliverHead('04', '20') + '0131')).code).toBe('PDU_UNSUPPORTED');
    // UDH 03 25 01 01: national language single shift, Turkish; then one septet
    expect(errorOf(() => decodePdu(deliverHead('44', '00') + '06' + '032501011003')).code).toBe('PDU_UNSUPPORTED');
  });

  it('every cut-short SMS-SUBMIT and SMS-DELIVER is refused', () => {
    const pdus = [
      ...encodeSubmit({ to: '+79161234567', text: 'Привет '.repeat(12), reference: 3, smsc: '+79168999100' }).parts,
      ...encodeSubmit({ to: '89161234567', text: 'a{b}'.repeat(50), reference: 3 }).parts,
      ...encodeDeliver({ from: 'Bank', alphanumeric: true, text: 'code 1234', timestamp: '2026-11-24T10:00:00+03:00' }).parts,
    ].map((p) => p.pdu);
    for (const pdu of pdus) {
      expect(() => decodePdu(pdu)).not.toThrow();
      for (let cut = 2; cut < pdu.length; cut += 2) {
        expect(errorOf(() => decodePdu(pdu.slice(0, cut))).code, `${pdu.slice(0, cut)}`).toBe('PDU_INVALID');
      }
    }
  });
});
