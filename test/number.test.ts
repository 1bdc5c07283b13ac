/** Recipient normalisation to E.164 with a default country code. */
import { describe, expect, it } from 'vitest';
import { normaliseNumber } from '../modem/number.js';
import { errorOf } from './helpers/errors.js';

describe('normaliseNumber', () => {
  it.each([
    ['+79161234567', undefined, '+79161234567', 'international'],
    ['+7 (916) 123-45-67', undefined, '+79161234567', 'international'],
    ['0079161234567', undefined, '+79161234567', 'international'],
    ['  +44 7700 900123 ', '7', '+447700900123', 'international'],
    ['8 (916) 123-45-67', '7', '+79161234567', 'international'],
    ['89161234567', '+7', '+79161234567', 'international'],
    ['79161234567', '7', '+79161234567', 'international'],
    ['9161234567', '7', '+79161234567', 'international'],
    ['0170 1234567', '49', '+491701234567', 'international'],
    ['(415) 555-2671', '1', '+14155552671', 'international'],
    ['06 12 34 56 78', '33', '+33612345678', 'international'],
    ['89161234567', undefined, '89161234567', 'national'],
    ['900', '7', '900', 'short'],
    ['0611', '7', '0611', 'short'],
    ['123456', undefined, '123456', 'short'],
  ])('%s with country code %s is %s (%s)', (input, cc, number, kind) => {
    expect(normaliseNumber(input, { defaultCountryCode: cc })).toEqual({ number, kind });
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['+7916abc4567', /not a phone number/],
    ['Mum', /not a phone number/],
    ['+0123456789', /never starts with 0/],
    ['+123456', /7 to 15 digits/],
    ['+1234567890123456', /7 to 15 digits/],
    ['1234567890123456', /too long/],
  ])('refuses %j', (input, message) => {
    expect(() => normaliseNumber(input)).toThrowError(message);
  });

  it('refuses a national number that cannot exist in the default country, naming the field', () => {
    const error = errorOf(() => normaliseNumber('12345678', { defaultCountryCode: '7', field: 'tel' }));
    expect(error).toMatchObject({ code: 'BAD_NUMBER', field: 'tel', message: '"12345678" is not a valid number in country +7; write it in international form (+CC…)' });
  });

  it('refuses a malformed or unused default country code with a BAD_NUMBER error', () => {
    expect(errorOf(() => normaliseNumber('89161234567', { defaultCountryCode: 'RU' })).message).toMatch(/not 1 to 3 digits/);
    expect(errorOf(() => normaliseNumber('1234567', { defaultCountryCode: '999' }))).toMatchObject({
      code: 'BAD_NUMBER',
      field: 'defaultCountryCode',
      message: 'the default country code +999 is not in use',
    });
  });

  it('drops the bracketed trunk zero after a country code', () => {
    expect(normaliseNumber('+44 (0)20 7946 0958').number).toBe('+442079460958');
    expect(normaliseNumber('+33 (0) 6 12 34 56 78').number).toBe('+33612345678');
  });

  it('keeps short codes that start with zeros, and refuses a national number read the wrong way', () => {
    expect(normaliseNumber('000')).toEqual({ number: '000', kind: 'short' });
    // "8 10 44 …" is Russia's old international prefix: as a Russian national number it is not valid.
    expect(errorOf(() => normaliseNumber('8 10 44 20 7946 0958', { defaultCountryCode: '7' })).code).toBe('BAD_NUMBER');
  });
});
