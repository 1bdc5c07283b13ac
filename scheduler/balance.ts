/**
 * SIM money: the balance asked by USSD, read from the answer, kept with its history, and acted on when low.
 *
 * Theory of operation. `check(simId)` sends the SIM's balance code (its own, else the config's default) through
 * one of its channels, reads the amount from the answer — with the SIM's pattern, else the config's, else the
 * built-in reader (`parseBalance`) — and stores a history row whatever happened (an answer without an amount, a
 * network error: the row says so). Then the threshold: when the amount falls below it, once until it recovers,
 * the SIM is paused if its settings say so (enabled false, with the reason) and an alert goes out — a signed
 * webhook to each alerts URL (through the deliveries outbox: retried, persistent) and an SMS to each admin
 * number. When the balance is back at or above the threshold, a SIM the gateway paused for it is enabled again.
 * `checkAll()` runs on the balance schedule (node-cron) for every SIM that has a code.
 */
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import type { UssdAnswer } from '../modem/ussd.js';
import type { BalanceRecord, Sim, Storage } from '../sql/storage.js';
import type { Dispatcher } from './dispatcher.js';

export interface BalanceDefaults {
  /** The code of SIMs that set none (empty: they are not asked). */
  ussd: string;
  /** The pattern of SIMs that set none (empty: the built-in reader). */
  pattern: string;
  /** The threshold of SIMs that set none (empty: no alert). */
  low: string;
}

export interface BalanceOptions {
  storage: Storage;
  dispatcher: Dispatcher;
  defaults: BalanceDefaults;
  /** Alert receivers; `alert` sends one alert (webhooks and SMS to admins); see gateway.ts. */
  alert: (event: string, detail: Record<string, unknown>, text: string) => Promise<void>;
  clock?: () => number;
  log?: (line: string, fields?: Record<string, unknown>) => void;
  ussdTimeoutMs?: number;
}

export interface BalanceResult {
  record: BalanceRecord;
  /** The threshold in force, when there is one. */
  low: string | null;
  /** Below the threshold now. */
  isLow: boolean;
  /** The SIM as it is after the check (paused, or enabled again). */
  sim: Sim;
}

/** Currency words and signs, and what they are called (the answers' own spelling is kept otherwise). */
const CURRENCY = /^(?:рублей|рубля|рубль|руб\.?|р\.?|rub\.?|rur|usd|eur|€|\$|£|uah|грн\.?|kzt|тенге|тг\.?|byn|gbp|pln|zł|try|gel|₽|₸|₴)(?![\p{L}])/iu;
/**
 * A number: a sign word or sign, then digits in groups of three (space, no-break space, comma, dot or apostrophe
 * between them) with decimals after a separator that is not the grouping one ("1 234,56", "1,234.56", "12.345,67"),
 * or plain digits with decimals ("12,30", "7"). Groups: 1 sign, 2 grouped, 3 its separator, 4 its decimals,
 * 5 plain, 6 its decimals.
 */
