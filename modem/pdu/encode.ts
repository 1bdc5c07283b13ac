/**
 * PDU encoder: SMS-SUBMIT (what we send with AT+CMGS) and SMS-DELIVER (what the modem simulator hands out as
 * incoming messages), per 3GPP TS 23.040 §9.2.2 and TS 23.038.
 *
 * Why not node-pdu's encoder: it cuts 133/63 characters per part instead of 153/67, counts JS characters rather
 * than septets (an extension character overflows a part), splits emoji, forces UCS-2 for €, é, ü, ñ, ß, maps 0x5F
 * wrongly, cannot make class 0 (flash), writes relative validity wrongly above 30 days and gives no AT+CMGS length.
 * The test suite holds this encoder to Gammu's own vectors and to Gammu's decoder instead.
 *
 * Layout of one SMS-SUBMIT, SMSC field first (as written after the `> ` prompt):
 *   SMSC | first octet (MTI 01, RD, VPF, SRR, UDHI, RP) | TP-MR | TP-DA | TP-PID | TP-DCS | [TP-VP] | TP-UDL | TP-UD
 * AT+CMGS takes the TPDU length in octets: everything after the SMSC field (TS 27.005 §3.5.1).
 */
import { ErrorCodes, SmsgateError } from '../errors.js';
import { encodeAddress, encodeSmsc } from './address.js';
import { packSeptets } from './gsm7.js';
import { toHex } from './octets.js';
import { type Encoding, type EncodingChoice, type Segment, segmentText } from './segments.js';
import { encodeTimestamp } from './timestamp.js';
import { relativeValidity } from './validity.js';

/** TP-VP when the caller says nothing: relative 0xFF (63 weeks), the SMSC's maximum, as Gammu sends. */
export const DEFAULT_VALIDITY_MINUTES = 63 * 7 * 24 * 60;

/** What SMS-SUBMIT and SMS-DELIVER share: the text and how to code it. */
export interface MessageOptions {
  text: string;
  /** `auto` (default): GSM-7 when the text allows it, else UCS-2. */
  encoding?: EncodingChoice;
  /** Flash SMS: message class 0, shown at once and not stored. */
  flash?: boolean;
  /** Message class 0..3; `flash` is class 0. */
  messageClass?: 0 | 1 | 2 | 3;
  /** Replace-ID 1..7: TP-PID 0x40+n, replacing the recipient's earlier message with the same ID and sender. */
  replace?: number;
  /** Concatenation reference; random when absent. 0..255, or 0..65535 with `concat16`. */
  reference?: number;
  /** A 16-bit concatenation reference (IEI 0x08) instead of 8-bit (IEI 0x00). */
  concat16?: boolean;
  /** SMSC number to put in front; absent = `00`, the modem's configured SMSC. */
  smsc?: string;
}

export interface SubmitOptions extends MessageOptions {
  /** Recipient: "+" and digits for an international number, digits for a national one. */
  to: string;
  /** Ask for a status report (TP-SRR). */
  report?: boolean;
  /** Relative validity in minutes (rounded up to what TP-VP can say); null for no TP-VP at all. */
  validity?: number | null;
  /** TP-RD: ask the SMSC to reject a duplicate of a message still held there. */
  rejectDuplicates?: boolean;
}

export interface EncodedPart {
  /** Hex as written after the `> ` prompt: SMSC field first. */
  pdu: string;
  /** The AT+CMGS argument: TPDU octets, SMSC field excluded. */
  length: number;
  /** The part's text (transliterated characters show as written here, before transliteration). */
  text: string;
}

export interface EncodedMessage {
  encoding: Encoding;
  /** Concatenation reference, or null for a single part. */
  reference: number | null;
  parts: EncodedPart[];
  /** What the encoder changed from the request, e.g. replace-ID dropped on a multipart text. */
  warnings: string[];
}

/** Encodes a text as one or more SMS-SUBMIT PDUs. */
export function encodeSubmit(options: SubmitOptions): EncodedMessage {
  const validity = options.validity === undefined ? DEFAULT_VALIDITY_MINUTES : options.validity;
  const vp = validity === null ? null : relativeValidity(validity);
  const address = encodeAddress(options.to);
  return encodeParts(options, ({ header, pid, dcs, udl, ud }) => {
    const first =
      0x01 | (options.rejectDuplicates ? 0x04 : 0) | (vp === null ? 0 : 0x10) | (options.report ? 0x20 : 0) | (header ? 0x40 : 0);
    return [first, 0x00, ...address, pid, dcs, ...(vp === null ? [] : [vp]), udl, ...ud];
  });
}

export interface DeliverOptions extends MessageOptions {
  /** Sender: a number, or a name with `alphanumeric`. */
  from: string;
  alphanumeric?: boolean;
  /** Service-centre time stamp, ISO 8601 with offset ("2007-06-05T13:56:30+02:00"). */
  timestamp: string;
  /** TP-MMS clear: the SMSC has more messages waiting (Gammu writes it so). */
  moreMessages?: boolean;
  /** TP-SRI: the sender asked for a status report. */
  statusReportIndication?: boolean;
}

