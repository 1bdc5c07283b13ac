/**
 * A simulated GSM modem: the AT behaviour of one physical modem (its SIM, storage and network), answering on each
 * of its AT ports through a `SimPortSession`.
 *
 * Theory of operation. A session gets the bytes a client writes and answers like a modem: it echoes while echo is
 * on (ATE1, the power-on default, which Gammu relies on), reads a command line up to CR, answers in verbose form
 * (`\r\nOK\r\n`, `+CME ERROR: n` under AT+CMEE=1, text under =2, bare ERROR under =0), and after `AT+CMGS=n` prints
 * the `\r\n> ` prompt (no line end) and takes the PDU up to Ctrl-Z (ESC cancels). A submitted PDU is decoded with
 * our own codec and recorded as what the network received, after the configured latency, with a message reference
 * that counts up. The answers follow the recorded dialogues of real Gammu (test/fixtures/dialogues) and 27.005 /
 * 27.007; `flavour` adds a vendor's ways (Huawei ^ICCID and ^RSSI noise, SIMCom +CCID, Quectel +QCCID).
 *
 * Faults are set on the modem and take effect on the next command they apply to: a `+CMS ERROR` on the next sends, a
 * hang (no answer at all), loss of registration, a PIN request.
 */
import { decodePdu, encodeDeliver, type DecodedPdu } from '../pdu/index.js';
import { encodeTimestamp } from '../pdu/timestamp.js';
import { toHex } from '../pdu/octets.js';
import { encodeAddress } from '../pdu/address.js';
import { isGsm7 } from '../pdu/gsm7.js';
import { packUssd, unpackUssd } from '../ussd.js';

export type Flavour = 'generic' | 'huawei' | 'zte' | 'simcom' | 'quectel';

export interface SimIdentity {
  manufacturer: string;
  model: string;
  revision: string;
  imei: string;
  imsi: string;
  iccid: string;
  /** The SIM's own number, or null when the SIM does not know it (AT+CNUM empty). */
  number: string | null;
  operator: string;
  /** Numeric operator code (MCC MNC). */
  operatorCode: string;
  smsc: string;
  /** RSSI as AT+CSQ reports it (0..31, 99 unknown). */
  rssi: number;
  pin: string | null;
}

/** What the network received for one submitted part: the simulator's record, the tests' ground truth. */
export interface NetworkRecord {
  time: string;
  /** When the AT+CMGS command of this part reached the modem (ms since the epoch). */
  commandAt: number;
  /** When its PDU (up to Ctrl-Z) reached the modem; the network's latency counts from here. */
  pduAt: number;
  modem: number;
  imei: string;
  imsi: string;
  port: string;
  mr: number;
  pdu: string;
  length: number;
  to: string;
  text: string | null;
  encoding: DecodedPdu['encoding'];
  class: number | null;
  pid: number;
  replace: number | null;
  report: boolean;
  concat: DecodedPdu['concat'];
  validity: DecodedPdu['validity'];
}

export type Fault =
  | { type: 'cms'; code: number; times?: number }
  /** No answer at all to the next `times` commands; `resettable`: AT+CFUN=1,1 still restarts it (firmware that hung above the reset). */
  | { type: 'hang'; times?: number; resettable?: boolean }
  /** The next command (or send) is answered, but only after `ms`. */
  | { type: 'delay'; ms: number; times?: number }
  | { type: 'unregister' }
  | { type: 'register' }
  | { type: 'pin'; pin?: string }
  /**
   * The next `times` status reports the network sends by itself (for messages with TP-SRR): with TP-ST `status`
   * (e.g. 0x41, failed permanently) instead of 0 (delivered), or held back (`hold`: the test pushes them later, in
   * the order it likes, with the control op "report").
   */
  | { type: 'reports'; status?: number; hold?: boolean; times?: number }
  | { type: 'clear' };

interface StoredMessage {
  index: number;
  /** 0 received unread, 1 received read, 2 stored unsent, 3 stored sent (27.005 §3.1). */
  stat: number;
  pdu: string;
  length: number;
}

