/**
 * A modem on one AT channel: init, identity, sending PDUs, the inbox and USSD (27.005, 27.007).
 *
 * Theory of operation. `open()` opens the port under its lock (see lock.ts) and wraps it in an AtChannel; `init()`
 * brings any modem to a known state (echo off, numeric errors, PIN, PDU mode, new-message indications) and is safe
 * to repeat. `send()` writes every part of one message under one hold of the channel, so no other command gets
 * between the parts, and returns one result per part: its message reference, or the classified modem error. Parts
 * after a failed one are not sent (the dispatcher resends from the failed part with the same concatenation
 * reference). Answers are parsed by small pure functions exported for tests.
 */
import { ErrorCodes, SmsgateError } from './errors.js';
import { AtChannel, type Urc } from './at/channel.js';
import { type PortLock, lockPort } from './lock.js';
import { SerialTransport } from './transport.js';
import { type UssdAnswer, packUssd, parseCusd } from './ussd.js';

export interface ModemOptions {
  /** SIM PIN, entered when the modem asks for it. */
  pin?: string;
  baudRate?: number;
  /** Timeout of ordinary commands (default 10 s). */
  commandTimeoutMs?: number;
  /** Timeout from the PDU to `+CMGS` (default 60 s: the network answers slowly at times). */
  sendTimeoutMs?: number;
  /** Timeout for the `> ` prompt after `AT+CMGS` (default 5 s, at most sendTimeoutMs). */
  promptTimeoutMs?: number;
  /** Directory of UUCP lock files (default /var/lock). */
  lockDir?: string;
  /** Told of every line to and from the modem (the raw AT dialogue, for debugging one channel). */
  trace?: (path: string, direction: '>>' | '<<', text: string) => void;
}

export type Registration = 'not-registered' | 'home' | 'searching' | 'denied' | 'unknown' | 'roaming';

export interface ModemIdentity {
  manufacturer: string | null;
  model: string | null;
  revision: string | null;
  imei: string | null;
  imsi: string | null;
  iccid: string | null;
  /** The SIM's own number, when the SIM knows it (AT+CNUM). */
  number: string | null;
  operator: string | null;
  registration: Registration;
  /** RSSI as AT+CSQ gives it (0..31), null when unknown (99). */
  rssi: number | null;
  /** Signal in dBm (27.007 §8.5: -113 + 2 × rssi), null when unknown. */
  signalDbm: number | null;
}

/** One part of a message, as the encoder makes it. */
export interface PduPart {
  pdu: string;
  length: number;
}

export type PartResult =
  | { status: 'sent'; reference: number }
  | { status: 'failed'; error: SmsgateError }
  | { status: 'not-sent' };

/** A message stored on the SIM or in the modem. */
export interface StoredSms {
  /** SIM, modem, both as one (MT), or the status-report storage. */
  memory: 'SM' | 'ME' | 'MT' | 'SR';
  index: number;
  /** 0 received unread, 1 received read, 2 stored unsent, 3 stored sent. */
  stat: number;
  length: number;
  pdu: string;
}

export class Modem {
  private constructor(
    readonly channel: AtChannel,
    private readonly options: ModemOptions,
    private readonly lock: PortLock | null,
  ) {
    channel.on('close', () => this.lock?.release());
  }