/** Encodes a text as one or more SMS-DELIVER PDUs (SMSC field first), as a modem would list them. */
export function encodeDeliver(options: DeliverOptions): EncodedMessage {
  const address = encodeAddress(options.from, options.alphanumeric);
  const scts = encodeTimestamp(options.timestamp);
  return encodeParts(options, ({ header, pid, dcs, udl, ud }) => {
    const first = 0x00 | (options.moreMessages ? 0 : 0x04) | (options.statusReportIndication ? 0x20 : 0) | (header ? 0x40 : 0);
    return [first, ...address, pid, dcs, ...scts, udl, ...ud];
  });
}

/** What one part's TPDU is built from; the message type decides the layout around it. */
interface PartFields {
  /** The part carries a User Data Header (TP-UDHI). */
  header: boolean;
  pid: number;
  dcs: number;
  udl: number;
  ud: number[];
}

/** Cuts the text into parts and lays each out with `layout`, the SMSC field in front. */
function encodeParts(options: MessageOptions, layout: (fields: PartFields) => number[]): EncodedMessage {
  checkOptions(options);
  const warnings: string[] = [];
  const { encoding, segments } = segmentText(options.text, options);
  const multipart = segments.length > 1;
  const reference = multipart ? chooseReference(options) : null;
  let pid = 0x00;
  if (options.replace !== undefined) {
    // Every part of one message would carry the same PID and sender, so on a multipart text each part would
    // replace the one before it on the handset. Gammu sets the replace PID only on single-part texts; so do we.
    if (multipart) warnings.push(`replace-ID ${options.replace} ignored: the text needs ${segments.length} parts`);
    else pid = 0x40 + options.replace;
  }
  const dcs = dataCodingScheme(encoding, options.flash ? 0 : options.messageClass);
  const smsc = encodeSmsc(options.smsc);
  const parts = segments.map((segment, index) => {
    const udh = multipart ? concatHeader(reference!, segments.length, index + 1, options.concat16 === true) : null;
    const tpdu = layout({ header: udh !== null, pid, dcs, ...userData(encoding, segment, udh) });
    return { pdu: toHex([...smsc, ...tpdu]), length: tpdu.length, text: segment.text };
  });
  return { encoding, reference, parts, warnings };
}

function checkOptions(options: MessageOptions): void {
  const { replace, reference, concat16, messageClass } = options;
  if (replace !== undefined && !(Number.isInteger(replace) && replace >= 1 && replace <= 7)) {
    throw new SmsgateError(ErrorCodes.BadMessage, `replace-ID must be an integer 1..7, got ${replace}`, 'replace');
  }
  const maxRef = concat16 ? 0xffff : 0xff;
  if (reference !== undefined && !(Number.isInteger(reference) && reference >= 0 && reference <= maxRef)) {
    throw new SmsgateError(
      ErrorCodes.BadMessage,
      `the concatenation reference must be an integer 0..${maxRef}${concat16 ? '' : ' (use a 16-bit reference for more)'}, got ${reference}`,
      'reference',
    );
  }
  if (messageClass !== undefined && !(Number.isInteger(messageClass) && messageClass >= 0 && messageClass <= 3)) {
    throw new SmsgateError(ErrorCodes.BadMessage, `the message class must be 0..3, got ${messageClass}`, 'class');
  }
}

function chooseReference(options: { reference?: number; concat16?: boolean }): number {
  if (options.reference !== undefined) return options.reference;
  return Math.floor(Math.random() * (options.concat16 ? 0x10000 : 0x100));
}

/**
 * TP-DCS (23.038 §4). Without a class: 0x00 (GSM-7) or 0x08 (UCS-2). With a class: group 1111 for GSM-7 (0xF0|class)
 * and the general group with the class bit for UCS-2 (0x18|class) — the octets Gammu writes for `-flash`.
 */
export function dataCodingScheme(encoding: Encoding, messageClass?: number): number {
  if (messageClass === undefined) return encoding === 'gsm7' ? 0x00 : 0x08;
  return encoding === 'gsm7' ? 0xf0 | messageClass : 0x18 | messageClass;
}

/** UDH with one concatenation element: IEI 0x00 (8-bit reference) or 0x08 (16-bit), then total and sequence. */
function concatHeader(reference: number, total: number, seq: number, concat16: boolean): number[] {
  if (total > 255) {
    throw new SmsgateError(ErrorCodes.BadMessage, `the text needs ${total} parts; a message holds at most 255`, 'text');
  }
  return concat16
    ? [6, 0x08, 4, reference >> 8, reference & 0xff, total, seq]
    : [5, 0x00, 3, reference, total, seq];
}

/**
 * TP-UDL and TP-UD. For GSM-7 the UDL counts septets, the header's included: after a header of h octets come
 * fill bits up to the next septet boundary (23.040 §9.2.3.24), so the text septets start where a receiver that
 * skips ceil(8h/7) septets looks for them.
 */
function userData(encoding: Encoding, segment: Segment, udh: number[] | null): { udl: number; ud: number[] } {
  const header = udh ?? [];
  if (encoding === 'ucs2') {
    const body: number[] = [];
    for (let i = 0; i < segment.text.length; i++) {
      const unit = segment.text.charCodeAt(i);
      body.push(unit >> 8, unit & 0xff);
    }
    return { udl: header.length + body.length, ud: [...header, ...body] };
  }
  const septets = segment.septets!;
  const headerBits = header.length * 8;
  const fill = (7 - (headerBits % 7)) % 7;
  const headerSeptets = (headerBits + fill) / 7;
  return { udl: headerSeptets + septets.length, ud: [...header, ...packSeptets(septets, fill)] };
}
