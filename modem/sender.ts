/**
 * The channel interface the dispatcher sends through — "send this message" — with two implementations: a local
 * modem's AT port (ModemSender, which encodes the PDUs here) and a modem on a remote box over SSH (remote.ts, where
 * the box's Gammu-compatible `sendsms` encodes them). The dispatcher treats them alike.
 */
import { ErrorCodes, SmsgateError } from './errors.js';
import { Modem, type ModemOptions, type PartResult, type StoredSms } from './modem.js';
import type { UssdAnswer } from './ussd.js';
import { type DeliveryStatus, decodePdu, encodeSubmit, type EncodingChoice } from './pdu/index.js';

/** One message to one recipient, as the queue holds it. */
export interface OutgoingSms {
  to: string;
  text: string;
  encoding?: EncodingChoice;
  flash?: boolean;
  replace?: number;
  report?: boolean;
}

/** A channel's radio as a health check reads it. */
export interface RadioState {
  signalDbm: number | null;
  operator: string | null;
  registration: string | null;
}

/** A status report (SMS-STATUS-REPORT) as a channel received it. */
export interface StatusReportEvent {
  /** The TP-MR of the part it is about. */
  reference: number;
  /** The recipient as the report gives it. */
  recipient: string;
  status: DeliveryStatus;
  /** TP-ST and its meaning (23.040 §9.2.3.15). */
  statusCode: number;
  statusText: string;
  /** When the network delivered it or gave up (TP-DT), ISO 8601; null when the report has none. */
  dischargedAt: string | null;
}

/** What a modem announces about incoming messages: one stored (+CMTI, +CDSI), or one pushed whole (+CMT). */
export type InboxNotice = { kind: 'stored'; memory: string; index: number } | { kind: 'pushed'; pdu: string };

/** A channel's message storage: what the inbound collector reads and empties. */
export interface SmsInbox {
  /** Every stored message (SIM, modem, status-report storage). */
  list(): Promise<StoredSms[]>;
  delete(memory: StoredSms['memory'], index: number): Promise<void>;
  onNotice(listener: (notice: InboxNotice) => void): void;
}

/** What a send tells its caller while it runs. */
export interface SendHooks {
  /**
   * The modem has the message (the first part's PDU is written) and the network's answer is awaited: the caller's
   * other work can go on without delaying this send. A remote box's channel calls it when its sendsms starts.
   */
  submitted?: () => void;
  /**
   * The caller's go-ahead: asked for once the channel has begun (a local modem: AT+CMGS is on its way), and nothing
   * of the message goes out before it resolves. If it rejects, nothing is sent and send() rejects with its error.
   */
  ready?: () => Promise<void>;
}

export interface SmsSender {
  /** A name for logs and the API: the port path, or box:port. */
  readonly label: string;
  /** False once the channel is gone for good (an unplugged modem). */
  readonly isOpen: boolean;
  /** Sends every part of one message; one result per part, in order. */
  send(sms: OutgoingSms, hooks?: SendHooks): Promise<PartResult[]>;
  /** Brings the channel back to a known state after failures; throws when it cannot. */
  recover(): Promise<void>;
  /**
   * A cheap check that the channel still answers (periodic health check); throws when it does not. Resolves to
   * what it read of the radio, when the channel can tell.
   */
  check(): Promise<RadioState | null>;
  /** Status reports this channel receives (a channel that cannot receive them never calls the listener). */
  onReport?(listener: (report: StatusReportEvent) => void): void;
  /** The channel's stored messages, when it can reach them. */
  readonly inbox?: SmsInbox;
  /** Sends a USSD request and returns the network's answer, when the channel can. */
  ussd?(code: string, timeoutMs?: number): Promise<UssdAnswer>;
  /** The modem's IMEI as it answers now (the watchdog finds a modem back by it). */
  imei?(): Promise<string | null>;
  /** Restarts the modem (AT+CFUN=1,1 or the vendor's reset); the port goes away. Resolves to the command used. */
  reset?(): Promise<string>;
  close(): Promise<void>;
}

/** The status report a PDU carries; null when it is none (or does not decode: the modem's noise). */
export function reportOf(pdu: string): StatusReportEvent | null {
  let decoded: ReturnType<typeof decodePdu>;
  try {
    decoded = decodePdu(pdu);
  } catch {
    return null;
  }
  if (decoded.type !== 'status-report' || decoded.reference === null || decoded.status === undefined) return null;
  return {
    reference: decoded.reference,
    recipient: decoded.number,
    status: decoded.status,
    statusCode: decoded.statusCode ?? 0,
    statusText: decoded.statusText ?? '',
    dischargedAt: decoded.dischargeTime ?? null,
  };
}

/** A local modem's AT port. */
export class ModemSender implements SmsSender {
  private constructor(private readonly modem: Modem) {}

  /** Opens and initialises the port (under its lock). */
  static async open(port: string, options: ModemOptions = {}): Promise<ModemSender> {
    const modem = await Modem.open(port, options);
    try {
      await modem.init();
    } catch (error) {
      await modem.close();
      throw error;
    }
    return new ModemSender(modem);
  }

  get label(): string {
    return this.modem.path;
  }

  readonly inbox: SmsInbox = {
    list: () => this.modem.listMessages(),
    delete: (memory, index) => this.modem.deleteMessage(memory, index),
    onNotice: (listener) =>
      this.modem.onUrc((urc) => {
        const stored = /^\+(?:CMTI|CDSI):\s*"?([A-Z]{2})"?\s*,\s*(\d+)/.exec(urc.line);
        if (stored) listener({ kind: 'stored', memory: stored[1]!, index: Number(stored[2]) });
        else if (urc.line.startsWith('+CMT:') && urc.pdu) listener({ kind: 'pushed', pdu: urc.pdu });
      }),
  };

  ussd(code: string, timeoutMs?: number): Promise<UssdAnswer> {
    return this.modem.ussd(code, timeoutMs);
  }

  async imei(): Promise<string | null> {
    return (await this.modem.identifyImei()) ?? null;
  }

  reset(): Promise<string> {
    return this.modem.reset();
  }

  get isOpen(): boolean {
    return this.modem.channel.isOpen;
  }

  send(sms: OutgoingSms, hooks: SendHooks = {}): Promise<PartResult[]> {
    const { parts } = encodeSubmit({
      to: sms.to,
      text: sms.text,
      encoding: sms.encoding,
      flash: sms.flash,
      replace: sms.replace,
      report: sms.report,
    });
    return this.modem.send(
      parts.map(({ pdu, length }) => ({ pdu, length })),
      { onSubmitted: hooks.submitted, ready: hooks.ready },
    );
  }

  recover(): Promise<void> {
    return this.modem.init();
  }

  onReport(listener: (report: StatusReportEvent) => void): void {
    this.modem.onUrc((urc) => {
      if (!urc.line.startsWith('+CDS:') || !urc.pdu) return;
      const report = reportOf(urc.pdu);
      if (report) listener(report);
    });
  }

  async check(): Promise<RadioState> {
    if (!(await this.modem.ping(2, 2_000))) {
      throw new SmsgateError(ErrorCodes.AtTimeout, `${this.label}: no answer to AT`, { retry: 'retry-other' });
    }
    const { signalDbm, operator, registration } = await this.modem.radio();
    return { signalDbm, operator, registration };
  }

  close(): Promise<void> {
    return this.modem.close();
  }
}