export interface SimModemOptions {
  index: number;
  identity: SimIdentity;
  flavour?: Flavour;
  /** Milliseconds between a submitted PDU and `+CMGS: <mr>`. */
  latencyMs?: number;
  /** Vendor status lines in the middle of answers. */
  noise?: boolean;
  record: (record: NetworkRecord) => void;
}

const STORAGE_SIZE = 30;

export class SimModem {
  readonly index: number;
  readonly identity: SimIdentity;
  readonly flavour: Flavour;
  latencyMs: number;
  noise: boolean;
  private readonly record: (record: NetworkRecord) => void;
  private readonly sessions = new Set<SimPortSession>();
  private readonly storage: Record<'SM' | 'ME' | 'SR', StoredMessage[]> = { SM: [], ME: [], SR: [] };
  registered = true;
  pinState: 'READY' | 'SIM PIN' = 'READY';
  private cmsFault: { code: number; times: number } | null = null;
  private hangFault: { times: number; resettable: boolean } | null = null;
  private delayFault: { ms: number; times: number } | null = null;
  private nextMr = 1;
  private reportFault: { status: number | null; hold: boolean; times: number } | null = null;
  /** USSD answers by code, e.g. "*100#" -> "Balance 123.45 RUB"; `status` 1 for a menu that wants a reply. */
  readonly ussd = new Map<string, string | { text: string; status: number }>();
  /** USSD sessions closed with AT+CUSD=2 (tests check that menus get closed). */
  ussdClosed = 0;

  constructor(options: SimModemOptions) {
    this.index = options.index;
    this.identity = options.identity;
    this.flavour = options.flavour ?? 'generic';
    this.latencyMs = options.latencyMs ?? 0;
    this.noise = options.noise ?? false;
    this.record = options.record;
    if (options.identity.pin) this.pinState = 'SIM PIN';
  }

  /** A new AT session for one of this modem's ports; `write` sends bytes to the client. */
  attach(port: string, write: (text: string) => void): SimPortSession {
    const session = new SimPortSession(this, port, write);
    this.sessions.add(session);
    return session;
  }

  detach(session: SimPortSession): void {
    this.sessions.delete(session);
  }

  applyFault(fault: Fault): void {
    switch (fault.type) {
      case 'cms':
        this.cmsFault = { code: fault.code, times: fault.times ?? 1 };
        break;
      case 'hang':
        this.hangFault = { times: fault.times ?? 1, resettable: fault.resettable ?? false };
        break;
      case 'delay':
        this.delayFault = { ms: fault.ms, times: fault.times ?? 1 };
        break;
      case 'unregister':
        this.registered = false;
        break;
      case 'register':
        this.registered = true;
        break;
      case 'pin':
        if (fault.pin) this.identity.pin = fault.pin;
        this.pinState = 'SIM PIN';
        break;
      case 'reports':
        this.reportFault = { status: fault.status ?? null, hold: fault.hold ?? false, times: fault.times ?? 1 };
        break;
      case 'clear':
        this.reportFault = null;
        this.cmsFault = null;
        this.hangFault = null;
        this.delayFault = null;
        this.registered = true;
        break;
    }
  }

  /** Takes one hang from the fault, if any: true means "do not answer this command". */
  takeHang(command = ''): boolean {
    if (!this.hangFault) return false;
    if (this.hangFault.resettable && /^AT\+CFUN=1,1$/i.test(command.trim())) return false;
    if (--this.hangFault.times <= 0) this.hangFault = null;
    return true;
  }

  /** Milliseconds to hold back the next answer, from a delay fault; 0 without one. */
  takeDelay(): number {
    if (!this.delayFault) return 0;
    const { ms } = this.delayFault;
    if (--this.delayFault.times <= 0) this.delayFault = null;
    return ms;
  }

  takeCms(): number | null {
    if (!this.cmsFault) return null;
    const { code } = this.cmsFault;
    if (--this.cmsFault.times <= 0) this.cmsFault = null;
    return code;
  }

