/**
 * Names and retry classes of the modem's error codes: `+CMS ERROR: n` (3GPP TS 27.005 §3.2.5, which carries the
 * network's RP cause values of TS 24.011 Annex E.2 and the TP-FCS values of TS 23.040 §9.2.3.22 below 300) and
 * `+CME ERROR: n` (TS 27.007 §9.2). Manufacturer codes start at 512.
 *
 * Every code gets one retry class, which is what the dispatcher acts on:
 * - `permanent`: the message or recipient is wrong (bad number, barred, rejected); retrying cannot help.
 * - `retry-same`: a passing condition (congestion, network timeout, SIM busy); try again on this SIM later.
 * - `retry-other`: this SIM or modem cannot send now (no service, PIN, no SMSC, facility not subscribed); another
 *   SIM may succeed.
 * - `unknown` (set by the channel, not by a code): the PDU was written but no answer came (timeout, unplug); the
 *   message may have reached the network, so resending it could deliver it twice.
 */

export type RetryClass = 'permanent' | 'retry-same' | 'retry-other' | 'unknown';

export interface CodeInfo {
  meaning: string;
  retry: RetryClass;
}

const P: RetryClass = 'permanent';
const S: RetryClass = 'retry-same';
const O: RetryClass = 'retry-other';

const CMS: Record<number, [string, RetryClass]> = {
  // RP cause values (TS 24.011 Annex E.2), as most modems report network rejections
  1: ['unassigned (unallocated) number', P],
  8: ['operator determined barring', O],
  10: ['call barred', O],
  17: ['network failure', S],
  21: ['short message transfer rejected', P],
  22: ['memory capacity exceeded', S],
  27: ['destination out of order', S],
  28: ['unidentified subscriber', P],
  29: ['facility rejected', O],
  30: ['unknown subscriber', P],
  38: ['network out of order', O],
  41: ['temporary failure', S],
  42: ['congestion', S],
  47: ['resources unavailable, unspecified', S],
  50: ['requested facility not subscribed', O],
  69: ['requested facility not implemented', O],
  81: ['invalid short message transfer reference value', S],
  95: ['invalid message, unspecified', P],
  96: ['invalid mandatory information', P],
  97: ['message type non-existent or not implemented', P],
  98: ['message not compatible with short message protocol state', S],
  99: ['information element non-existent or not implemented', P],
  111: ['protocol error, unspecified', S],
  127: ['interworking, unspecified', O],
  // TP-FCS values (TS 23.040 §9.2.3.22)
  128: ['telematic interworking not supported', P],
  129: ['short message type 0 not supported', P],
  130: ['cannot replace short message', P],
  143: ['unspecified TP-PID error', P],
  144: ['data coding scheme (alphabet) not supported', P],
  145: ['message class not supported', P],
  159: ['unspecified TP-DCS error', P],
  160: ['command cannot be actioned', P],
  161: ['command unsupported', P],
  175: ['unspecified TP-Command error', P],
  176: ['TPDU not supported', P],
  192: ['SC busy', S],
  193: ['no SC subscription', O],
  194: ['SC system failure', S],
  195: ['invalid SME address', P],
  196: ['destination SME barred', P],
  197: ['SM rejected: duplicate SM', P],
  198: ['TP-VPF not supported', P],
  199: ['TP-VP not supported', P],
  208: ['SIM SMS storage full', S],
  209: ['no SMS storage capability in SIM', O],
  210: ['error in MS', O],
  211: ['memory capacity exceeded', S],
  212: ['SIM Application Toolkit busy', S],
  213: ['SIM data download error', S],
  255: ['unspecified error cause', S],
  // ME and SIM errors (TS 27.005 §3.2.5)
  300: ['ME failure', O],
  301: ['SMS service of ME reserved', O],
  302: ['operation not allowed', S],
  303: ['operation not supported', O],
  304: ['invalid PDU mode parameter', P],
  305: ['invalid text mode parameter', P],
  310: ['SIM not inserted', O],
  311: ['SIM PIN required', O],
  312: ['PH-SIM PIN required', O],
  313: ['SIM failure', O],
  314: ['SIM busy', S],
  315: ['SIM wrong', O],
  316: ['SIM PUK required', O],
  317: ['SIM PIN2 required', O],
  318: ['SIM PUK2 required', O],
  320: ['memory failure', S],
  321: ['invalid memory index', P],
  322: ['memory full', S],
  330: ['SMSC address unknown', O],
  331: ['no network service', O],
  332: ['network timeout', S],
  340: ['no +CNMA acknowledgement expected', P],
  500: ['unknown error', S],
};

