/**
 * The AT channel: the one owner of a modem port's command stream.
 *
 * Theory of operation. Commands wait in a FIFO behind a mutex; exactly one is in flight. For the command in flight
 * the channel collects intermediate lines and finishes on a final result code (V.250 §5.7, 27.005 §3.2.5,
 * 27.007 §9.2): `OK` resolves; `ERROR`, `+CME ERROR: n`, `+CMS ERROR: n`, `NO CARRIER`, `BUSY`, `NO ANSWER`,
 * `NO DIALTONE` reject with a typed SmsgateError carrying the number, its meaning and the retry class. Every line is
 * first checked against the unsolicited result codes (`+CMTI`, `+CDS`, `+CUSD`, `RING`, `^RSSI`, …): those go to
 * `urc` listeners whenever they arrive, in the middle of an answer too, and never end up in it — except a line with
 * the command's own answer prefix (the `+CREG:` answering `AT+CREG?`). `+CMT:` and `+CDS:` take the next line (the
 * PDU) with them. The echo of the command (`ATE1`) is dropped.
 *
 * `AT+CMGS` has two stages: the command, then the `> ` prompt (no line end; see framer.ts), then the PDU and
 * Ctrl-Z, then `+CMGS: <mr>` and `OK`. If the prompt does not come in time, ESC cancels the input state.
 *
 * A timeout leaves the modem in an unknown state (a late `OK` could be taken for the next command's), so the next
 * command first resynchronises: it waits for the line to go quiet and sends `AT` until an `OK` comes back. A port
 * that closes fails the command in flight and all queued ones at once with PORT_CLOSED. `hold()` runs several
 * commands with nobody else's in between (all parts of one message).
 */
import { EventEmitter } from 'node:events';
import { ErrorCodes, SmsgateError } from '../errors.js';
import { cmeInfo, cmsInfo, codeOfText } from './codes.js';
import { AtFramer } from './framer.js';

/** Bytes in and out; a serial port, a pty or an SSH stream. */
export interface Transport {
  readonly path: string;
  readonly isOpen: boolean;
  /** Resolves once the bytes are handed to the OS; rejects with PORT_CLOSED if the port is gone. */
  write(data: string): Promise<void>;
  onData(listener: (chunk: Uint8Array) => void): void;
  onClose(listener: (error?: Error) => void): void;
  close(): Promise<void>;
}

/** An unsolicited result code; `pdu` is the line that follows `+CMT:` / `+CDS:`. */
export interface Urc {
  line: string;
  pdu?: string;
}

export interface CommandOptions {
  /** Milliseconds until AT_TIMEOUT (default: the channel's). */
  timeoutMs?: number;
  /**
   * Resynchronise first if an earlier command timed out (default true). `false` for commands that are themselves
   * the check, such as the `AT` of a probe.
   */
  resync?: boolean;
}

interface ExecuteOptions {
  timeoutMs: number;
  resync: boolean;
  /** For AT+CMGS: the PDU to write at the prompt, and how long to wait for the prompt. */
  pdu?: string;
  promptTimeoutMs?: number;
  onSubmitted?: () => void;
  ready?: () => Promise<void>;
}

/** Lines that are unsolicited whenever they come (27.005 §3.4.1, 27.007, and vendors' status noise). */
const URC_PATTERN = new RegExp(
  '^(' +
    [
      // 27.005 §3.4.1 and 27.007: new messages, reports, broadcasts, USSD, registration, calls, indicators
      '\\+CMTI:', '\\+CMT:', '\\+CDSI:', '\\+CDS:', '\\+CBMI?:', '\\+CUSD:', '\\+C(G|E)?REG:', '\\+CLIP:',
      '\\+CRING:', 'RING$', 'NO CARRIER$', '\\+CSQN?:', '\\+CIEV:', '\\+CGEV:', '\\+CPIN:', '\\+CFUN:', '\\+CTZ[A-Z]*:',
      // vendors: Huawei ^RSSI/^BOOT/^MODE/^SRVST…, ZTE +ZUSIMR/+ZDONR/+ZPASR…, Quectel +QIND/+QUSIM, SIMCom boot
      // lines, Telit #…, time-zone and SIM-toolkit reports
      '\\^[A-Z]+:?', '\\+Z[A-Z]+:', '\\+QIND:', '\\+QUSIM:', '\\+PBREADY', '\\+SIM', '\\+STIN:', '\\+NITZ', '\\*PSUTTZ',
      'DST:', '\\+PACSP\\d?', 'SMS DONE', 'PB DONE', 'SMS Ready', 'Call Ready', 'RDY$', '\\*ATREADY',
    ].join('|') +
    ')',
);
/** URCs whose PDU is on the next line. */
const TWO_LINE_URC = /^\+(CMT|CDS|CBM):/;
const FINAL_OK = /^OK$/;
const FINAL_FAIL = /^(ERROR|NO CARRIER|BUSY|NO ANSWER|NO DIALTONE|COMMAND NOT SUPPORT|TOO MANY PARAMETERS|ABORTED)$/;
const CME_CMS = /^\+(CME|CMS) ERROR:\s*(.*)$/;

