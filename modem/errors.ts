/**
 * One error type for the whole gateway, with stable codes grouped by area. Callers branch on `code`, never on the
 * message text; the HTTP layer maps codes to status codes. Modem errors carry the modem's own CMS/CME number, its
 * meaning and the retry class the dispatcher acts on (see modem/at/codes.ts).
 */
import type { RetryClass } from './at/codes.js';

export const ErrorCodes = {
  // codec
  /** A PDU that is not valid hex, is cut short, or holds a field no valid PDU can hold. */
  PduInvalid: 'PDU_INVALID',
  /** A well-formed PDU using a feature the codec does not decode (e.g. compressed user data). */
  PduUnsupported: 'PDU_UNSUPPORTED',
  /** A phone number or sender that cannot be encoded or normalised. */
  BadNumber: 'BAD_NUMBER',
  /** A message option out of range (replace-ID, validity, reference, …) or an empty text. */
  BadMessage: 'BAD_MESSAGE',
  // serial and AT
  /** The port could not be opened (missing, permissions, not a tty). */
  PortOpen: 'PORT_OPEN',
  /** The port is held by another program (UUCP lock file) or another channel of ours. */
  PortLocked: 'PORT_LOCKED',
  /** The port closed (unplugged) while a command was in flight or queued. */
  PortClosed: 'PORT_CLOSED',
  /** No final result code in time. */
  AtTimeout: 'AT_TIMEOUT',
  /** A plain `ERROR` final result. */
  AtError: 'AT_ERROR',
  /** `+CME ERROR: n` (27.007 §9.2). */
  AtCme: 'AT_CME',
  /** `+CMS ERROR: n` (27.005 §3.2.5). */
  AtCms: 'AT_CMS',
  /** An answer that does not parse as the command's answer should. */
  AtBadAnswer: 'AT_BAD_ANSWER',
  /** The modem needs a PIN/PUK we do not have, or rejected it. */
  SimLocked: 'SIM_LOCKED',
  // storage
  /** A record that must be unique exists already (user name, IMSI, box name). */
  Conflict: 'CONFLICT',
  /** No such record. */
  NotFound: 'NOT_FOUND',
  /** No working channel can do what was asked now (the SIM's modem is gone or unhealthy). */
  NoChannel: 'NO_CHANNEL',
  /** Wrong command-line usage. */
  Usage: 'USAGE',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface ErrorDetails {
  /** The field of the request at fault. */
  field?: string;
  /** The modem's CMS/CME error number. */
  modemCode?: number;
  /** What to do about it: give up, retry on this SIM, or retry on another. */
  retry?: RetryClass;
}

/** An error with a stable code; `field` names the input at fault when there is one. */
export class SmsgateError extends Error {
  override readonly name = 'SmsgateError';
  readonly field?: string;
  readonly modemCode?: number;
  readonly retry?: RetryClass;

  constructor(
    readonly code: ErrorCode,
    message: string,
    details?: string | ErrorDetails,
  ) {
    super(message);
    const d = typeof details === 'string' ? { field: details } : (details ?? {});
    if (d.field !== undefined) this.field = d.field;
    if (d.modemCode !== undefined) this.modemCode = d.modemCode;
    if (d.retry !== undefined) this.retry = d.retry;
  }
}