const CME: Record<number, [string, RetryClass]> = {
  0: ['phone failure', O],
  1: ['no connection to phone', O],
  2: ['phone-adaptor link reserved', S],
  3: ['operation not allowed', S],
  4: ['operation not supported', O],
  5: ['PH-SIM PIN required', O],
  6: ['PH-FSIM PIN required', O],
  7: ['PH-FSIM PUK required', O],
  10: ['SIM not inserted', O],
  11: ['SIM PIN required', O],
  12: ['SIM PUK required', O],
  13: ['SIM failure', O],
  14: ['SIM busy', S],
  15: ['SIM wrong', O],
  16: ['incorrect password', O],
  17: ['SIM PIN2 required', O],
  18: ['SIM PUK2 required', O],
  20: ['memory full', S],
  21: ['invalid index', P],
  22: ['not found', P],
  23: ['memory failure', S],
  24: ['text string too long', P],
  25: ['invalid characters in text string', P],
  26: ['dial string too long', P],
  27: ['invalid characters in dial string', P],
  30: ['no network service', O],
  31: ['network timeout', S],
  32: ['network not allowed, emergency calls only', O],
  40: ['network personalisation PIN required', O],
  41: ['network personalisation PUK required', O],
  42: ['network subset personalisation PIN required', O],
  43: ['network subset personalisation PUK required', O],
  44: ['service provider personalisation PIN required', O],
  45: ['service provider personalisation PUK required', O],
  46: ['corporate personalisation PIN required', O],
  47: ['corporate personalisation PUK required', O],
  50: ['incorrect parameters', P],
  100: ['unknown', S],
  103: ['illegal MS', O],
  106: ['illegal ME', O],
  107: ['GPRS services not allowed', O],
  111: ['PLMN not allowed', O],
  112: ['location area not allowed', O],
  113: ['roaming not allowed in this location area', O],
  132: ['service option not supported', O],
  133: ['requested service option not subscribed', O],
  134: ['service option temporarily out of order', S],
  148: ['unspecified GPRS error', S],
  149: ['PDP authentication failure', O],
  150: ['invalid mobile class', O],
};

function lookup(table: Record<number, [string, RetryClass]>, code: number, kind: string): CodeInfo {
  const known = table[code];
  if (known) return { meaning: known[0], retry: known[1] };
  if (code >= 512) return { meaning: `manufacturer-specific ${kind} error ${code}`, retry: 'retry-same' };
  return { meaning: `${kind} error ${code} (not defined by 3GPP)`, retry: 'retry-same' };
}

/** Meaning and retry class of `+CMS ERROR: n`. */
export function cmsInfo(code: number): CodeInfo {
  return lookup(CMS, code, 'CMS');
}

/** Meaning and retry class of `+CME ERROR: n`. */
export function cmeInfo(code: number): CodeInfo {
  return lookup(CME, code, 'CME');
}

/**
 * The number of a textual `+CME ERROR:` / `+CMS ERROR:` (verbose mode, AT+CMEE=2, or modems that ignore CMEE=1),
 * matched case-insensitively against the 3GPP meanings; null when the text names no known code.
 */
export function codeOfText(kind: 'CME' | 'CMS', text: string): number | null {
  const wanted = text.trim().toLowerCase().replace(/\s+/g, ' ');
  const table = kind === 'CME' ? CME : CMS;
  for (const [code, [meaning]] of Object.entries(table)) {
    if (meaning.toLowerCase() === wanted) return Number(code);
  }
  return null;
}