  /** Opens `path` under its lock; the lock is released when the port closes, whatever the reason. */
  static async open(path: string, options: ModemOptions = {}): Promise<Modem> {
    const lock = lockPort(path, { lockDir: options.lockDir });
    try {
      const transport = await SerialTransport.open(path, { baudRate: options.baudRate });
      const channel = new AtChannel(transport, { defaultTimeoutMs: options.commandTimeoutMs ?? 10_000 });
      const trace = options.trace;
      if (trace) channel.on('trace', (direction, text) => trace(path, direction, text));
      return new Modem(channel, options, lock);
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  /** A modem over a channel the caller opened (tests, remote channels). */
  static over(channel: AtChannel, options: ModemOptions = {}): Modem {
    return new Modem(channel, options, null);
  }

  get path(): string {
    return this.channel.path;
  }

  onUrc(listener: (urc: Urc) => void): void {
    this.channel.on('urc', listener);
  }

  async close(): Promise<void> {
    await this.channel.close();
    this.lock?.release();
  }

  /** Answers `AT` within `timeoutMs`, trying `tries` times; only timeouts mean "no". */
  async ping(tries = 3, timeoutMs = 1_000): Promise<boolean> {
    for (let i = 0; i < tries; i++) {
      try {
        await this.channel.run('AT', { timeoutMs, resync: false });
        return true;
      } catch (error) {
        const code = (error as SmsgateError).code;
        if (code === ErrorCodes.PortClosed) throw error;
        // ERROR / +CME ERROR is an answer: an AT port (ModemManager does the same).
        if (code !== ErrorCodes.AtTimeout) return true;
      }
    }
    return false;
  }

  /** Makes sure an AT modem answers, then turns echo off and numeric errors on: enough to query it. */
  async wake(): Promise<void> {
    if (!(await this.ping(3, 2_000))) {
      throw new SmsgateError(ErrorCodes.AtTimeout, `${this.path}: no answer to AT (not a modem's AT port?)`, { retry: 'retry-other' });
    }
    // Echo off and numeric errors: both only help, and a modem that refuses either still works (the channel drops
    // echo and names textual errors).
    await this.optional('ATE0');
    await this.optional('AT+CMEE=1');
  }

  /** Brings the modem to a known state. Throws SIM_LOCKED when the SIM wants a PIN we lack, or a PUK. */
  async init(): Promise<void> {
    await this.wake();
    await this.unlockSim();
    await this.channel.run('AT+CMGF=0');
    // New messages as +CMTI, status reports as +CDS; modems differ in what they accept, and the periodic
    // AT+CMGL sweep covers those that accept none.
    for (const cnmi of ['AT+CNMI=2,1,0,1,0', 'AT+CNMI=1,1,0,1,0', 'AT+CNMI=2,1,0,2,0', 'AT+CNMI=1,1']) {
      if (await this.optional(cnmi)) break;
    }
  }

  private async unlockSim(): Promise<void> {
    const state = await this.pinState();
    if (state === 'READY' || state === null) return;
    if (state === 'SIM PIN' && this.options.pin) {
      try {
        await this.channel.run(`AT+CPIN="${this.options.pin}"`, { timeoutMs: 20_000 });
      } catch (error) {
        throw new SmsgateError(ErrorCodes.SimLocked, `${this.path}: the SIM refused the PIN: ${(error as Error).message}`, {
          retry: 'retry-other',
          ...((error as SmsgateError).modemCode === undefined ? {} : { modemCode: (error as SmsgateError).modemCode! }),
        });
      }
      // The SIM takes a moment to become ready after the PIN.
      for (let i = 0; i < 20 && (await this.pinState()) !== 'READY'; i++) await sleep(500);
      return;
    }
    throw new SmsgateError(
      ErrorCodes.SimLocked,
      `${this.path}: the SIM wants ${state}${state === 'SIM PIN' ? ' and no PIN is configured' : ''}`,
      { retry: 'retry-other' },
    );
  }

  /** `READY`, `SIM PIN`, `SIM PUK`, …; null when the modem does not say. */
  async pinState(): Promise<string | null> {
    try {
      const lines = await this.channel.run('AT+CPIN?');
      return valueOf(lines, '+CPIN:');
    } catch (error) {
      const e = error as SmsgateError;
      if (e.code === ErrorCodes.AtCme && e.modemCode === 10) return 'SIM not inserted';
      if (e.code === ErrorCodes.AtCme || e.code === ErrorCodes.AtError) return null;
      throw error;
    }
  }

  /** Everything that identifies the modem, its SIM and its network. Unanswered queries give null. */
  async identify(): Promise<ModemIdentity> {
    const manufacturer = cleanValue(await this.query('AT+CGMI', '+CGMI:'));
    const model = cleanValue(await this.query('AT+CGMM', '+CGMM:'));
    const revision = cleanValue(await this.query('AT+CGMR', '+CGMR:'));
    const imei = await this.identifyImei();
    const imsi = digitsOf(await this.query('AT+CIMI', '+CIMI:'), 6, 15);
    const iccid = await this.iccid();
    const number = parseCnum(await this.queryLines('AT+CNUM'));
    await this.optional('AT+COPS=3,0');
    return { manufacturer, model, revision, imei, imsi, iccid, number, ...(await this.radio()) };
  }

  /** The IMEI alone (the watchdog asks a port that came back whose it is). */
  async identifyImei(): Promise<string | null> {
    return digitsOf(await this.query('AT+CGSN', '+CGSN:'), 14, 16);
  }

  /** The radio now: operator, registration and signal (the dashboard's figures, read at each health check). */
  async radio(): Promise<Pick<ModemIdentity, 'operator' | 'registration' | 'rssi' | 'signalDbm'>> {
    const operator = parseCops(await this.query('AT+COPS?', '+COPS:'));
    const registration = parseCreg(await this.query('AT+CREG?', '+CREG:'));
    const rssi = parseCsq(await this.query('AT+CSQ', '+CSQ:'));
    return { operator, registration, rssi, signalDbm: rssi === null ? null : -113 + 2 * rssi };
  }

  /** ICCID by whichever command this modem knows: +CCID (generic, SIMCom), ^ICCID (Huawei), +QCCID (Quectel), +ICCID. */
  private async iccid(): Promise<string | null> {
    for (const [command, prefix] of [
      ['AT+CCID', '+CCID:'],
      ['AT^ICCID?', '^ICCID:'],
      ['AT+QCCID', '+QCCID:'],
      ['AT+ICCID', '+ICCID:'],
    ] as const) {
      const value = await this.query(command, prefix);
      const iccid = parseIccid(value);
      if (iccid) return iccid;
    }
    return null;
  }

  /**
   * Sends the parts of one message, in order, with nobody else's command between them. A part that fails stops
   * the rest ('not-sent'); the result says which part failed and why. `onSubmitted` is called once, when the first
   * part's PDU has been written to the modem. `ready` is the first part's go-ahead (see AtSession.submitPdu): if it
   * rejects, nothing is sent and send() rejects with its error.
   */
  async send(parts: PduPart[], options: { onSubmitted?: () => void; ready?: () => Promise<void> } = {}): Promise<PartResult[]> {
    let onSubmitted = options.onSubmitted;
    const submitted = () => {
      const call = onSubmitted;
      onSubmitted = undefined;
      call?.();
    };
    return this.channel.hold(async (session) => {
      const results: PartResult[] = [];
      let failed = false;
      let ready = options.ready;
      for (const part of parts) {
        if (failed) {
          results.push({ status: 'not-sent' });
          continue;
        }
        try {
          const timeoutMs = this.options.sendTimeoutMs ?? 60_000;
          const lines = await session.submitPdu(part.length, part.pdu, {
            timeoutMs,
            promptTimeoutMs: Math.min(this.options.promptTimeoutMs ?? 5_000, timeoutMs),
            onSubmitted: submitted,
            ready,
          });
          ready = undefined;
          const reference = Number(valueOf(lines, '+CMGS:')?.split(',')[0]);
          if (!Number.isInteger(reference)) {
            throw new SmsgateError(ErrorCodes.AtBadAnswer, `AT+CMGS: no message reference in ${JSON.stringify(lines)}`, { retry: 'retry-same' });
          }
          results.push({ status: 'sent', reference });
        } catch (error) {
          if (!(error instanceof SmsgateError)) throw error;
          results.push({ status: 'failed', error });
          failed = true;
        }
      }
      return results;
    });
  }

  /**
   * Every message in the modem's storages — SIM (SM), modem (ME) and, where the modem keeps status reports apart,
   * SR — read with AT+CMGL=4 (PDU mode, all), each storage under one hold of the channel so no other command
   * changes the storage between AT+CPMS and AT+CMGL.
   */
  async listMessages(): Promise<StoredSms[]> {
    const out: StoredSms[] = [];
    for (const memory of await this.readMemories()) {
      let lines: string[] | null;
      try {
        lines = await this.channel.hold(async (session) => {
          try {
            await session.run(cpms(memory));
          } catch (error) {
            if ((error as SmsgateError).code === ErrorCodes.PortClosed) throw error;
            return null; // this modem has no such storage (or the SIM is not ready)
          }
          return session.run('AT+CMGL=4', { timeoutMs: 30_000 });
        });
      } catch (error) {
        // One storage refusing the listing (+CMS ERROR on SR, say) must not hide the others.
        if ((error as SmsgateError).code === ErrorCodes.PortClosed || (error as SmsgateError).code === ErrorCodes.AtTimeout) throw error;
        continue;
      }
      if (lines) out.push(...parseCmgl(lines, memory));
    }
    return out;
  }

  private memories: StoredSms['memory'][] | undefined;

  /**
   * The storages AT+CPMS=? offers for reading, among SM, ME and SR; MT (SM and ME as one) where the modem offers
   * only that. Asked once it answers; SM and ME while it does not say.
   */
  private async readMemories(): Promise<StoredSms['memory'][]> {
    if (this.memories) return this.memories;
    const offered = parseCpmsSupport(await this.query('AT+CPMS=?', '+CPMS:'));
    if (!offered) return ['SM', 'ME'];
    const memories = (['SM', 'ME', 'SR'] as const).filter((m) => offered.includes(m));
    this.memories = memories.some((m) => m !== 'SR') ? memories : offered.includes('MT') ? ['MT', ...memories] : ['SM', 'ME', ...memories];
    return this.memories;
  }

  /** Deletes one stored message. */
  async deleteMessage(memory: StoredSms['memory'], index: number): Promise<void> {
    await this.channel.hold(async (session) => {
      await session.run(cpms(memory));
      await session.run(`AT+CMGD=${index}`);
    });
  }

  /**
   * Restarts the modem: AT+CFUN=1,1 (27.007 §8.2, reset before setting full functionality), else the vendor's own
   * reset (Huawei AT^RESET, SIMCom AT+CRESET). The port goes away and comes back (maybe under another name);
   * resolves when a reset was accepted, or the port closed on the way (which is the reset happening).
   */
  async reset(): Promise<string> {
    for (const command of ['AT+CFUN=1,1', 'AT^RESET', 'AT+CRESET']) {
      try {
        // Without the resync a timed-out channel would do first: a modem that answers nothing else may still reset.
        await this.channel.run(command, { timeoutMs: 5_000, resync: false });
        return command;
      } catch (error) {
        const code = (error as SmsgateError).code;
        if (code === ErrorCodes.PortClosed || code === ErrorCodes.AtTimeout) return command;
      }
    }
    throw new SmsgateError(ErrorCodes.AtError, `${this.path}: the modem refused every reset command (AT+CFUN=1,1, AT^RESET, AT+CRESET)`, { retry: 'retry-other' });
  }

  /**
   * Sends a USSD request (`AT+CUSD=1,"code",15`) and waits for the network's `+CUSD` answer, which comes after `OK`
   * on most modems and before it on some.
   */
  async ussd(code: string, timeoutMs = 30_000): Promise<UssdAnswer> {
    if (!/^[0-9*#+]{1,160}$/.test(code)) {
      throw new SmsgateError(ErrorCodes.BadMessage, `"${code}" is not a USSD code (digits, * and #)`, 'code');
    }
    let listener: ((urc: Urc) => void) | null = null;
    // Listen before sending, so an answer can never arrive unobserved.
    const fromUrc = new Promise<UssdAnswer>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new SmsgateError(ErrorCodes.AtTimeout, `USSD ${code}: no answer within ${timeoutMs} ms`, { retry: 'retry-same' })),
        timeoutMs,
      );
      listener = (urc) => {
        const answer = parseCusd(urc.line);
        if (answer) {
          clearTimeout(timer);
          resolve(answer);
        }
      };
      this.channel.on('urc', listener);
    });
    try {
      // Huawei modems take the request GSM-7 packed and hex-coded, as Gammu sends it to them; others take text.
      const request = (await this.isHuawei()) ? packUssd(code) : code;
      const lines = await this.channel.run(`AT+CUSD=1,"${request}",15`, { timeoutMs });
      const inline = lines.map(parseCusd).find((a) => a !== null);
      const answer = inline ?? (await fromUrc);
      // A menu ("action required") would take our next request as its reply: close the session.
      if (answer.status === 'action-required') await this.optional('AT+CUSD=2');
      return answer;
    } finally {
      this.channel.off('urc', listener!);
      fromUrc.catch(() => undefined);
    }
  }

  private manufacturer: string | null | undefined;

  /** Whether this is a Huawei modem (asked once). */
  private async isHuawei(): Promise<boolean> {
    if (this.manufacturer === undefined) this.manufacturer = cleanValue(await this.query('AT+CGMI', '+CGMI:'));
    return /huawei/i.test(this.manufacturer ?? '');
  }

  /** Runs a command whose failure only means "not supported here"; true when it answered OK. */
  private async optional(command: string): Promise<boolean> {
    return (await this.queryLines(command)) !== null;
  }

  /** The answer value of a query, or null when the modem refuses it. */
  private async query(command: string, prefix: string): Promise<string | null> {
    const lines = await this.queryLines(command);
    return lines === null ? null : valueOf(lines, prefix);
  }

  /** The answer lines, or null when the modem refuses the command (ERROR, +CME/+CMS ERROR). */
  private async queryLines(command: string): Promise<string[] | null> {
    try {
      return await this.channel.run(command);
    } catch (error) {
      const code = (error as SmsgateError).code;
      if (code === ErrorCodes.AtError || code === ErrorCodes.AtCme || code === ErrorCodes.AtCms) return null;
      throw error;
    }
  }
}

