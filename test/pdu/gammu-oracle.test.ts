/**
 * Gammu as the judge: every PDU our encoder writes is decoded by Gammu 1.42 (python3-gammu) to the same text,
 * class, replace-ID and concatenation header, and Gammu, encoding back the message it decoded, writes our TPDU byte
 * for byte (which also covers TP-SRR and TP-VP, which python-gammu's decoded dictionary cannot show directly).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_VALIDITY_MINUTES,
  type SubmitOptions,
  countSegments,
  encodeSubmit,
  relativeValidity,
  validityMinutes,
} from '../../modem/pdu/index.js';
import { type GammuSms, type OracleAnswer, gammuOracle } from '../helpers/gammu.js';

const RU_LONG =
  'Ваш код подтверждения: 4821. Никому не сообщайте этот код, даже сотрудникам банка. ' +
  'Если вы не запрашивали код, позвоните по номеру на обратной стороне карты. Срок действия кода — 5 минут.';
const EMOJI = 'Happy birthday! 🎉🎂🥳 See you at 7 👍 Love, Mum ❤️ '.repeat(3);
// Without "~": Gammu 1.42's decoder doubles a "~" in UCS-2 text (and then drops the last character).
const EXTENSION = 'ALARM zone [3] {door} ^ | \\ cost 5€ — check now';
const EXTENSION_GSM = 'ALARM zone [3] {door} ~ ^ | \\ cost 5€ check now';

interface Case {
  name: string;
  options: SubmitOptions;
}

const CASES: Case[] = [
  { name: 'plain GSM-7', options: { to: '+79161234567', text: 'Hello from smsgate @ 12:00, 100% OK!' } },
  { name: 'GSM-7 extension characters', options: { to: '+79161234567', text: EXTENSION_GSM } },
  { name: 'a dash outside GSM-7 makes UCS-2', options: { to: '+79161234567', text: EXTENSION } },
  { name: 'long Cyrillic, 3 parts', options: { to: '+79161234567', text: RU_LONG, reference: 200 } },
  { name: 'emoji, multipart UCS-2', options: { to: '+447700900123', text: EMOJI, reference: 7 } },
  { name: 'long GSM-7, 2 parts', options: { to: '+447700900123', text: 'x'.repeat(200), reference: 255 } },
  { name: 'long GSM-7 with extension characters', options: { to: '+447700900123', text: '{}'.repeat(80) + 'end', reference: 1 } },
  { name: '16-bit reference', options: { to: '+447700900123', text: 'y'.repeat(300), reference: 0xbeef, concat16: true } },
  { name: '16-bit reference, UCS-2', options: { to: '+447700900123', text: RU_LONG, reference: 0x0102, concat16: true } },
  { name: 'flash GSM-7', options: { to: '+79161234567', text: 'Flash alarm!', flash: true } },
  { name: 'flash UCS-2', options: { to: '+79161234567', text: 'Тревога!', flash: true } },
  { name: 'flash multipart', options: { to: '+79161234567', text: RU_LONG, flash: true, reference: 3 } },
  ...[1, 2, 3, 4, 5, 6, 7].map((n) => ({
    name: `replace-ID ${n}`,
    options: { to: '+79161234567', text: `Balance ${n}00 RUB`, replace: n },
  })),
  { name: 'status report requested', options: { to: '+79161234567', text: 'Report me', report: true } },
  { name: 'status report on every part', options: { to: '+79161234567', text: RU_LONG, report: true, reference: 9 } },
  ...[5, 60, 720, 750, 1440, 2880, 30 * 1440, 35 * 1440, 63 * 7 * 1440].map((minutes) => ({
    name: `validity ${minutes} minutes`,
    options: { to: '+79161234567', text: 'Valid for a while', validity: minutes },
  })),
  { name: 'no validity field', options: { to: '+79161234567', text: 'SMSC default validity', validity: null } },
  { name: 'national number', options: { to: '89161234567', text: 'National' } },
  { name: 'short code', options: { to: '900', text: 'BALANCE' } },
  { name: 'an SMSC in front', options: { to: '+79161234567', text: 'Via SMSC', smsc: '+79168999100' } },
  { name: 'forced UCS-2', options: { to: '+79161234567', text: 'ASCII as UCS-2', encoding: 'ucs2' } },
];

let answer: OracleAnswer;
const encoded = CASES.map((c) => encodeSubmit(c.options));

beforeAll(() => {
  answer = gammuOracle({
    decode: encoded.flatMap((message, i) => message.parts.map((p) => ({ pdu: p.pdu, report: CASES[i]!.options.report }))),
    split: [RU_LONG, EMOJI, 'x'.repeat(200), '{}'.repeat(80) + 'end', EXTENSION_GSM.repeat(5)].map((text) => ({ text })),
  });
});

/** How python-gammu names a relative validity period: "5M", "2D", "5W", or "Max" for 0xFF. */
function gammuValidity(minutes: number): string {
  const vp = relativeValidity(minutes);
  const exact = validityMinutes(vp);
  if (vp === 255) return 'Max';
  if (vp >= 197) return `${exact / 10080}W`;
  if (vp >= 168) return `${exact / 1440}D`;
  return `${exact}M`;
}

