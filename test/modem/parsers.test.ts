/** The small parsers of modem answers, on real devices' replies where Gammu's data has them. */
import { describe, expect, it } from 'vitest';
import { cleanValue, parseCmgl, parseCnum, parseCops, parseCpmsSupport, parseCreg, parseCsq, parseIccid, valueOf } from '../../modem/modem.js';
import { swapNibbles } from '../../modem/simulator/sim-modem.js';
import { fixture, fixtureNames } from '../helpers/fixtures.js';

describe('registration (+CREG) from real devices', () => {
  const expected: Record<string, string> = {
    'empty.dump': 'unknown',
    'huawei.dump': 'home',
    'none.dump': 'not-registered', // +CREG: 0,0
    'siemens.dump': 'home',
    'sierra312u.dump': 'roaming', // +CREG: 2,5,"2AF5","0B88E350",2
    'telit.dump': 'home',
    'empty-lac.dump': 'home',
    'mismatched-quotes.dump': 'home',
    'single-quote.dump': 'home',
  };
  for (const dir of ['at-creg', 'at-creg-corner']) {
    for (const name of fixtureNames(`gammu/${dir}`, '.dump')) {
      it(`${dir}/${name}`, () => {
        const lines = fixture('gammu', dir, name).split(/\r?\n/).map((l) => l.trim()).filter((l) => l.startsWith('+CREG:'));
        expect(parseCreg(lines.length ? valueOf(lines, '+CREG:') : null)).toBe(expected[name]);
      });
    }
  }

  it('reads both the answer form and the URC form', () => {
    expect(parseCreg('0,5')).toBe('roaming');
    expect(parseCreg('2,1,"0B14","5E51"')).toBe('home');
    expect(parseCreg('3')).toBe('denied');
    expect(parseCreg('1,"0B14","5E51"')).toBe('home');
  });
});

describe('identity answers', () => {
  it('strips labels and quotes that modems add', () => {
    expect(cleanValue('Revision: EC25EFAR06A08M4G')).toBe('EC25EFAR06A08M4G');
    expect(cleanValue('"huawei"')).toBe('huawei');
    expect(cleanValue(' MULTIBAND  900E  1800 ')).toBe('MULTIBAND  900E  1800');
    expect(cleanValue('')).toBeNull();
  });

  it('reads the model of real devices', () => {
    const models = fixtureNames('gammu/at-model', '.dump').map((name) => {
      const lines = fixture('gammu', 'at-model', name).split(/\r?\n/).slice(1).map((l) => l.trim()).filter((l) => l && l !== 'OK');
      return cleanValue(valueOf(lines, '+CGMM:'));
    });
    expect(models.every((m) => m !== null && m.length > 0)).toBe(true);
  });

  it('reads ICCIDs, Huawei\'s nibble-swapped ^ICCID and the F padding', () => {
    expect(parseIccid('89701020000000000036')).toBe('89701020000000000036');
    expect(parseIccid(swapNibbles('8970102000000000003'))).toBe('8970102000000000003');
    expect(parseIccid('"8970102000000000003F"')).toBe('8970102000000000003');
    expect(parseIccid('ERROR')).toBeNull();
  });

  it('reads the own number, operator and signal', () => {
    expect(parseCnum(['+CNUM: "","79161234567",145'])).toBe('+79161234567');
    expect(parseCnum(['+CNUM: "Voice","89161234567",129'])).toBe('89161234567');
    expect(parseCnum([])).toBeNull();
    expect(parseCops('0,0,"MegaFon",2')).toBe('MegaFon');
    expect(parseCops('0')).toBeNull();
    expect(parseCsq('20,99')).toBe(20);
    expect(parseCsq('99,99')).toBeNull();
  });

  it('lists stored messages from +CMGL, skipping lines that are not PDUs', () => {
    const pdu = '07919761989901F0040B919700214365F70000422011311120610BC8329BFD06DDDF723619';
    const lines = ['+CMGL: 1,1,,29', pdu, '+CMGL: 2,0,"Smith, John",29', pdu, '+CMGL: 4,0,"",25', 'garbage'];
    expect(parseCmgl(lines, 'SM')).toEqual([
      { memory: 'SM', index: 1, stat: 1, length: 29, pdu },
      { memory: 'SM', index: 2, stat: 0, length: 29, pdu },
    ]);
  });
});

describe('message storages (AT+CPMS=?) from real devices', () => {
  const expected: Record<string, string[] | null> = {
    'at-cpms/alcatel-s320.dump': ['SM', 'ME', 'SM_P', 'ME_P', 'MT'],
    'at-cpms/brovi-e3372-325.dump': ['SM', 'ME'],
    'at-cpms/generic.dump': ['SM', 'ME'],
    'at-cpms/samsung-j700.dump': null, // "+CPMS: " and nothing: the default storages are tried
    'at-cpms-sm/iwow.dump': ['SM'], // no parentheses: one choice
    'at-cpms-sr/generic.dump': ['ME', 'SR'], // a quote missing
  };
  for (const [path, storages] of Object.entries(expected)) {
    it(`${path} -> ${JSON.stringify(storages)}`, () => {
      const [dir, name] = path.split('/') as [string, string];
      const line = fixture('gammu', dir, name).split(/\r?\n/).find((l) => l.startsWith('+CPMS:'))!;
      expect(parseCpmsSupport(valueOf([line], '+CPMS:'))).toEqual(storages);
    });
  }
});