interface Pending {
  command: string;
  prefix: string | null;
  lines: string[];
  echo: Set<string>;
  /** For AT+CMGS: the PDU to write when the prompt comes, and how long the send may take after it. */
  pdu?: string;
  sendTimeoutMs?: number;
  /** Called once the PDU has been written: the modem has the message, the network's answer is awaited. */
  onSubmitted?: () => void;
  /** The caller's go-ahead for the PDU, asked for when AT+CMGS has been written (see submitPdu). */
  ready?: Promise<void>;
  promptSeen: boolean;
  /** The PDU has been written (from then on the network may have the message, whatever happens). */
  pduSent: boolean;
  resolve: (lines: string[]) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** The commands of one hold: run them with nobody else's in between. */
export interface AtSession {
  run(command: string, options?: CommandOptions): Promise<string[]>;
  /**
   * AT+CMGS=<length>, `> `, the PDU and Ctrl-Z; resolves with the answer lines (`+CMGS: <mr>`). `onSubmitted` is
   * called when the PDU has been written (the wait for the network begins). `ready`, when given, is called as soon as
   * AT+CMGS has been written, and the PDU waits for its promise: the caller's own work (a commit) overlaps the
   * prompt's round trip. If it rejects, ESC calls the message off (27.005 §3.5.1), nothing is sent, and submitPdu
   * rejects with its error.
   */
  submitPdu(
    length: number,
    pdu: string,
    options?: { promptTimeoutMs?: number; timeoutMs?: number; onSubmitted?: () => void; ready?: () => Promise<void> },
  ): Promise<string[]>;
}

export declare interface AtChannel {
  on(event: 'urc', listener: (urc: Urc) => void): this;
  on(event: 'close', listener: (error?: Error) => void): this;
  on(event: 'trace', listener: (direction: '>>' | '<<', text: string) => void): this;
}

export class AtChannel extends EventEmitter {
  private readonly framer = new AtFramer();
  private pending: Pending | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private awaitingUrcPdu: string | null = null;
  /** A `+CUSD:` whose quoted text goes on over more lines (text-mode modems print the text's own line breaks). */
  private openQuote: string | null = null;
  private needsSync = false;
  /** Final results that came with no command in flight: late answers, which resync must outwait. */
  private strayFinals = 0;
  private lastDataAt = 0;
  private closed = false;
  private readonly defaultTimeoutMs: number;

  constructor(
    readonly transport: Transport,
    options: { defaultTimeoutMs?: number } = {},
  ) {
    super();
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 10_000;
    transport.onData((chunk) => this.onData(chunk));
    transport.onClose((error) => this.onClose(error));
  }

  get path(): string {
    return this.transport.path;
  }

  get isOpen(): boolean {
    return !this.closed && this.transport.isOpen;
  }

  /** Runs one command (queued behind any other) and resolves with its intermediate lines. */
  run(command: string, options?: CommandOptions): Promise<string[]> {
    return this.hold((session) => session.run(command, options));
  }