function gammuParts(caseIndex: number): GammuSms[] {
  const start = encoded.slice(0, caseIndex).reduce((sum, m) => sum + m.parts.length, 0);
  return answer.decode.slice(start, start + encoded[caseIndex]!.parts.length);
}

describe("Gammu decodes every PDU we encode to what we meant", () => {
  it('runs Gammu 1.42', () => expect(answer.version).toMatch(/^1\.4\d/));

  CASES.forEach((c, index) => {
    it(c.name, () => {
      const ours = encoded[index]!;
      const theirs = gammuParts(index);
      const { options } = c;
      expect(theirs.map((t) => t.error)).toEqual(theirs.map(() => undefined));
      theirs.forEach((g, i) => {
        const part = ours.parts[i]!;
        const smscOctets = parseInt(part.pdu.slice(0, 2), 16) + 1;
        const tpdu = part.pdu.slice(smscOctets * 2);
        const validity = options.validity === undefined ? DEFAULT_VALIDITY_MINUTES : options.validity;
        expect(g.SMSC.Validity).toBe(validity === null ? 'NA' : gammuValidity(validity));
        // Gammu writes back exactly our TPDU: same first octet (SRR, VPF, UDHI), PID, DCS, VP, UDH and text. Two
        // things its encoder cannot say: "no TP-VP" (its dictionary has no such value) and periods in weeks (it
        // writes 5W as 5 days); for those the decoded validity above is the proof.
        const vp = validity === null ? null : relativeValidity(validity);
        if (vp !== null && (vp < 197 || vp === 255)) expect(g.reencoded, g.reencoded_error).toBe(tpdu);
        expect(g.Type).toBe('Submit');
        expect(g.Number).toBe(options.to);
        expect(g.Coding).toBe(ours.encoding === 'gsm7' ? 'Default_No_Compression' : 'Unicode_No_Compression');
        expect(g.Class).toBe(options.flash ? 0 : -1);
        expect(g.ReplaceMessage).toBe(ours.parts.length === 1 ? (options.replace ?? 0) : 0);
        if (options.smsc) expect(g.SMSC.Number).toBe(options.smsc);
        // Gammu 1.42's Python decoder counts each ESC+code pair as two characters and shows junk after such a
        // text: compare only the characters its septet count covers.
        expect(g.Text.slice(0, part.text.length)).toBe(part.text);
        if (!/[\^{}\\[~\]|€]/.test(part.text)) expect(g.Text).toBe(part.text);
        if (ours.parts.length === 1) {
          expect(g.UDH.Type).toBe('NoUDH');
        } else {
          expect(g.UDH.Type).toBe(options.concat16 ? 'ConcatenatedMessages16bit' : 'ConcatenatedMessages');
          expect(options.concat16 ? g.UDH.ID16bit : g.UDH.ID8bit).toBe(options.reference);
          expect(g.UDH.AllParts).toBe(ours.parts.length);
          expect(g.UDH.PartNumber).toBe(i + 1);
        }
      });
      expect(ours.parts.map((p) => p.text).join('')).toBe(options.text);
    });
  });
});

describe("we never need more parts than Gammu's own splitter", () => {
  const texts = [RU_LONG, EMOJI, 'x'.repeat(200), '{}'.repeat(80) + 'end', EXTENSION_GSM.repeat(5)];
  texts.forEach((text, i) => {
    it(`${JSON.stringify(text.slice(0, 24))}… (${[...text].length} characters)`, () => {
      const gammu = answer.split[i]!;
      const ours = countSegments(text);
      expect(ours.parts).toBeLessThanOrEqual(gammu.length);
      expect(ours.encoding).toBe(gammu[0]!.Coding.startsWith('Unicode') ? 'ucs2' : 'gsm7');
    });
  });
});
