/**
 * Choosing the encoding of a text and cutting it into the fewest message parts (3GPP TS 23.038, TS 23.040 §9.2.3.24).
 *
 * One part holds 140 octets of user data: 160 GSM-7 septets or 70 UCS-2 units. A concatenated part loses 6 octets
 * to its User Data Header (UDHL + IEI 0x00 with an 8-bit reference) and keeps 153 septets / 67 units, or 7 octets
 * with a 16-bit reference (IEI 0x08) and keeps 152 / 66. An extension-table character is two septets (ESC + code)
 * and an emoji is two UTF-16 units (a surrogate pair); neither pair is ever split across parts. Filling each part
 * as far as it goes ("greedy") gives the minimal number of parts, because no character can move to an earlier part
 * than greedy puts it in.
 *
 * Texts are put in Unicode canonical composition (NFC) first, as phones send them.
 *
 * Pure and free of Node APIs: the server, the scheduler and the browser's counter all use it.
 */
import { isGsm7, textToSeptets } from './gsm7.js';

export type Encoding = 'gsm7' | 'ucs2';

/** How to encode: decide from the text (default), or force one alphabet (GSM-7 transliterates what it lacks). */
export type EncodingChoice = Encoding | 'auto';

export interface SegmentOptions {
  encoding?: EncodingChoice;
  /** Concatenate with a 16-bit reference (one unit less per part). */
  concat16?: boolean;
}

/** One part's text and what it costs in its alphabet. */
export interface Segment {
  text: string;
  /** GSM-7 septets (encoding gsm7 only). */
  septets?: number[];
  /** Septets (gsm7) or UTF-16 units (ucs2). */
  units: number;
}

/** The text cut into parts. */
export interface Segmentation {
  encoding: Encoding;
  segments: Segment[];
}

/** What the send form and the API show about a text. */
export interface SegmentCount {
  encoding: Encoding;
  parts: number;
  /** Septets (gsm7) or UTF-16 units (ucs2) of the whole text. */
  units: number;
  /** Units one part holds at this length (single-part or concatenated capacity). */
  perPart: number;
  /** Units still free in the last part before another part is needed. */
  remaining: number;
}

const SINGLE = { gsm7: 160, ucs2: 70 } as const;
/** Capacity of a concatenated part: [8-bit reference, 16-bit reference]. */
const MULTI = { gsm7: [153, 152], ucs2: [67, 66] } as const;

/** GSM-7 when every character has a GSM-7 form, otherwise UCS-2. */
export function chooseEncoding(text: string, choice: EncodingChoice = 'auto'): Encoding {
  if (choice !== 'auto') return choice;
  return isGsm7(text.normalize('NFC')) ? 'gsm7' : 'ucs2';
}

/** Units one part holds. */
export function partCapacity(encoding: Encoding, multipart: boolean, concat16 = false): number {
  return multipart ? MULTI[encoding][concat16 ? 1 : 0] : SINGLE[encoding];
}

/** Cuts `text` into the minimal number of parts without splitting an escape pair or a surrogate pair. */
export function segmentText(input: string, options: SegmentOptions = {}): Segmentation {
  // Canonical composition first: "e" + U+0301 is "é", one GSM-7 character, not a reason for UCS-2.
  const text = input.normalize('NFC');
  const encoding = chooseEncoding(text, options.encoding);
  // One item per code point: its septets in GSM-7, its UTF-16 length (1, or 2 for a surrogate pair) in UCS-2.
  const items: Item[] = [...text].map((ch) => {
    if (encoding === 'ucs2') return { ch, septets: [], cost: ch.length };
    const septets = textToSeptets(ch);
    return { ch, septets, cost: septets.length };
  });
  const total = items.reduce((sum, item) => sum + item.cost, 0);
  if (total <= SINGLE[encoding]) return { encoding, segments: [makeSegment(encoding, items)] };

  const capacity = partCapacity(encoding, true, options.concat16);
  const segments: Segment[] = [];
  let current: Item[] = [];
  let used = 0;
  for (const item of items) {
    if (used + item.cost > capacity) {
      segments.push(makeSegment(encoding, current));
      current = [];
      used = 0;
    }
    current.push(item);
    used += item.cost;
  }
  segments.push(makeSegment(encoding, current));
  return { encoding, segments };
}

interface Item {
  ch: string;
  septets: number[];
  cost: number;
}

function makeSegment(encoding: Encoding, items: Item[]): Segment {
  const text = items.map((item) => item.ch).join('');
  const units = items.reduce((sum, item) => sum + item.cost, 0);
  return encoding === 'gsm7' ? { text, septets: items.flatMap((item) => item.septets), units } : { text, units };
}

/** The counter the send form shows: encoding, parts, and units left in the last part. */
export function countSegments(text: string, options: SegmentOptions = {}): SegmentCount {
  const { encoding, segments } = segmentText(text, options);
  const units = segments.reduce((sum, s) => sum + s.units, 0);
  const perPart = partCapacity(encoding, segments.length > 1, options.concat16);
  return { encoding, parts: segments.length, units, perPart, remaining: perPart - segments.at(-1)!.units };
}