  /** Runs `fn` with the channel to itself; the hold ends when `fn` settles, whatever happens. */
  hold<T>(fn: (session: AtSession) => Promise<T>): Promise<T> {
    const session: AtSession = {
      run: (command, options) =>
        this.execute(command, { timeoutMs: options?.timeoutMs ?? this.defaultTimeoutMs, resync: options?.resync ?? true }),
      submitPdu: (length, pdu, options) =>
        this.execute(`AT+CMGS=${length}`, {
          timeoutMs: options?.timeoutMs ?? 60_000,
          resync: true,
          pdu,
          promptTimeoutMs: options?.promptTimeoutMs ?? 5_000,
          onSubmitted: options?.onSubmitted,
          ready: options?.ready,
        }),
    };
    const result = this.queue.then(() => fn(session));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Closes the port; commands in flight or queued fail with PORT_CLOSED. */
  async close(): Promise<void> {
    if (this.transport.isOpen) await this.transport.close();
    this.onClose();
  }

  private async execute(command: string, options: ExecuteOptions): Promise<string[]> {
    if (!this.isOpen) throw closedError(this.path);
    if (this.needsSync && options.resync) await this.resync();
    const { timeoutMs, pdu, promptTimeoutMs } = options;
    return new Promise<string[]>((resolve, reject) => {
      // With a PDU, the first deadline is the prompt's; after the prompt the send may take `timeoutMs` (the
      // network's answer can take many seconds).
      const firstDeadline = pdu === undefined ? timeoutMs : promptTimeoutMs!;
      const pending: Pending = {
        command,
        prefix: answerPrefix(command),
        lines: [],
        echo: new Set(pdu === undefined ? [command] : [command, pdu]),
        promptSeen: false,
        pduSent: false,
        resolve,
        reject,
        timer: setTimeout(() => this.onTimeout(pending, firstDeadline), firstDeadline),
        ...(pdu === undefined ? {} : { pdu, sendTimeoutMs: timeoutMs, onSubmitted: options.onSubmitted }),
      };
      // Register before writing, so no answer can arrive unobserved.
      this.pending = pending;
      this.write(`${command}\r`).catch((error: SmsgateError) => this.finish(pending, error));
      if (options.ready) {
        // The command is on its way: the caller's go-ahead is worked out meanwhile.
        try {
          pending.ready = options.ready();
        } catch (error) {
          pending.ready = Promise.reject(error);
        }
        // Observed here too: the prompt may never come (the modem refuses AT+CMGS), and then nobody waits for it.
        pending.ready.catch(() => undefined);
      }
    });
  }

  private write(text: string): Promise<void> {
    this.emit('trace', '>>', text);
    return this.transport.write(text);
  }

  private onData(chunk: Uint8Array): void {
    this.lastDataAt = Date.now();
    for (const frame of this.framer.push(chunk)) {
      if (frame.kind === 'prompt') this.onPrompt();
      else this.onLine(frame.text);
    }
  }

  private onPrompt(): void {
    this.emit('trace', '<<', '> ');
    const pending = this.pending;
    if (!pending?.pdu || pending.promptSeen) {
      // A prompt nobody waits for (it came after its timeout): the modem sits in PDU input; ESC gets it out.
      this.write('\x1b').catch(() => undefined);
      this.needsSync = true;
      return;
    }
    pending.promptSeen = true;
    clearTimeout(pending.timer);
    const sendTimeoutMs = pending.sendTimeoutMs!;
    pending.timer = setTimeout(() => this.onTimeout(pending, sendTimeoutMs), sendTimeoutMs);
    if (!pending.ready) return this.writePdu(pending);
    pending.ready.then(
      () => this.writePdu(pending),
      // No go-ahead: nothing is sent.
      (error: unknown) => this.callOff(pending, error instanceof Error ? error : new Error(String(error))),
    );
  }

  /**
   * Ends an AT+CMGS with nothing sent: ESC leaves the modem's PDU input (27.005 §3.5.1), and the next command first
   * resynchronises, outwaiting the modem's answer to the ESC.
   */
  private callOff(pending: Pending, error: Error): void {
    if (this.pending !== pending) return;
    this.write('\x1b').catch(() => undefined);
    this.needsSync = true;
    this.finish(pending, error);
  }

  private writePdu(pending: Pending): void {
    if (this.pending !== pending) return;
    pending.pduSent = true;
    this.write(`${pending.pdu}\x1a`).then(
      () => pending.onSubmitted?.(),
      (error: Error) => {
        // A write that failed or hung may still have reached the modem, whole or in part: maybe sent.
        this.needsSync = true;
        const code = error instanceof SmsgateError ? error.code : ErrorCodes.PortClosed;
        this.finish(pending, new SmsgateError(code, `${this.path}: writing the PDU failed (${error.message}); it may have reached the network`, { retry: 'unknown' }));
      },
    );
  }

  private onLine(line: string): void {
    this.emit('trace', '<<', line);
    if (this.openQuote !== null) {
      this.openQuote += `\n${line}`;
      if (quotesOpen(this.openQuote)) return;
      line = this.openQuote;
      this.openQuote = null;
    } else if (line.startsWith('+CUSD:') && quotesOpen(line)) {
      this.openQuote = line;
      return;
    }
    if (this.awaitingUrcPdu !== null) {
      const head = this.awaitingUrcPdu;
      this.awaitingUrcPdu = null;
      this.emit('urc', { line: head, pdu: line });
      return;
    }
    const pending = this.pending;
    if (pending && pending.echo.delete(line)) return;
    if (!pending && (FINAL_OK.test(line) || FINAL_FAIL.test(line) || CME_CMS.test(line))) {
      this.strayFinals++;
      return;
    }
    if (pending?.pdu !== undefined && !pending.promptSeen && FINAL_OK.test(line)) {
      // OK where the prompt belongs: a late answer of an earlier command. Out of step; cancel and resynchronise.
      return this.callOff(pending, new SmsgateError(ErrorCodes.AtBadAnswer, `${pending.command}: OK instead of the "> " prompt (out of step)`, { retry: 'retry-same' }));
    }
    if (pending?.pdu !== undefined && pending.promptSeen && !pending.pduSent && (FINAL_OK.test(line) || FINAL_FAIL.test(line) || CME_CMS.test(line))) {
      // A final result while the PDU waits for its go-ahead: the modem is out of step, or left PDU input by itself.
      // Nothing was sent; ESC in case it still waits for a PDU, and resynchronise.
      return this.callOff(pending, new SmsgateError(ErrorCodes.AtBadAnswer, `${pending.command}: ${line} while the PDU was held back (out of step); nothing was sent`, { retry: 'retry-same' }));
    }
    if (pending && FINAL_OK.test(line)) return this.finish(pending, null);
    if (pending && FINAL_FAIL.test(line)) {
      return this.finish(pending, new SmsgateError(ErrorCodes.AtError, `${pending.command}: the modem answered ${line}`));
    }
    const failure = CME_CMS.exec(line);
    if (pending && failure) return this.finish(pending, modemError(pending.command, failure[1] as 'CME' | 'CMS', failure[2]!));
    const ownAnswer = pending?.prefix !== null && pending?.prefix !== undefined && line.startsWith(pending.prefix);
    if (!ownAnswer && URC_PATTERN.test(line)) {
      if (TWO_LINE_URC.test(line)) this.awaitingUrcPdu = line;
      else this.emit('urc', { line });
      return;
    }
    if (pending) pending.lines.push(line);
    // A line with no command in flight and no URC shape is noise (e.g. a late answer); it is only traced.
  }

  private onTimeout(pending: Pending, ms: number): void {
    if (this.pending !== pending) return;
    this.needsSync = true;
    if (pending.pdu !== undefined && pending.pduSent) {
      // The PDU is out: the network may have taken it. Only the caller can decide what that means.
      this.finish(
        pending,
        new SmsgateError(ErrorCodes.AtTimeout, `${pending.command}: no answer within ${ms} ms after the PDU was sent; it may have reached the network`, {
          retry: 'unknown',
        }),
      );
      return;
    }
    const stage = pending.pdu === undefined ? '' : pending.promptSeen ? ' (the PDU was held back: no go-ahead)' : ' (no "> " prompt)';
    if (pending.pdu !== undefined) {
      // Leave the modem's PDU input state: ESC cancels the message (27.005 §3.5.1).
      this.write('\x1b').catch(() => undefined);
    }
    this.finish(pending, new SmsgateError(ErrorCodes.AtTimeout, `${pending.command}: no answer within ${ms} ms${stage}`, { retry: 'retry-same' }));
  }

  private finish(pending: Pending, error: Error | null): void {
    if (this.pending !== pending) return;
    clearTimeout(pending.timer);
    this.pending = null;
    // A final result after a timeout means the modem talks again; a plain AT that got one is a resync.
    const code = error instanceof SmsgateError ? error.code : null;
    if (pending.command === 'AT' && code !== ErrorCodes.AtTimeout && code !== ErrorCodes.PortClosed) {
      this.needsSync = false;
    }
    if (error) pending.reject(error);
    else pending.resolve(pending.lines);
  }

  private onClose(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    const pending = this.pending;
    if (pending?.pdu !== undefined && pending.pduSent) {
      const error = new SmsgateError(ErrorCodes.PortClosed, `${this.path}: the port closed after the PDU was sent; it may have reached the network`, {
        retry: 'unknown',
      });
      this.finish(pending, error);
    } else if (pending) {
      this.finish(pending, closedError(this.path));
    }
    this.emit('close', error);
  }

  /**
   * After a timeout or a stray prompt: ESC (in case the modem waits for a PDU), let late answers drain until the line
   * has been quiet a while, then `AT` until an `OK` comes and no further final result follows it. A late `OK` is
   * thus never taken for the answer of the next command.
   */
  private async resync(): Promise<void> {
    this.needsSync = false;
    await this.write('\x1b').catch(() => undefined);
    for (let attempt = 0; attempt < 3; attempt++) {
      await this.quiet(300, 3_000);
      this.framer.reset();
      const stray = this.strayFinals;
      try {
        await this.execute('AT', { timeoutMs: 1_000, resync: false });
      } catch (error) {
        if ((error as SmsgateError).code === ErrorCodes.PortClosed) throw error;
        continue;
      }
      await this.quiet(200, 1_000);
      if (this.strayFinals === stray) return;
    }
    this.needsSync = true;
    throw new SmsgateError(ErrorCodes.AtTimeout, `${this.path}: the modem does not answer AT after a timeout`, { retry: 'retry-other' });
  }

  /** Resolves once nothing has arrived for `ms`, or after `maxMs` at most. */
  private async quiet(ms: number, maxMs: number): Promise<void> {
    const until = Date.now() + maxMs;
    for (;;) {
      const idle = Date.now() - this.lastDataAt;
      if (idle >= ms || Date.now() >= until) return;
      await new Promise((r) => setTimeout(r, Math.min(ms - idle, until - Date.now())));
    }
  }
}

/** True while a line has an odd number of double quotes: a quoted string that goes on. */
function quotesOpen(text: string): boolean {
  return (text.match(/"/g)?.length ?? 0) % 2 === 1;
}

/** `+CREG:` for `AT+CREG?`, `^SYSINFO:` for `AT^SYSINFO`; null for basic commands (`ATI`, `AT`). */
export function answerPrefix(command: string): string | null {
  const m = /^AT([+^$%*#][A-Z0-9]+)/i.exec(command);
  return m ? `${m[1]!.toUpperCase()}:` : null;
}

function modemError(command: string, kind: 'CME' | 'CMS', value: string): SmsgateError {
  const number = /^\d+$/.test(value.trim()) ? Number(value.trim()) : codeOfText(kind, value);
  const info = number === null ? null : kind === 'CME' ? cmeInfo(number) : cmsInfo(number);
  const meaning = info?.meaning ?? value.trim();
  const code = kind === 'CME' ? ErrorCodes.AtCme : ErrorCodes.AtCms;
  const shown = number === null ? `"${value.trim()}"` : String(number);
  return new SmsgateError(code, `${command}: +${kind} ERROR ${shown}: ${meaning}`, {
    ...(number === null ? {} : { modemCode: number }),
    retry: info?.retry ?? 'retry-same',
  });
}

function closedError(path: string): SmsgateError {
  return new SmsgateError(ErrorCodes.PortClosed, `${path}: the port is closed (unplugged?)`, { retry: 'retry-other' });
}