/** The value after `prefix` in the first line that has it, else the first line (modems that omit the prefix). */
export function valueOf(lines: string[], prefix: string): string | null {
  const tagged = lines.find((l) => l.toUpperCase().startsWith(prefix.toUpperCase()));
  if (tagged !== undefined) return tagged.slice(prefix.length).trim();
  return lines[0]?.trim() ?? null;
}

/** Strips quotes and labels such as "Manufacturer: " or "Revision: " that some modems add. */
export function cleanValue(value: string | null): string | null {
  if (value === null) return null;
  const v = value.replace(/^(manufacturer|model|revision|imei)\s*:\s*/i, '').replace(/^"|"$/g, '').trim();
  return v === '' ? null : v;
}

function digitsOf(value: string | null, min: number, max: number): string | null {
  const m = value === null ? null : new RegExp(`\\d{${min},${max}}`).exec(value.replace(/["\s]/g, ''));
  return m ? m[0] : null;
}

/** ICCID digits (18 to 22); Huawei's ^ICCID gives them nibble-swapped ("98…" for "89…"). */
export function parseIccid(value: string | null): string | null {
  if (value === null) return null;
  let v = value.replace(/["\s]/g, '').toUpperCase();
  if (!/^[0-9F]{18,22}$/.test(v)) return null;
  if (v.startsWith('98')) v = v.replace(/(.)(.)/g, '$2$1');
  v = v.replace(/F+$/, '');
  return /^\d{18,22}$/.test(v) ? v : null;
}

/** `+CNUM: "alpha","number",type` -> the number ("+" for type 145). */
export function parseCnum(lines: string[] | null): string | null {
  for (const line of lines ?? []) {
    const m = /^\+CNUM:\s*(?:"[^"]*"|[^,]*),\s*"([^"]+)",\s*(\d+)/.exec(line);
    if (m) return m[2] === '145' && !m[1]!.startsWith('+') ? `+${m[1]}` : m[1]!;
  }
  return null;
}

/** `+COPS: 0,0,"MegaFon",2` -> "MegaFon"; null when not registered. */
export function parseCops(value: string | null): string | null {
  const m = value === null ? null : /^\d+\s*,\s*\d+\s*,\s*"([^"]*)"/.exec(value);
  return m ? m[1]! : null;
}

const REGISTRATION: Registration[] = ['not-registered', 'home', 'searching', 'denied', 'unknown', 'roaming'];

/** `+CREG: <n>,<stat>[,…]` (answer) or `+CREG: <stat>` (URC form) -> the registration state. */
export function parseCreg(value: string | null): Registration {
  if (value === null) return 'unknown';
  const fields = value.split(',').map((f) => f.trim());
  // With two or more fields the second is <stat>, unless the first is a lone <stat> followed by LAC/CI (quoted).
  const stat = fields.length >= 2 && !fields[1]!.startsWith('"') ? fields[1] : fields[0];
  return REGISTRATION[Number(stat)] ?? 'unknown';
}

/** `+CSQ: <rssi>,<ber>` -> rssi 0..31, null for 99 (unknown). */
export function parseCsq(value: string | null): number | null {
  const rssi = value === null ? NaN : Number(value.split(',')[0]);
  return Number.isInteger(rssi) && rssi >= 0 && rssi <= 31 ? rssi : null;
}

/**
 * The storages `AT+CPMS=?` offers for <mem1> (reading, deleting): `("SM","ME","SR"),(…),(…)`, also as modems
 * really write it — quotes missing (`(ME", "SR")`), no parentheses for a single choice (`"SM","SM","SM"`). Null
 * when the answer says nothing usable.
 */
export function parseCpmsSupport(answer: string | null): string[] | null {
  if (answer === null) return null;
  const group = /^\s*\(([^)]*)\)/.exec(answer);
  const list = group ? group[1]!.split(',') : [answer.split(',')[0]!];
  const names = list.map((m) => m.trim().replace(/"/g, '').toUpperCase()).filter((m) => /^[A-Z_]{2,5}$/.test(m));
  return names.length > 0 ? names : null;
}

/** AT+CPMS selecting `memory` for reading and deleting (<mem1>: what AT+CMGL, +CMGR and +CMGD work on). */
function cpms(memory: StoredSms['memory']): string {
  return `AT+CPMS="${memory}"`;
}

/** `+CMGL: <index>,<stat>,[<alpha>],<length>` followed by the PDU line. */
export function parseCmgl(lines: string[], memory: StoredSms['memory']): StoredSms[] {
  const out: StoredSms[] = [];
  for (let i = 0; i < lines.length; i++) {
    // <alpha> may be empty, unquoted, or a quoted name with commas in it ("Smith, John").
    const m = /^\+CMGL:\s*(\d+)\s*,\s*(\d+)\s*,\s*(?:"[^"]*"|[^,]*)\s*,\s*(\d+)/.exec(lines[i]!);
    if (!m) continue;
    const pdu = lines[i + 1];
    if (pdu === undefined || !/^[0-9A-Fa-f]+$/.test(pdu)) continue;
    out.push({ memory, index: Number(m[1]), stat: Number(m[2]), length: Number(m[3]), pdu });
    i++;
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
