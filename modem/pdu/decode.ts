/**
 * PDU decoder for what modems list with +CMGL/+CMGR and push with +CMT/+CDS: SMS-DELIVER, SMS-SUBMIT (stored
 * outgoing messages) and SMS-STATUS-REPORT (3GPP TS 23.040 §9.2.2), the SMSC field first.
 *
 * Why our own and not node-pdu's: this one shares the alphabet tables with the encoder, so the two cannot disagree;
 * it reads through a bounds-checked reader, so a truncated or corrupt PDU becomes one clear PDU_INVALID error naming
 * the field instead of `undefined` octets turned into text; and it keeps the sender's time zone (node-pdu's ISO
 * strings are wrong for zone 0). The tests still run node-pdu beside it over the real-device vectors as a
 * cross-check.
 */
import { ErrorCodes, SmsgateError } from '../errors.js';
import { type Address, decodeAddress, decodeSmsc } from './address.js';
import { septetsToText, unpackSeptets } from './gsm7.js';
import { OctetReader, fromHex, invalid, toHex } from './octets.js';
import { decodeTimestamp } from './timestamp.js';
import { validityMinutes } from './validity.js';

export type PduType = 'deliver' | 'submit' | 'status-report';
export type PduEncoding = 'gsm7' | 'ucs2' | '8bit';
export type DeliveryStatus = 'delivered' | 'pending' | 'failed';

/** A concatenation element: which message, how many parts, which part this is. */
export interface Concat {
  ref: number;
  total: number;
  seq: number;
  /** 8 for IEI 0x00, 16 for IEI 0x08. */
  bits: 8 | 16;
}

/** One information element of a User Data Header. */
export interface HeaderElement {
  iei: number;
  /** Its data, hex. */
  data: string;
}

export interface DecodedPdu {
  type: PduType;
  /** The SMSC the PDU names, or null for `00`. */
  smsc: string | null;
  /** Sender (deliver), recipient (submit, status report): "+" when international, or an alphanumeric name. */
  number: string;
  /** The raw type-of-address octet of `number`. */
  numberType: number;
  /** The text; null for 8-bit data (see `data`) and for a status report without user data. */
  text: string | null;
  encoding: PduEncoding;
  /** Message class 0..3 (0 = flash), or null when the DCS gives none. */
  class: number | null;
  /** TP-PID. */
  pid: number;
  /** Replace-ID 1..7 when TP-PID is 0x41..0x47, else null. */
  replace: number | null;
  concat: Concat | null;
  /** Every UDH element, concatenation included; null without a UDH. */
  udh: HeaderElement[] | null;
  /** 8-bit user data after the UDH, hex; null for text. */
  data: string | null;
  /** TP-SCTS (deliver, status report), ISO 8601 with the sender's offset; null for submit. */
  timestamp: string | null;
  /** TP-SRR (submit: a report was requested) or TP-SRI (deliver: the sender asked for one). */
  reportRequested: boolean;
  /** TP-MR of a submit or the reference a status report is about. */
  reference: number | null;
  /** Submit only: TP-VP in minutes when relative, the raw field in hex otherwise; null when absent. */
  validity: number | string | null;
  /** Status report only: discharge time (TP-DT). */
  dischargeTime?: string | null;
  /** Status report only: delivered, still pending, or failed. */
  status?: DeliveryStatus;
  /** Status report only: raw TP-ST. */
  statusCode?: number;
  /** Status report only: what TP-ST means (23.040 §9.2.3.15). */
  statusText?: string;
  /** The TPDU length in octets (what AT+CMGS or +CMGL's <length> counts). */
  length: number;
  /** Things a lenient reader accepted: extra octets after the user data, undefined UDH elements. */
  warnings: string[];
}

export interface DecodeOptions {
  /**
   * The TPDU length a +CMGR/+CMGL line gave. When the hex holds exactly that many octets, the PDU is taken to have no
   * SMSC field (some modems omit it); otherwise the SMSC field must account for the difference.
   */
  tpduLength?: number;
}

/** Decodes a PDU in hex as +CMGL/+CMGR print it (SMSC field first). Throws SmsgateError PDU_INVALID / PDU_UNSUPPORTED. */
export function decodePdu(hex: string, options: DecodeOptions = {}): DecodedPdu {
  const octets = fromHex(hex);
  const reader = new OctetReader(octets);
  let smsc: Address | null = null;
  const warnings: string[] = [];
  if (options.tpduLength === undefined || octets.length !== options.tpduLength) {
    smsc = decodeSmsc(reader);
    // Modems' <length> is not always right (Gammu's recorded devices prove it); the PDU's own fields decide.
    if (options.tpduLength !== undefined && reader.remaining !== options.tpduLength) {
      warnings.push(`the TPDU has ${reader.remaining} octets, the modem said ${options.tpduLength}`);
    }
  }
  const length = reader.remaining;
  const first = reader.byte('the first octet');
  const mti = first & 0x03;
  const base = { smsc: smsc?.number ?? null, length, warnings };
  switch (mti) {
    case 0:
      return decodeDeliver(reader, first, base);
    case 1:
      return decodeSubmit(reader, first, base);
    case 2:
      return decodeStatusReport(reader, first, base);
    default:
      throw invalid('the message type (TP-MTI 3) is reserved');
  }
}