  /** Sets the next TP-MR the network hands out (tests of references that wrap at 255). */
  setNextReference(mr: number): void {
    this.nextMr = mr % 256;
  }

  /** The automatic status report for `mr`: sent (with its status) or held, as the reports fault says. */
  autoReport(mr: number, to: string): void {
    const fault = this.reportFault;
    if (fault && fault.times > 0) {
      fault.times--;
      if (fault.times === 0) this.reportFault = null;
      if (fault.hold) return;
      this.statusReport(mr, to, fault.status ?? 0);
      return;
    }
    this.statusReport(mr, to, 0);
  }

  messageReference(): number {
    const mr = this.nextMr;
    this.nextMr = (this.nextMr + 1) % 256;
    return mr;
  }

  recordSubmit(port: string, mr: number, pdu: string, decoded: DecodedPdu, commandAt: number, pduAt: number): void {
    this.record({
      time: new Date().toISOString(),
      commandAt,
      pduAt,
      modem: this.index,
      imei: this.identity.imei,
      imsi: this.identity.imsi,
      port,
      mr,
      pdu,
      length: decoded.length,
      to: decoded.number,
      text: decoded.text,
      encoding: decoded.encoding,
      class: decoded.class,
      pid: decoded.pid,
      replace: decoded.replace,
      report: decoded.reportRequested,
      concat: decoded.concat,
      validity: decoded.validity,
    });
  }

  list(memory: 'SM' | 'ME' | 'SR'): StoredMessage[] {
    return this.storage[memory];
  }

  store(memory: 'SM' | 'ME' | 'SR', stat: number, pdu: string): number | null {
    const box = this.storage[memory];
    if (box.length >= STORAGE_SIZE) return null;
    let index = 1;
    while (box.some((m) => m.index === index)) index++;
    const smscOctets = parseInt(pdu.slice(0, 2), 16) + 1;
    box.push({ index, stat, pdu, length: pdu.length / 2 - smscOctets });
    box.sort((a, b) => a.index - b.index);
    return index;
  }

  remove(memory: 'SM' | 'ME' | 'SR', index: number): boolean {
    const box = this.storage[memory];
    const at = box.findIndex((m) => m.index === index);
    if (at < 0) return false;
    box.splice(at, 1);
    return true;
  }

  /**
   * An incoming SMS: stored in SM (or ME when SM is full) and announced with +CMTI on every AT port. `parts` picks
   * which parts of a concatenated text arrive now and in what order (1-based; default all, in order); with a fixed
   * `reference` a later call delivers the rest of the same message.
   */
  deliver(
    from: string,
    text: string,
    options: { alphanumeric?: boolean; flash?: boolean; timestamp?: string; parts?: number[]; reference?: number; concat16?: boolean; encoding?: 'gsm7' | 'ucs2' } = {},
  ): number {
    const timestamp = options.timestamp ?? localTimestamp();
    const message = encodeDeliver({
      from,
      text,
      alphanumeric: options.alphanumeric,
      flash: options.flash,
      timestamp,
      smsc: this.identity.smsc,
      reference: options.reference,
      concat16: options.concat16,
      encoding: options.encoding,
    });
    for (const seq of options.parts ?? message.parts.map((_, i) => i + 1)) {
      const part = message.parts[seq - 1];
      if (!part) throw new Error(`the message has ${message.parts.length} parts, not ${seq}`);
      const memory = this.storage.SM.length < STORAGE_SIZE ? 'SM' : 'ME';
      const index = this.store(memory, 0, part.pdu);
      if (index !== null) this.broadcast(`\r\n+CMTI: "${memory}",${index}\r\n`);
    }
    return message.parts.length;
  }

  /** Status reports stored in SR and announced with +CDSI (CNMI <ds>=2) instead of pushed as +CDS. */
  storeReports = false;
  /** What AT+CFUN=1,1 does: the simulator re-plugs the modem (set by the Simulator). */
  onReset: (() => void) | null = null;

