import { headers, type MsgHdrs } from 'nats';
import { idFromSubjectToken, subjectToken } from '../../bus/index.js';
import { checkEventRecord, InvalidEventRecord, type EventRecord, type StoredEvent } from '../index.js';

/**
 * One record as a JetStream message. The subject carries kind, device and module (`<prefix>.<kind>.<device>.<module>`,
 * each a Bus subject token, so any string is safe and a device's read is a server-side filter); headers carry the rest:
 *
 * - `Corral-Time`: enqueuedTimeMs in decimal (JS's shortest round-trip form, so any finite number comes back exactly).
 * - `Corral-Props`: the properties as JSON, absent when there are none. JSON.stringify escapes CR, LF and every other
 *   control character, and NATS header values are UTF-8, so any property key or value survives.
 * - `Corral-Batch`: `<first>-<last>/<writer>`, the commit it belongs to (see commit-protocol.ts).
 *
 * Headers rather than an envelope in the body: the body stays the device's payload byte for byte (an endpoint can
 * forward it without a copy), and an operator's `nats stream view` shows readable records.
 */
export const TIME_HEADER = 'Corral-Time';
export const PROPS_HEADER = 'Corral-Props';
export const BATCH_HEADER = 'Corral-Batch';

/**
 * Bytes a message may take beyond its body and properties: the subject, the header names, the time, the batch header
 * and the NATS/1.0 preamble, with room to spare.
 */
const ENVELOPE_ALLOWANCE_BYTES = 1024;

/** The most a record's body, subject and properties may take in a message of at most `maxMessageBytes`. */
export function recordBytesLimit(maxMessageBytes: number): number {
  return maxMessageBytes - ENVELOPE_ALLOWANCE_BYTES;
}

/** A checked record ready to publish; `bytes` is what it costs on the wire, for batch limits. */
export interface OutgoingRecord {
  readonly subject: string;
  readonly timeMs: string;
  readonly props: string | undefined;
  readonly body: Uint8Array;
  readonly bytes: number;
}

/** The stream's subject filter for all records under `prefix`. */
export function recordsFilter(prefix: string): string {
  return `${prefix}.*.*.*`;
}

/** The subject filter for one device's records, its modules' included, of every kind. */
export function deviceFilter(prefix: string, deviceId: string): string {
  return `${prefix}.*.${subjectToken(deviceId)}.*`;
}

/**
 * Checks one record and encodes it, so a malformed or oversized record fails its own append, never a shared commit.
 * `maxMessageBytes` is the smaller of the server's max_payload and the stream's max_msg_size.
 */
export function toOutgoing(prefix: string, r: EventRecord, index: number, maxMessageBytes: number): OutgoingRecord {
  checkEventRecord(r, index);
  const props = r.properties;
  const entries = Object.keys(props);
  const subject = `${prefix}.${subjectToken(r.kind)}.${subjectToken(r.deviceId)}.${subjectToken(r.moduleId)}`;
  const json = entries.length === 0 ? undefined : JSON.stringify(props);
  const bytes = r.body.byteLength + Buffer.byteLength(subject) + (json === undefined ? 0 : Buffer.byteLength(json))
    + ENVELOPE_ALLOWANCE_BYTES;
  if (bytes > maxMessageBytes) {
    throw new InvalidEventRecord(index, `size (body ${r.body.byteLength} bytes with subject and properties, `
      + `over the server's limit of ${maxMessageBytes} bytes per message)`, bytes);
  }
  return { subject, timeMs: String(r.enqueuedTimeMs), props: json, body: r.body, bytes };
}

/** The headers of one outgoing record in the commit `batch`. */
export function outgoingHeaders(record: OutgoingRecord, batch: string): MsgHdrs {
  const h = headers();
  h.set(TIME_HEADER, record.timeMs);
  if (record.props !== undefined) h.set(PROPS_HEADER, record.props);
  h.set(BATCH_HEADER, batch);
  return h;
}

/** The value of BATCH_HEADER for a commit of sequences first..last by `writer`. */
export function batchLabel(first: number, last: number, writer: string): string {
  return `${first}-${last}/${writer}`;
}

/** The parts of a BATCH_HEADER value, or undefined when it is absent or not one. */
export function parseBatchLabel(label: string | undefined): { first: number; last: number; writer: string } | undefined {
  const m = label === undefined ? null : /^(\d+)-(\d+)\/(.+)$/.exec(label);
  if (m === null) return undefined;
  return { first: Number(m[1]), last: Number(m[2]), writer: m[3] };
}

/**
 * The stored event of one message under `prefix`. Lenient, so one foreign message on the stream's subjects never
 * stops a reader: a token that is not a subject token is taken as it is, a missing time is the time the stream stored
 * the message, and missing or unparsable properties are none.
 */
export function toStoredEvent(prefixTokens: number, seq: number, subject: string, hdrs: MsgHdrs | undefined,
  body: Uint8Array, storedMs: () => number): StoredEvent {
  const tokens = subject.split('.');
  const id = (token: string | undefined): string => {
    if (token === undefined) return '';
    try {
      return idFromSubjectToken(token);
    } catch {
      return token;
    }
  };
  const time = Number(hdrs?.get(TIME_HEADER) || Number.NaN);
  return {
    sequence: seq,
    kind: id(tokens[prefixTokens]),
    deviceId: id(tokens[prefixTokens + 1]),
    moduleId: id(tokens[prefixTokens + 2]),
    enqueuedTimeMs: Number.isFinite(time) ? time : storedMs(),
    properties: parseProps(hdrs?.get(PROPS_HEADER)),
    body,
  };
}

function parseProps(json: string | undefined): Record<string, string> {
  if (json === undefined || json === '') return {};
  try {
    const value: unknown = JSON.parse(json);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
    // fromEntries, not assignment: a '__proto__' key must stay an own property.
    return Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v === 'string'));
  } catch {
    return {};
  }
}