type Base = Pick<DecodedPdu, 'smsc' | 'length' | 'warnings'>;

function decodeDeliver(reader: OctetReader, first: number, base: Base): DecodedPdu {
  const address = decodeAddress(reader, 'the sender (TP-OA)');
  const pid = reader.byte('TP-PID');
  const dcs = reader.byte('TP-DCS');
  const timestamp = readTimestamp(reader, 'the time stamp (TP-SCTS)', base.warnings);
  const body = decodeUserData(reader, dcs, (first & 0x40) !== 0, base.warnings);
  return {
    type: 'deliver',
    ...base,
    number: address.number,
    numberType: address.type,
    pid,
    replace: replaceId(pid),
    timestamp,
    reportRequested: (first & 0x20) !== 0,
    reference: null,
    validity: null,
    ...body,
  };
}

function decodeSubmit(reader: OctetReader, first: number, base: Base): DecodedPdu {
  const reference = reader.byte('the message reference (TP-MR)');
  const address = decodeAddress(reader, 'the recipient (TP-DA)');
  const pid = reader.byte('TP-PID');
  const dcs = reader.byte('TP-DCS');
  let validity: number | string | null = null;
  switch ((first >> 3) & 0x03) {
    case 2:
      validity = validityMinutes(reader.byte('the validity period (TP-VP)'));
      break;
    case 1: // enhanced (§9.2.3.12.3) and absolute (§9.2.3.12.2): seven octets, kept raw
    case 3:
      validity = toHex(reader.bytes(7, 'the validity period (TP-VP)'));
      break;
  }
  const body = decodeUserData(reader, dcs, (first & 0x40) !== 0, base.warnings);
  return {
    type: 'submit',
    ...base,
    number: address.number,
    numberType: address.type,
    pid,
    replace: replaceId(pid),
    timestamp: null,
    reportRequested: (first & 0x20) !== 0,
    reference,
    validity,
    ...body,
  };
}

function decodeStatusReport(reader: OctetReader, first: number, base: Base): DecodedPdu {
  const reference = reader.byte('the message reference (TP-MR)');
  const address = decodeAddress(reader, 'the recipient (TP-RA)');
  const timestamp = readTimestamp(reader, 'the time stamp (TP-SCTS)', base.warnings);
  const dischargeTime = readTimestamp(reader, 'the discharge time (TP-DT)', base.warnings);
  const statusCode = reader.byte('the status (TP-ST)');
  let pid = 0;
  let body: UserData = { text: null, encoding: 'gsm7', class: null, concat: null, udh: null, data: null };
  // TP-PI (§9.2.3.27) and what it announces are optional; many SMSCs stop after TP-ST, and some modems pad the
  // report with FF octets. The mandatory part above is the report; an optional part that does not parse is dropped
  // with a warning rather than costing the report.
  if (reader.remaining > 0) {
    try {
      const pi = reader.byte('the parameter indicator (TP-PI)');
      // Bit 7 extends TP-PI with further octets, whose bits are all reserved (§9.2.3.27): skip them.
      for (let more = pi; more & 0x80; ) more = reader.byte('the parameter indicator extension (TP-PI)');
      if (pi & 0x01) pid = reader.byte('TP-PID');
      const dcs = pi & 0x02 ? reader.byte('TP-DCS') : 0;
      if (pi & 0x04) body = decodeUserData(reader, dcs, (first & 0x40) !== 0, base.warnings);
    } catch (error) {
      if (!(error instanceof SmsgateError)) throw error;
      base.warnings.push(`the optional part after TP-ST was ignored: ${error.message}`);
      pid = 0;
    }
  }
  return {
    type: 'status-report',
    ...base,
    number: address.number,
    numberType: address.type,
    pid,
    replace: null,
    timestamp,
    reportRequested: false,
    reference,
    validity: null,
    ...body,
    dischargeTime,
    status: classifyStatus(statusCode),
    statusCode,
    statusText: statusText(statusCode),
  };
}