  /** A status report for message reference `mr` to `to`: pushed as +CDS (27.005 §3.4.1, <ds>=1) or stored. */
  statusReport(mr: number, to: string, status = 0): void {
    const now = localTimestamp();
    const tpdu = [0x06, mr, ...encodeAddress(to), ...encodeTimestamp(now), ...encodeTimestamp(now), status];
    if (this.storeReports) {
      const index = this.store('SR', 0, `00${toHex(tpdu)}`);
      if (index !== null) this.broadcast(`\r\n+CDSI: "SR",${index}\r\n`);
      return;
    }
    this.broadcast(`\r\n+CDS: ${tpdu.length}\r\n00${toHex(tpdu)}\r\n`);
  }

  broadcast(text: string): void {
    for (const session of this.sessions) session.unsolicited(text);
  }

  /** The USSD answer as `+CUSD` carries it: UCS-2 hex (DCS 72), or GSM-7 packed hex on Huawei (DCS 15). */
  ussdAnswer(code: string): string {
    const entry = this.ussd.get(code) ?? `Unknown USSD code ${code}`;
    const { text, status } = typeof entry === 'string' ? { text: entry, status: 0 } : entry;
    if (this.flavour === 'huawei' && isGsm7(text)) return `+CUSD: ${status},"${packUssd(text)}",15`;
    if (isGsm7(text) && this.flavour !== 'zte') return `+CUSD: ${status},"${text}",15`;
    let hex = '';
    for (let i = 0; i < text.length; i++) hex += text.charCodeAt(i).toString(16).padStart(4, '0').toUpperCase();
    return `+CUSD: ${status},"${hex}",72`;
  }

  /** Boot noise a modem prints when it comes up (after a replug). */
  bootLines(): string[] {
    switch (this.flavour) {
      case 'huawei':
        return ['^BOOT:20527193,0,0,0,75', '^SIMST: 1'];
      case 'quectel':
        return ['RDY', '+CFUN: 1', '+CPIN: READY', '+QUSIM: 1', 'SMS DONE', 'PB DONE'];
      case 'simcom':
        return ['RDY', '+CFUN: 1', '+CPIN: READY', 'SMS DONE', 'PB DONE'];
      case 'zte':
        return ['+ZUSIMR:2', '+ZPBIC: 1,1'];
      default:
        return [];
    }
  }
}

/** One AT port's session: its own echo, error mode and input state, sharing the modem. */
export class SimPortSession {
  private echo = true;
  private cmee = 0;
  private input = '';
  private pduLength: number | null = null;
  private memories: ['SM' | 'ME' | 'SR', 'SM' | 'ME' | 'SR', 'SM' | 'ME' | 'SR'] = ['SM', 'SM', 'SM'];
  private cregMode = 0;
  private copsFormat = 0;
  private cmgf = 0;
  private cmgsAt = 0;
  private busy: Promise<void> = Promise.resolve();

  constructor(
    private readonly modem: SimModem,
    readonly port: string,
    private readonly write: (text: string) => void,
  ) {}

  /** Bytes from the client. */
  receive(text: string): void {
    for (const ch of text) this.receiveChar(ch);
  }

  unsolicited(text: string): void {
    // Announcements wait for the answer in progress, as a modem buffers them (27.005 <bfr>).
    this.busy = this.busy.then(() => this.write(text));
  }

  private receiveChar(ch: string): void {
    if (this.pduLength !== null) {
      if (ch === '\x1a' || ch === '\x1b') {
        const pdu = this.input.replace(/\s+/g, '');
        const length = this.pduLength;
        this.input = '';
        this.pduLength = null;
        const pduAt = Date.now();
        if (ch === '\x1a') this.serialise(() => this.submit(length, pdu, pduAt));
        else this.serialise(async () => this.write('\r\nOK\r\n'));
        return;
      }
      if (this.echo) this.write(ch);
      this.input += ch;
      return;
    }
    if (ch === '\r') {
      if (this.echo) this.write(ch);
      const line = this.input.replace(/^[^A-Za-z]*/, '').trim();
      this.input = '';
      if (line !== '') this.serialise(() => this.command(line));
      return;
    }
    if (ch === '\n' || ch === '\x1b' || ch === '\x1a') return;
    if (this.echo) this.write(ch);
    this.input += ch;
  }