const NUMBER = /(-|−|минус\s*|minus\s*)?(?:(\d{1,3}(?:([ \u00a0,.'])\d{3})(?:\3\d{3})*)(?:(?!\3)[.,](\d{1,2}))?|(\d+)(?:[.,](\d{1,2}))?)(?!\d)/gi;

/**
 * The amount in a balance answer: the number after a balance word ("Баланс", "Balance", "Остаток", "Ваш счет",
 * "Credit"), else the first number with decimals, else the first number; a minus sign or word before it counts.
 * "123,45" and "1 234.56" are read as decimals; the currency is the word or sign next to the number when there is
 * one. With `pattern`, its group "amount" (or its first group) is the number and "currency" the currency.
 */
export function parseBalance(text: string, pattern?: string | null): { amount: string; currency: string | null } | null {
  if (pattern) {
    const m = new RegExp(pattern, 'iu').exec(text);
    if (!m) return null;
    const raw = m.groups?.amount ?? m[1] ?? m[0];
    const amount = normalise(raw);
    return amount === null ? null : { amount, currency: m.groups?.currency ?? null };
  }
  const skip = datesAndTimes(text);
  const candidates = [...text.matchAll(NUMBER)].filter(
    // Not in a date or time; not a phone or account number (seven digits or more, ungrouped).
    (m) => !skip.some(([from, to]) => m.index! < to && m.index! + m[0].length > from) && !(m[5] !== undefined && m[5].length >= 7),
  );
  if (candidates.length === 0) return null;
  const keyword = /(баланс|balance|остаток|на сч[её]те|ваш сч[её]т|credit|guthaben|saldo|solde)/iu.exec(text);
  const afterKeyword = keyword ? candidates.find((m) => m.index! >= keyword.index) : undefined;
  const chosen = afterKeyword ?? candidates.find((m) => (m[4] ?? m[6]) !== undefined) ?? candidates[0]!;
  const negative = chosen[1] !== undefined || /-\s*$/.test(text.slice(Math.max(0, chosen.index! - 2), chosen.index!));
  const amount = `${negative ? '-' : ''}${(chosen[2] ?? chosen[5])!.replace(/[ \u00a0,.']/g, '')}.${(chosen[4] ?? chosen[6] ?? '00').padEnd(2, '0')}`;
  const after = text.slice(chosen.index! + chosen[0].length).trimStart();
  const before = text.slice(0, chosen.index!).trimEnd();
  const currency = CURRENCY.exec(after)?.[0] ?? (/[$€£₽]$/.exec(before)?.[0] ?? null);
  return { amount: amount.replace(/^-0\.00$/, '0.00'), currency: currency ? currency.replace(/\.$/, '') : null };
}

/** "1 234,5" -> "1234.50", "1,234.56" -> "1234.56"; null when it is no number. */
function normalise(raw: string): string | null {
  const m = new RegExp(`^\\s*${NUMBER.source}\\s*$`, 'i').exec(raw.trim());
  if (!m) return null;
  return `${m[1] ? '-' : ''}${(m[2] ?? m[5])!.replace(/[ \u00a0,.']/g, '')}.${(m[4] ?? m[6] ?? '00').padEnd(2, '0')}`;
}

/** Where the text has dates (24.11.2026, 24/11/26) and times (10:15, 10:15:30): their numbers are no amounts. */
function datesAndTimes(text: string): [number, number][] {
  return [...text.matchAll(/\d{1,4}[./-]\d{1,2}[./-]\d{2,4}|\d{1,2}:\d{2}(?::\d{2})?/g)].map((m) => [m.index!, m.index! + m[0].length]);
}

/** Compares decimal strings as numbers (amounts have at most 2 decimals). */
export function below(amount: string, threshold: string): boolean {
  return Number(amount) < Number(threshold.replace(',', '.'));
}

export class BalanceChecker {
  private readonly clock: () => number;
  private readonly log: (line: string, fields?: Record<string, unknown>) => void;
  private readonly running = new Map<number, Promise<BalanceResult>>();

  constructor(private readonly options: BalanceOptions) {
    this.clock = options.clock ?? Date.now;
    this.log = options.log ?? (() => undefined);
  }

  /** The code a SIM is asked with; null when it has none. */
  codeOf(sim: Sim): string | null {
    return sim.balanceUssd || this.options.defaults.ussd || null;
  }

  /** Checks every SIM that has a balance code and a channel (errors are in each SIM's history). */
  async checkAll(): Promise<BalanceResult[]> {
    const out: BalanceResult[] = [];
    for (const sim of await this.options.storage.listSims()) {
      if (!this.codeOf(sim) || !this.options.dispatcher.channels.some((c) => c.simId === sim.id && c.sender.ussd)) continue;
      try {
        out.push(await this.check(sim.id));
      } catch (error) {
        this.log(`balance of SIM ${sim.id}: ${(error as Error).message}`, { sim: sim.id });
      }
    }
    return out;
  }

  /** Checks one SIM's balance now (one check per SIM at a time: a second caller gets the running one). */
  check(simId: number): Promise<BalanceResult> {
    let run = this.running.get(simId);
    if (!run) {
      run = this.checkOnce(simId).finally(() => this.running.delete(simId));
      this.running.set(simId, run);
    }
    return run;
  }

  private readonly ussdQueue = new Map<number, Promise<unknown>>();

  /**
   * A raw USSD request through one of the SIM's channels (the admins' console, the balance checks): one at a time
   * per SIM, since an answer (+CUSD) does not say which request it answers.
   */
  ussd(simId: number, code: string): Promise<UssdAnswer> {
    const before = this.ussdQueue.get(simId) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(() => this.ussdNow(simId, code));
    const tail = run.catch(() => undefined);
    this.ussdQueue.set(simId, tail);
    void tail.then(() => {
      if (this.ussdQueue.get(simId) === tail) this.ussdQueue.delete(simId);
    });
    return run;
  }

  private async ussdNow(simId: number, code: string): Promise<UssdAnswer> {
    const slot = this.options.dispatcher.channels.find((c) => c.simId === simId && c.sender.isOpen && c.healthy && c.sender.ussd);
    if (!slot) throw new SmsgateError(ErrorCodes.NoChannel, `SIM ${simId} has no working channel that can send USSD`, { field: 'sim', retry: 'retry-same' });
    return slot.sender.ussd!(code, this.options.ussdTimeoutMs ?? 30_000);
  }

  private async checkOnce(simId: number): Promise<BalanceResult> {
    const { storage } = this.options;
    let sim = await storage.getSim(simId);
    if (!sim) throw new SmsgateError(ErrorCodes.NotFound, `no SIM ${simId}`, 'sim');
    const code = this.codeOf(sim);
    if (!code) throw new SmsgateError(ErrorCodes.BadMessage, `SIM ${simId} has no balance code: set its balance_ussd (or balance.ussd in the config)`, 'balance_ussd');
    const at = this.clock();
    let answer: UssdAnswer | null = null;
    let error: string | null = null;
    try {
      answer = await this.ussd(simId, code);
      if (answer.status !== 'done' && answer.status !== 'action-required') error = `the network answered ${answer.status} (+CUSD: ${answer.code})`;
    } catch (e) {
      error = (e as Error).message;
    }
    const parsed = answer?.text && !error ? parseBalance(answer.text, sim.balancePattern || this.options.defaults.pattern || null) : null;
    if (answer?.text && !error && !parsed) error = 'no amount found in the answer (set balance_pattern?)';
    const record = await storage.addBalance({ simId, at, amount: parsed?.amount ?? null, currency: parsed?.currency ?? null, answer: answer?.text ?? answer?.raw ?? null, error });
    const fields = { sim: simId, amount: record.amount, currency: record.currency, error };
    if (!parsed) {
      await storage.logEvent({ kind: 'sim.balance-failed', simId, detail: { code, error, answer: record.answer } }, at);
      this.log(`balance of SIM ${simId} not read: ${error}`, fields);
      return { record, low: sim.balanceLow || this.options.defaults.low || null, isLow: false, sim };
    }
    sim = await storage.updateSim(simId, { balance: parsed.currency ? `${parsed.amount} ${parsed.currency}` : parsed.amount, balanceAt: at });
    this.log(`balance of SIM ${simId}: ${parsed.amount}${parsed.currency ? ` ${parsed.currency}` : ''}`, fields);
    const low = sim.balanceLow || this.options.defaults.low || null;
    const isLow = low !== null && below(parsed.amount, low);
    if (isLow && !sim.balanceAlerted) sim = await this.wentLow(sim, parsed.amount, parsed.currency, low!, at);
    else if (!isLow && sim.balanceAlerted) sim = await this.recovered(sim, parsed.amount, at);
    return { record, low, isLow, sim };
  }

  private async wentLow(sim: Sim, amount: string, currency: string | null, low: string, at: number): Promise<Sim> {
    const { storage } = this.options;
    const pause = sim.balancePause && sim.enabled;
    const reason = `low balance: ${amount}${currency ? ` ${currency}` : ''} < ${low}`;
    const updated = await storage.updateSim(sim.id, { balanceAlerted: true, ...(pause ? { enabled: false, pausedReason: reason } : {}) });
    await storage.logEvent({ kind: 'sim.balance-low', simId: sim.id, detail: { amount, currency, low, paused: pause } }, at);
    this.log(`SIM ${sim.id} ${reason}${pause ? ': paused' : ''}`, { sim: sim.id, amount, low, paused: pause });
    if (pause) await this.options.dispatcher.settingsChanged();
    const name = sim.label ?? sim.number ?? sim.imsi;
    await this.options.alert(
      'sim.balance_low',
      { sim: { id: sim.id, number: sim.number, label: sim.label, imsi: sim.imsi }, balance: amount, currency, threshold: low, paused: pause },
      `smsgate: SIM ${name} balance ${amount}${currency ? ` ${currency}` : ''} is below ${low}${pause ? '; the SIM is paused' : ''}`,
    );
    return updated;
  }

  private async recovered(sim: Sim, amount: string, at: number): Promise<Sim> {
    const { storage } = this.options;
    const resume = !sim.enabled && sim.pausedReason !== null && sim.pausedReason.startsWith('low balance');
    const updated = await storage.updateSim(sim.id, { balanceAlerted: false, ...(resume ? { enabled: true, pausedReason: null } : {}) });
    await storage.logEvent({ kind: 'sim.balance-ok', simId: sim.id, detail: { amount, resumed: resume } }, at);
    this.log(`SIM ${sim.id} balance is back: ${amount}${resume ? '; the SIM sends again' : ''}`, { sim: sim.id, amount });
    if (resume) await this.options.dispatcher.settingsChanged();
    return updated;
  }
}
