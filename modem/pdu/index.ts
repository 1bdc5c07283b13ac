/** The SMS PDU codec: pure functions, no I/O, shared by the modem stack, the server and the browser's counter. */
export { encodeSubmit, encodeDeliver, dataCodingScheme, DEFAULT_VALIDITY_MINUTES } from './encode.js';
export type { MessageOptions, SubmitOptions, DeliverOptions, EncodedMessage, EncodedPart } from './encode.js';
export { decodePdu, decodeDcs, classifyStatus, statusText } from './decode.js';
export type { DecodedPdu, DecodeOptions, Concat, HeaderElement, PduType, PduEncoding, DeliveryStatus } from './decode.js';
export { segmentText, countSegments, chooseEncoding, partCapacity } from './segments.js';
export type { Encoding, EncodingChoice, Segment, Segmentation, SegmentCount, SegmentOptions } from './segments.js';
export { isGsm7, gsm7Cost } from './gsm7.js';
export { relativeValidity, validityMinutes, MAX_VALIDITY_MINUTES } from './validity.js';
