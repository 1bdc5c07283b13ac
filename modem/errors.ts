/**
 * One error type for the whole gateway, with stable codes grouped by area. Callers branch on `code`, never on the
 * message text; the HTTP layer maps codes to status codes. Modem errors (issue 3) carry the modem's CMS/CME number.
 */

export const ErrorCodes = {
  /** A PDU that is not valid hex, is cut short, or holds a field no valid PDU can hold. */
  PduInvalid: 'PDU_INVALID',
  /** A well-formed PDU using a feature the codec does not decode (e.g. compressed user data). */
  PduUnsupported: 'PDU_UNSUPPORTED',
  /** A phone number or sender that cannot be encoded or normalised. */
  BadNumber: 'BAD_NUMBER',
  /** A message option out of range (replace-ID, validity, reference, …) or an empty text. */
  BadMessage: 'BAD_MESSAGE',
  /** Wrong command-line usage. */
  Usage: 'USAGE',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** An error with a stable code; `field` names the input at fault when there is one. */
export class SmsgateError extends Error {
  override readonly name = 'SmsgateError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}
