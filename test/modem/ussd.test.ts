/** USSD answers of real devices (Gammu's at-ussd dumps) and the CBS data coding schemes. */
import { describe, expect, it } from 'vitest';
import { parseCusd, ussdAlphabet } from '../../modem/ussd.js';
import { fixture } from '../helpers/fixtures.js';

function cusd(name: string) {
  const line = fixture('gammu', 'at-ussd', name).split(/\r?\n/).find((l) => l.startsWith('+CUSD'))!;
  return parseCusd(line.trim())!;
}

describe("real devices' +CUSD answers", () => {
  it.each([
    ['02-E160.dump', 'done', 'Ihr Guthaben für die Nr.4915783647410 beträgt 5.78 Euro'], // packed GSM-7 hex, DCS 15
    ['03-unknown.dump', 'action-required', 'Kontostand: 3.00 EUR Bitte w{hlen Sie: 1 Konto aufladen 2 CallNow Transfer'],
    ['04-unknown.dump', 'terminated', 'Maaf, permintaan Anda tidak dapat kami proses. Silakan coba beberapa saat lagi.'],
    ['issue109-E3276.dump', 'done', 'Для справки о балансе наберите *105#. Услуга бесплатна.'], // UCS-2 hex, DCS 72
    ['issue178-dell.dump', 'done', 'On DATA Pack u have 3Gb 817Mb 169kb valid until 21/05/2016   upto time of data recharge done by u.'],
    // UCS-2 hex although the DCS (15) says GSM-7
    ['Uissue358-Quectel_M35.dump', 'terminated', 'Havi keret: 0Ft. Feltöltött egyenleg: 7777Ft,(ebböl vàsàrlàsra is fordìthatò: 7777Ft). Dìjcsomag: Bencsò A. Uj Telekom önkiszolgàlò: *111#'],
    // UCS-2 after a language indication (DCS 17), padded with NUL and FFFF
    ['issue377-HE910-D.dump', 'terminated', 'رصيدك 107.93 د.ل،الصلاحية  2018-11-09'],
  ])('%s', (name, status, text) => {
    expect(cusd(name)).toMatchObject({ status, text });
  });

  it('parses the forms without a string or a DCS', () => {
    expect(parseCusd('+CUSD: 2')).toMatchObject({ status: 'terminated', text: null, dcs: null });
    expect(parseCusd('+CUSD: 4')).toMatchObject({ status: 'not-supported' });
    expect(parseCusd('+CUSD: 0,"1234",15')).toMatchObject({ text: '1234' });
    expect(parseCusd('+CMTI: "SM",1')).toBeNull();
  });

  it('names the alphabet of a CBS DCS (23.038 §5)', () => {
    expect([0x0f, 0x00, 0x48, 0x44, 0x11, 0xf4, 0x01].map(ussdAlphabet)).toEqual(['gsm7', 'gsm7', 'ucs2', '8bit', 'ucs2', '8bit', 'gsm7']);
  });
});
