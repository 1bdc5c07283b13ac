/**
 * SIM balances: the built-in reader over the answers operators really give, a configured pattern, and checks over
 * the simulator's ptys with the answer GSM-7 packed (Huawei, DCS 15) and UCS-2 hex (ZTE, DCS 72).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BalanceChecker, below, parseBalance } from '../../scheduler/balance.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

describe('parseBalance', () => {
  it.each([
    ['Баланс: 123,45 р.', '123.45', 'р'],
    ['Balance 12.30 USD', '12.30', 'USD'],
    ['Ваш баланс -5,20 руб. Пополните счет', '-5.20', 'руб'],
    ['Баланс минус 15.5 р.', '-15.50', 'р'],
    ['Остаток на 24.11.2026 10:15: 1 234,56 р', '1234.56', 'р'],
    ['Your balance is $7.05. Dial *102# for bonuses', '7.05', '$'],
    ['Balance:250rub,Limit:0rub', '250.00', 'rub'],
    ['На счете 87 руб.', '87.00', 'руб'],
    ['Guthaben: 4,99 EUR', '4.99', 'EUR'],
    ['Balans 0.00', '0.00', null],
    ['Balance: $1,234.56', '1234.56', '$'],
    ['Saldo: 12.345,67 EUR', '12345.67', 'EUR'],
    ['Balance for 79161234567: 150 rub', '150.00', 'rub'],
    ["Solde: 1'250.00 CHF", '1250.00', null],
  ])('%s -> %s %s', (text, amount, currency) => {
    expect(parseBalance(text)).toEqual({ amount, currency });
  });

  it('finds nothing where there is no number', () => {
    expect(parseBalance('Сервис временно недоступен')).toBeNull();
  });

  it('takes the amount from a configured pattern: its group "amount" (or first group) and "currency"', () => {
    expect(parseBalance('Bonus 100, main 42.10 GEL', 'main (?<amount>[\\d.]+) (?<currency>\\w+)')).toEqual({ amount: '42.10', currency: 'GEL' });
    expect(parseBalance('Bonus 100, main 42,1', 'main ([\\d,]+)')).toEqual({ amount: '42.10', currency: null });
    expect(parseBalance('no match here', 'main ([\\d,]+)')).toBeNull();
  });

  it('compares amounts as numbers', () => {
    expect(below('12.34', '50')).toBe(true);
    expect(below('50.00', '50')).toBe(false);
    expect(below('-1.00', '0')).toBe(true);
    expect(below('100.00', '99,5')).toBe(false);
  });
});

const gateways: TestGateway[] = [];
afterEach(async () => {
  for (const g of gateways.splice(0)) await g.stop();
});

describe('balance checks over the simulator', () => {
  it.each([
    ['huawei', 'Balance 12.30 USD, valid till 31.12', '12.30', 'USD'],
    ['zte', 'Баланс: 98,76 р.', '98.76', 'р'],
    ['generic', 'Balance: 5.00 EUR', '5.00', 'EUR'],
  ] as const)('%s: stores the amount read from the answer', async (flavour, answer, amount, currency) => {
    const g = await startGateway({ modems: 1, latencyMs: 20, flavour });
    gateways.push(g);
    g.sim.sim.modem(0).ussd.set('*100#', answer);
    const alerts: unknown[] = [];
    const checker = new BalanceChecker({ storage: g.storage, dispatcher: g.dispatcher, defaults: { ussd: '*100#', pattern: '', low: '' }, alert: async (...a) => void alerts.push(a) });
    const result = await checker.check(g.sims[0]!.id);
    expect(result.record).toMatchObject({ amount, currency, answer, error: null });
    expect((await g.storage.getSim(g.sims[0]!.id))!.balance).toBe(`${amount} ${currency}`);
    expect(alerts).toEqual([]);
  });

  it('records a failed check (no network) in the history, and keeps the last balance', async () => {
    const g = await startGateway({ modems: 1, latencyMs: 20 });
    gateways.push(g);
    g.sim.sim.modem(0).ussd.set('*100#', 'Balance 10.00');
    const checker = new BalanceChecker({ storage: g.storage, dispatcher: g.dispatcher, defaults: { ussd: '*100#', pattern: '', low: '5' }, alert: async () => undefined });
    await checker.check(g.sims[0]!.id);
    g.sim.sim.fault(0, { type: 'unregister' });
    const failed = await checker.check(g.sims[0]!.id);
    expect(failed.record.amount).toBeNull();
    expect(failed.record.error).toMatch(/no network service|CME/i);
    expect((await g.storage.getSim(g.sims[0]!.id))!.balance).toBe('10.00');
    expect((await g.storage.listBalances(g.sims[0]!.id)).map((b) => b.amount)).toEqual([null, '10.00']);
  });

  it('checkAll asks every SIM that has a code, and only those', async () => {
    const g = await startGateway({ modems: 2, latencyMs: 20 });
    gateways.push(g);
    g.sim.sim.modem(0).ussd.set('*102#', 'Balance 1.00');
    await g.storage.updateSim(g.sims[0]!.id, { balanceUssd: '*102#' });
    const checker = new BalanceChecker({ storage: g.storage, dispatcher: g.dispatcher, defaults: { ussd: '', pattern: '', low: '' }, alert: async () => undefined });
    const results = await checker.checkAll();
    expect(results.map((r) => [r.sim.id, r.record.amount])).toEqual([[g.sims[0]!.id, '1.00']]);
  });
});