  private serialise(task: () => Promise<void> | void): void {
    this.busy = this.busy.then(task).catch((error: unknown) => {
      this.write(`\r\nERROR\r\n`);
      console.error('simulator: command failed:', error);
    });
  }

  private ok(lines: string[] = []): void {
    let out = '';
    lines.forEach((line, i) => {
      out += `\r\n${line}\r\n`;
      if (this.modem.noise && i === 0) out += `\r\n${this.noiseLine()}\r\n`;
    });
    if (this.modem.noise && lines.length === 0) out += `\r\n${this.noiseLine()}\r\n`;
    this.write(`${out}\r\nOK\r\n`);
  }

  private noiseLine(): string {
    switch (this.modem.flavour) {
      case 'huawei':
        return `^RSSI: ${this.modem.identity.rssi}`;
      case 'zte':
        return '+ZUSIMR:2';
      case 'quectel':
        return '+QIND: "csq",20,99';
      default:
        return `+CIEV: 2,${Math.min(5, Math.floor(this.modem.identity.rssi / 6))}`;
    }
  }

  private error(): void {
    this.write('\r\nERROR\r\n');
  }

  private cme(code: number, text: string): void {
    if (this.cmee === 0) this.error();
    else this.write(`\r\n+CME ERROR: ${this.cmee === 2 ? text : code}\r\n`);
  }

  private cms(code: number, text: string): void {
    if (this.cmee === 0) this.error();
    else this.write(`\r\n+CMS ERROR: ${this.cmee === 2 ? text : code}\r\n`);
  }

  private simReady(sms: boolean): boolean {
    if (this.modem.pinState === 'READY') return true;
    if (sms) this.cms(311, 'SIM PIN required');
    else this.cme(11, 'SIM PIN required');
    return false;
  }

  /** Answers `lines` when the SIM is ready, the PIN error otherwise. */
  private ifReady(sms: boolean, lines: string[]): void {
    if (this.simReady(sms)) this.ok(lines);
  }