/** Seven octets of TP-SCTS or TP-DT; a stamp that is no real time is null with a warning, not a lost message. */
function readTimestamp(reader: OctetReader, field: string, warnings: string[]): string | null {
  const octets = reader.bytes(7, field);
  const stamp = decodeTimestamp(octets);
  if (stamp === null) warnings.push(`${field} is not a valid date and time (${toHex(octets)})`);
  return stamp;
}

function replaceId(pid: number): number | null {
  return pid >= 0x41 && pid <= 0x47 ? pid - 0x40 : null;
}

interface DataCoding {
  encoding: PduEncoding;
  class: number | null;
  compressed: boolean;
  /** A reserved bit was set and the alphabet is our reading of it. */
  reserved?: boolean;
}

/** TP-DCS (23.038 §4). Reserved coding groups are read as GSM-7, as the spec asks. */
export function decodeDcs(dcs: number): DataCoding {
  const group = dcs >> 4;
  if (group <= 0x7) {
    // General data coding (00xx) and automatic deletion (01xx): bit 5 compressed, bit 4 class valid, bits 3-2 alphabet.
    const alphabet = (dcs >> 2) & 0x03;
    return {
      encoding: alphabet === 1 ? '8bit' : alphabet === 2 ? 'ucs2' : 'gsm7',
      class: dcs & 0x10 ? dcs & 0x03 : null,
      compressed: (dcs & 0x20) !== 0,
    };
  }
  if (group === 0xf) {
    // Bit 2: 0 GSM-7, 1 8-bit data; bit 3 is reserved. Phones that set bit 3 use bits 3-2 as in the general group:
    // Gammu's real-device vector 14 is DCS F9 over UCS-2 octets ("Тест Test"). Read so, it is text, not garbage.
    if (dcs & 0x08) return { encoding: dcs & 0x04 ? '8bit' : 'ucs2', class: dcs & 0x03, compressed: false, reserved: true };
    return { encoding: dcs & 0x04 ? '8bit' : 'gsm7', class: dcs & 0x03, compressed: false };
  }
  if (group === 0xe) return { encoding: 'ucs2', class: null, compressed: false }; // message waiting, UCS-2
  return { encoding: 'gsm7', class: null, compressed: false }; // 0xC, 0xD message waiting; 0x8-0xB reserved
}

type UserData = Pick<DecodedPdu, 'text' | 'encoding' | 'class' | 'concat' | 'udh' | 'data'>;

/** TP-UDL and TP-UD, with the UDH when TP-UDHI is set (§9.2.3.24). */
function decodeUserData(reader: OctetReader, dcs: number, hasHeader: boolean, warnings: string[]): UserData {
  const coding = decodeDcs(dcs);
  if (coding.reserved) warnings.push(`TP-DCS ${toHex([dcs])} sets a reserved bit; read as ${coding.encoding}`);
  const udl = reader.byte('the user data length (TP-UDL)');
  const septetCoded = coding.encoding === 'gsm7' && !coding.compressed;
  if (septetCoded ? udl > 160 : udl > 140) {
    throw invalid(`the user data length ${udl} exceeds what one message holds (${septetCoded ? '160 septets' : '140 octets'})`);
  }
  const octetCount = septetCoded ? Math.ceil((udl * 7) / 8) : udl;
  const ud = reader.bytes(octetCount, 'the user data');
  if (reader.remaining > 0) {
    warnings.push(`${reader.remaining} octet(s) after the user data ignored`);
    reader.rest();
  }

  let headerLength = 0;
  let udh: HeaderElement[] | null = null;
  if (hasHeader) {
    if (ud.length === 0) {
      warnings.push('TP-UDHI is set but the user data is empty');
      udh = [];
    } else {
      headerLength = ud[0]! + 1;
      if (headerLength > ud.length) {
        throw invalid(`the user data header claims ${headerLength - 1} octets but the user data has ${ud.length - 1}`);
      }
      udh = parseHeader(ud.subarray(1, headerLength));
    }
  }
  const concat = udh ? concatOf(udh, warnings) : null;
  const base = { encoding: coding.encoding, class: coding.class, concat, udh };
  if (udh?.some((e) => e.iei === 0x24 || e.iei === 0x25) && coding.encoding === 'gsm7') {
    throw new SmsgateError(ErrorCodes.PduUnsupported, 'the text uses a national language shift table (23.038 §6.2.1.2), which is not supported');
  }
  if (coding.compressed) {
    throw new SmsgateError(ErrorCodes.PduUnsupported, 'the user data is compressed (23.042), which is not supported');
  }

  if (coding.encoding === 'gsm7') {
    const headerSeptets = Math.ceil((headerLength * 8) / 7);
    if (headerSeptets > udl) throw invalid(`the user data header is longer than the ${udl} septets of user data`);
    const septets = unpackSeptets(ud, udl).slice(headerSeptets);
    return { ...base, text: septetsToText(septets), data: null };
  }
  const body = ud.subarray(headerLength);
  if (coding.encoding === '8bit') return { ...base, text: null, data: toHex(body) };
  if (body.length % 2 !== 0) throw invalid(`UCS-2 text of ${body.length} octets: not a whole number of 16-bit units`);
  let text = '';
  for (let i = 0; i < body.length; i += 2) text += String.fromCharCode((body[i]! << 8) | body[i + 1]!);
  return { ...base, text, data: null };
}