  private async command(line: string): Promise<void> {
    if (this.modem.takeHang(line)) return;
    const delay = this.modem.takeDelay();
    if (delay > 0) {
      // Answer late, without holding up the port: the client may have timed out and sent more meanwhile.
      setTimeout(() => void this.command(line), delay);
      return;
    }
    const upper = line.toUpperCase();
    if (!upper.startsWith('AT')) return this.error();
    const body = line.slice(2);
    const cmd = body.toUpperCase();
    const id = this.modem.identity;
    const flavour = this.modem.flavour;

    if (cmd === '' || cmd === 'Z' || cmd === '&F' || cmd === '&F0' || cmd === 'Z0') {
      if (cmd !== '') this.echo = true;
      return this.ok();
    }
    if (/^E[01]?$/.test(cmd)) {
      this.echo = cmd === 'E1';
      return this.ok();
    }
    if (/^(Q0|V1|&C1|&D[012]|X[0-4]|S0=0)$/.test(cmd)) return this.ok();
    if (cmd === 'I' || cmd === 'I0') return this.ok([`Manufacturer: ${id.manufacturer}`, `Model: ${id.model}`, `Revision: ${id.revision}`, `IMEI: ${id.imei}`]);
    if (cmd === 'I3') return this.ok([id.model]);
    if (cmd === 'I5') return this.ok([id.revision]);
    if (cmd === '+CGMI' || cmd === '+GMI') return this.ok([id.manufacturer]);
    if (cmd === '+CGMM' || cmd === '+GMM') return this.ok([id.model]);
    if (cmd === '+CGMR' || cmd === '+GMR') return this.ok([flavour === 'quectel' ? `Revision: ${id.revision}` : id.revision]);
    if (cmd === '+CGSN' || cmd === '+GSN') return this.ok([id.imei]);
    if (cmd === '+CGSN=?' || cmd === '+CIMI=?') return this.ok();
    if (cmd === '+CMEE?') return this.ok([`+CMEE: ${this.cmee}`]);
    const cmee = /^\+CMEE=([0-2])$/.exec(cmd);
    if (cmee) {
      this.cmee = Number(cmee[1]);
      return this.ok();
    }
    if (cmd === '+CPIN?') return this.ok([`+CPIN: ${this.modem.pinState}`]);
    const pin = /^\+CPIN="?(\d{4,8})"?$/.exec(cmd);
    if (pin) {
      if (this.modem.pinState === 'READY') return this.cme(3, 'operation not allowed');
      if (pin[1] !== id.pin) return this.cme(16, 'incorrect password');
      this.modem.pinState = 'READY';
      return this.ok();
    }
    if (cmd === '+CIMI') return this.ifReady(false, [id.imsi]);
    if (cmd === '+CCID' && (flavour === 'generic' || flavour === 'zte')) return this.ifReady(false, [`+CCID: ${id.iccid}`]);
    if (cmd === '+CCID' && flavour === 'simcom') return this.ifReady(false, [id.iccid]);
    if (cmd === '+QCCID' && flavour === 'quectel') return this.ifReady(false, [`+QCCID: ${id.iccid}`]);
    if (cmd === '^ICCID?' && flavour === 'huawei') return this.ifReady(false, [`^ICCID: ${swapNibbles(id.iccid)}`]);
    if (cmd === '+CNUM') {
      if (!this.simReady(false)) return;
      return this.ok(id.number ? [`+CNUM: "","${id.number}",${id.number.startsWith('+') ? 145 : 129}`] : []);
    }
    if (cmd === '+CFUN?') return this.ok(['+CFUN: 1']);
    if (cmd === '+CFUN=1,1' && this.modem.onReset) {
      // A reset: OK, then the ports go away and come back after the modem's boot.
      this.ok();
      const reset = this.modem.onReset;
      setTimeout(reset, 20);
      return;
    }
    if (/^\+CFUN=[01](,[01])?$/.test(cmd)) return this.ok();
    if (cmd === '+CSCS?') return this.ok(['+CSCS: "GSM"']);
    if (cmd === '+CSCS=?') return this.ok(['+CSCS: ("GSM","UCS2","IRA")']);
    if (/^\+CSCS="(GSM|UCS2|IRA)"$/.test(cmd)) return this.ok();
    if (cmd === '+CMGF?') return this.ok([`+CMGF: ${this.cmgf}`]);
    if (cmd === '+CMGF=?') return this.ok(['+CMGF: (0,1)']);
    const cmgf = /^\+CMGF=([01])$/.exec(cmd);
    if (cmgf) {
      this.cmgf = Number(cmgf[1]);
      return this.ok();
    }
    if (cmd === '+CSCA?') return this.ok([`+CSCA: "${id.smsc}",${id.smsc.startsWith('+') ? 145 : 129}`]);
    const csca = /^\+CSCA="([+\d]+)"(,\d+)?$/.exec(cmd);
    if (csca) {
      id.smsc = csca[1]!;
      return this.ok();
    }
    if (cmd === '+CSMS?') return this.ok(['+CSMS: 0,1,1,1']);
    if (/^\+CSMS=[01]$/.test(cmd)) return this.ok(['+CSMS: 1,1,1']);
    if (cmd === '+CSMP?') return this.ok(['+CSMP: 17,167,0,0']);
    if (/^\+CSMP=/.test(cmd)) return this.ok();
    if (cmd === '+CNMI=?') return this.ok(['+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)']);
    if (/^\+CNMI=[\d,]*$/.test(cmd)) return this.ok();
    if (cmd === '+CMMS=?') return this.ok(['+CMMS: (0-2)']);
    if (/^\+CMMS=[0-2]$/.test(cmd)) return this.ok();
    if (cmd === '+CPMS=?') return this.ok(['+CPMS: ("SM","ME","SR"),("SM","ME"),("SM","ME")']);
    if (cmd === '+CPMS?') {
      const [m1, m2, m3] = this.memories;
      const count = (m: 'SM' | 'ME' | 'SR') => `"${m}",${this.modem.list(m).length},${STORAGE_SIZE}`;
      return this.ok([`+CPMS: ${count(m1)},${count(m2)},${count(m3)}`]);
    }
    const cpms = /^\+CPMS="(SM|ME|SR|MT)"(?:,"(SM|ME|MT)")?(?:,"(SM|ME|MT)")?$/.exec(cmd);
    if (cpms) {
      if (!this.simReady(true)) return;
      const pick = (m: string | undefined, fallback: 'SM' | 'ME' | 'SR') => (m === undefined ? fallback : m === 'MT' ? 'SM' : (m as 'SM' | 'ME' | 'SR'));
      this.memories = [pick(cpms[1], 'SM'), pick(cpms[2], this.memories[1]), pick(cpms[3], this.memories[2])];
      const usage = this.memories.map((m) => `${this.modem.list(m).length},${STORAGE_SIZE}`).join(',');
      return this.ok([`+CPMS: ${usage}`]);
    }
    if (cmd === '+CREG?') return this.ok([`+CREG: ${this.cregMode},${this.modem.registered ? 1 : 0}`]);
    if (cmd === '+CGREG?') return this.ok([`+CGREG: 0,${this.modem.registered ? 1 : 0}`]);
    const creg = /^\+C(G)?REG=([0-2])$/.exec(cmd);
    if (creg) {
      if (!creg[1]) this.cregMode = Number(creg[2]);
      return this.ok();
    }
    const copsSet = /^\+COPS=3,([0-2])$/.exec(cmd);
    if (copsSet) {
      this.copsFormat = Number(copsSet[1]);
      return this.ok();
    }
    if (cmd === '+COPS=0') return this.ok();
    if (cmd === '+COPS?') {
      if (!this.modem.registered) return this.ok(['+COPS: 0']);
      const name = this.copsFormat === 2 ? id.operatorCode : id.operator;
      return this.ok([`+COPS: 0,${this.copsFormat},"${name}",2`]);
    }
    if (cmd === '+CSQ') return this.ok([`+CSQ: ${this.modem.registered ? id.rssi : 99},99`]);
    if (cmd === '+CBC') return this.ok(['+CBC: 0,100']);
    if (cmd === '+CHUP=?') return this.ok();
    if (/^\^CURC=[01]$/.test(cmd) && flavour === 'huawei') return this.ok();
    // Huawei: which port carries unsolicited results; Gammu's Huawei module requires it.
    if (/^\^PORTSEL=[01]$/.test(cmd) && flavour === 'huawei') return this.ok();
    if (cmd === '^PORTSEL?' && flavour === 'huawei') return this.ok(['^PORTSEL: 0']);
    const cmgl = /^\+CMGL(?:=(\d))?$/.exec(cmd);
    if (cmgl) {
      if (this.cmgf !== 0) return this.cms(302, 'operation not allowed');
      if (!this.simReady(true)) return;
      const stat = cmgl[1] === undefined ? 0 : Number(cmgl[1]);
      const lines: string[] = [];
      for (const m of this.modem.list(this.memories[0])) {
        if (stat !== 4 && m.stat !== stat) continue;
        lines.push(`+CMGL: ${m.index},${m.stat},,${m.length}`, m.pdu);
        if (m.stat === 0) m.stat = 1;
      }
      return this.ok(lines);
    }
    const cmgr = /^\+CMGR=(\d+)$/.exec(cmd);
    if (cmgr) {
      if (!this.simReady(true)) return;
      const m = this.modem.list(this.memories[0]).find((x) => x.index === Number(cmgr[1]));
      if (!m) return this.cms(321, 'invalid memory index');
      const lines = [`+CMGR: ${m.stat},,${m.length}`, m.pdu];
      if (m.stat === 0) m.stat = 1;
      return this.ok(lines);
    }
    const cmgd = /^\+CMGD=(\d+)(?:,([0-4]))?$/.exec(cmd);
    if (cmgd) {
      if (!this.simReady(true)) return;
      const flag = Number(cmgd[2] ?? 0);
      const box = this.memories[0];
      if (flag === 0) {
        return this.modem.remove(box, Number(cmgd[1])) ? this.ok() : this.cms(321, 'invalid memory index');
      }
      const doomed = this.modem.list(box).filter((m) => flag === 4 || m.stat === 1 || (flag >= 2 && m.stat === 3) || (flag >= 3 && m.stat === 2));
      for (const m of doomed) this.modem.remove(box, m.index);
      return this.ok();
    }
    const cmgs = /^\+CMGS=(\d+)$/.exec(cmd);
    if (cmgs) {
      if (this.cmgf !== 0) return this.cms(302, 'operation not allowed');
      if (!this.simReady(true)) return;
      this.pduLength = Number(cmgs[1]);
      this.cmgsAt = Date.now();
      this.input = '';
      this.write('\r\n> ');
      return;
    }
    const cusd = /^\+CUSD=([0-2])(?:,"([^"]*)"(?:,(\d+))?)?$/.exec(cmd);
    if (cusd) {
      if (!this.simReady(false)) return;
      if (cusd[1] === '2') this.modem.ussdClosed++;
      if (cusd[1] === '2' || cusd[2] === undefined) return this.ok();
      if (!this.modem.registered) return this.cme(30, 'no network service');
      let request = cusd[2];
      if (flavour === 'huawei') {
        // Huawei takes the request GSM-7 packed, hex-coded (what Gammu sends it); plain text is refused.
        if (!/^([0-9A-F]{2})+$/.test(request)) return this.error();
        request = unpackUssd(request);
      }
      this.ok();
      const answer = this.modem.ussdAnswer(request);
      setTimeout(() => this.unsolicited(`\r\n${answer}\r\n`), Math.min(this.modem.latencyMs, 2000));
      return;
    }
    return this.error();
  }

  private async submit(length: number, pdu: string, pduAt: number): Promise<void> {
    if (this.modem.takeHang()) return;
    let decoded: DecodedPdu;
    try {
      decoded = decodePdu(pdu, {});
    } catch {
      return this.cms(304, 'invalid PDU mode parameter');
    }
    if (decoded.type !== 'submit' || decoded.length !== length) return this.cms(304, 'invalid PDU mode parameter');
    // The network answers `latency` after the PDU arrived (decoding it is the modem's time, not the network's).
    const wait = pduAt + this.modem.latencyMs - Date.now();
    if (this.modem.latencyMs > 0 && wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (!this.modem.registered) return this.cms(331, 'no network service');
    const fault = this.modem.takeCms();
    if (fault !== null) return this.cms(fault, `error ${fault}`);
    const mr = this.modem.messageReference();
    this.modem.recordSubmit(this.port, mr, pdu, decoded, this.cmgsAt, pduAt);
    this.ok([`+CMGS: ${mr}`]);
    // The network confirms delivery when asked (TP-SRR): a status report as +CDS, a moment later.
    if (decoded.reportRequested) setTimeout(() => this.modem.autoReport(mr, decoded.number), Math.max(10, this.modem.latencyMs));
  }
}

/** Huawei's ^ICCID prints the ICCID with the nibbles of each octet swapped, as stored on the SIM. */
export function swapNibbles(digits: string): string {
  let out = '';
  for (let i = 0; i < digits.length; i += 2) out += (digits[i + 1] ?? 'F') + digits[i];
  return out;
}

function localTimestamp(): string {
  const now = new Date();
  const offset = -now.getTimezoneOffset();
  const local = new Date(now.getTime() + offset * 60_000).toISOString().slice(0, 19);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}