/** Splits a UDH body into its information elements; an element running past the header is an error. */
function parseHeader(header: Uint8Array): HeaderElement[] {
  const elements: HeaderElement[] = [];
  let i = 0;
  while (i < header.length) {
    if (i + 1 >= header.length) throw invalid(`the user data header ends inside element 0x${toHex([header[i]!])}`);
    const iei = header[i]!;
    const len = header[i + 1]!;
    if (i + 2 + len > header.length) {
      throw invalid(`user data header element 0x${toHex([iei])} claims ${len} octets, only ${header.length - i - 2} left`);
    }
    elements.push({ iei, data: toHex(header.subarray(i + 2, i + 2 + len)) });
    i += 2 + len;
  }
  return elements;
}

function concatOf(elements: HeaderElement[], warnings: string[]): Concat | null {
  for (const element of elements) {
    const octets = element.data.match(/../g)?.map((h) => parseInt(h, 16)) ?? [];
    let concat: Concat | null = null;
    if (element.iei === 0x00 && octets.length === 3) {
      concat = { ref: octets[0]!, total: octets[1]!, seq: octets[2]!, bits: 8 };
    } else if (element.iei === 0x08 && octets.length === 4) {
      concat = { ref: (octets[0]! << 8) | octets[1]!, total: octets[2]!, seq: octets[3]!, bits: 16 };
    } else if (element.iei === 0x00 || element.iei === 0x08) {
      throw invalid(`concatenation element 0x${toHex([element.iei])} has ${octets.length} octets`);
    }
    if (concat) {
      // 23.040 §9.2.3.24.1: a receiver ignores a concatenation element whose numbers are out of range.
      if (concat.total === 0 || concat.seq === 0 || concat.seq > concat.total) {
        warnings.push(`concatenation part ${concat.seq} of ${concat.total} is out of range; the header is ignored`);
        return null;
      }
      return concat;
    }
  }
  return null;
}

/**
 * TP-ST groups (23.040 §9.2.3.15): 0x00-0x1F transaction completed (delivered), 0x20-0x3F temporary error with the
 * SC still trying (pending), 0x40-0x5F permanent error and 0x60-0x7F temporary error with the SC no longer trying
 * (failed). Values from 0x80 are reserved; they are read as failed, like "service rejected".
 */
export function classifyStatus(code: number): DeliveryStatus {
  if (code < 0x20) return 'delivered';
  if (code < 0x40) return 'pending';
  return 'failed';
}

const STATUS_TEXT: Record<number, string> = {
  0x00: 'received by the recipient',
  0x01: 'forwarded to the recipient, delivery not confirmed',
  0x02: 'replaced by the service centre',
  0x20: 'congestion, still trying',
  0x21: 'recipient busy, still trying',
  0x22: 'no response from the recipient, still trying',
  0x23: 'service rejected, still trying',
  0x24: 'quality of service not available, still trying',
  0x25: 'error in the recipient, still trying',
  0x40: 'remote procedure error',
  0x41: 'incompatible destination',
  0x42: 'connection rejected by the recipient',
  0x43: 'not obtainable',
  0x44: 'quality of service not available',
  0x45: 'no interworking available',
  0x46: 'validity period expired',
  0x47: 'deleted by the sender',
  0x48: 'deleted by the service centre administration',
  0x49: 'message does not exist',
  0x60: 'congestion, no longer trying',
  0x61: 'recipient busy, no longer trying',
  0x62: 'no response from the recipient, no longer trying',
  0x63: 'service rejected, no longer trying',
  0x64: 'quality of service not available, no longer trying',
  0x65: 'error in the recipient, no longer trying',
};

/** What a TP-ST value means; reserved and SC-specific values are named by their group. */
export function statusText(code: number): string {
  const known = STATUS_TEXT[code];
  if (known) return known;
  if (code < 0x20) return code >= 0x10 ? 'completed (SC-specific reason)' : 'completed (reserved value)';
  if (code < 0x40) return 'temporary error, still trying (SC-specific or reserved)';
  if (code < 0x60) return 'permanent error (SC-specific or reserved)';
  if (code < 0x80) return 'temporary error, no longer trying (SC-specific or reserved)';
  return 'reserved value';
}
