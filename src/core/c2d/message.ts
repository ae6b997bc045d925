import { ArgumentInvalid, TooLarge } from '../errors/index.js';
import type { C2dMessage, C2dOutcome } from '../../ports/store/index.js';
import { isoTime } from '../../ports/clock/index.js';

/** IoT Hub's `iothub-ack`: which outcomes the sender hears about in the feedback. */
export type C2dAck = 'none' | 'positive' | 'negative' | 'full';

const ACKS: Readonly<Record<C2dAck, readonly C2dOutcome[]>> = {
  none: [],
  positive: ['completed'],
  negative: ['rejected', 'expired', 'deadLettered'],
  full: ['completed', 'rejected', 'expired', 'deadLettered'],
};

/** The limits of cloud-to-device messaging; IoT Hub's by default (azure-compat §11). */
export interface C2dLimits {
  /** Pending messages per device or module. */
  readonly maxQueueDepth: number;
  readonly defaultTtlSeconds: number;
  readonly maxTtlSeconds: number;
  /** How long a received message stays invisible before it is handed out again. */
  readonly lockSeconds: number;
  /** Deliveries after which a message is dead-lettered. */
  readonly maxDeliveryCount: number;
  /** Body plus properties. */
  readonly maxMessageBytes: number;
  /** How long unread feedback is kept. */
  readonly feedbackTtlSeconds: number;
  /** Feedback records per read. */
  readonly feedbackBatchSize: number;
  /** How long settled, expired and dead-lettered messages are kept (for counts) before they are deleted. */
  readonly finishedRetentionSeconds: number;
}

export const IOT_HUB_C2D_LIMITS: C2dLimits = Object.freeze({
  maxQueueDepth: 50,
  defaultTtlSeconds: 3600,
  maxTtlSeconds: 172_800,
  lockSeconds: 60,
  maxDeliveryCount: 10,
  maxMessageBytes: 65_536,
  feedbackTtlSeconds: 3600,
  // IoT Hub batches at most 64 feedback records (azure-compat §7.6).
  feedbackBatchSize: 64,
  finishedRetentionSeconds: 3600,
});

/** A message as a service sends it; absent fields take IoT Hub's defaults. */
export interface OutgoingMessage {
  readonly body: Uint8Array;
  readonly messageId?: string;
  readonly correlationId?: string;
  readonly userId?: string;
  /** none (default), positive, negative or full. */
  readonly ack?: string;
  /** Absolute expiry, ISO 8601; default now + defaultTtlSeconds. */
  readonly expiryTimeUtc?: string;
  readonly contentType?: string;
  readonly contentEncoding?: string;
  readonly properties?: Readonly<Record<string, string>>;
}

/** A message as a device receives it, locked under `lockToken`. */
export interface DeviceBoundMessage {
  readonly lockToken: string;
  readonly messageId: string;
  /** `/devices/{id}/messages/deviceBound` (modules: `/devices/{id}/modules/{mid}/messages/deviceBound`). */
  readonly to: string;
  readonly correlationId: string | null;
  readonly userId: string | null;
  readonly ack: C2dAck;
  readonly contentType: string | null;
  readonly contentEncoding: string | null;
  readonly enqueuedTimeUtc: string;
  readonly expiryTimeUtc: string;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
  readonly properties: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

// IoT Hub's message id: ≤ 128 ASCII alphanumerics and - : . + % _ # * ? ! ( ) , = @ ; $ '
const MESSAGE_ID = /^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$/;
const MAX_SYSTEM_PROPERTY = 128;
const CONTROL = /[\x00-\x1f\x7f]/;

function checkText(name: string, value: string | undefined, maxLength = MAX_SYSTEM_PROPERTY): string | null {
  if (value === undefined) return null;
  if (value.length > maxLength) throw new ArgumentInvalid(`${name} is ${value.length} characters long; the limit is ${maxLength}`);
  if (CONTROL.test(value)) throw new ArgumentInvalid(`${name} '${value}' holds a control character`);
  return value;
}

export function parseAck(value: string | undefined): C2dAck {
  if (value === undefined || value === '') return 'none';
  const ack = value.toLowerCase();
  if (ack in ACKS) return ack as C2dAck;
  throw new ArgumentInvalid(`iothub-ack '${value}' is not one of none, positive, negative, full`);
}

/** The final states that produce feedback for this ack. */
export function feedbackOn(ack: C2dAck): readonly C2dOutcome[] {
  return ACKS[ack];
}

/** Expiry in ms: the given ISO time (after now, within the max TTL) or now + default TTL. Throws 400004. */
export function expiryOf(given: string | undefined, nowMs: number, limits: C2dLimits): number {
  if (given === undefined || given === '') return nowMs + limits.defaultTtlSeconds * 1000;
  const ms = Date.parse(given);
  if (Number.isNaN(ms)) throw new ArgumentInvalid(`expiry '${given}' is not an ISO 8601 time`);
  if (ms <= nowMs) throw new ArgumentInvalid(`expiry '${given}' has passed already (now is ${isoTime(nowMs)})`);
  if (ms > nowMs + limits.maxTtlSeconds * 1000) {
    throw new ArgumentInvalid(`expiry '${given}' is more than ${limits.maxTtlSeconds} s away, the longest time to live allowed`);
  }
  return ms;
}

/** Checks ids, texts and properties and returns the message's size in bytes (body, properties and system properties). */
export function checkOutgoing(m: OutgoingMessage, limits: C2dLimits): number {
  if (m.messageId !== undefined && !MESSAGE_ID.test(m.messageId)) {
    throw new ArgumentInvalid(`message id '${m.messageId}' must be 1..128 ASCII letters, digits or - : . + % _ # * ? ! ( ) , = @ ; $ '`);
  }
  const texts = { correlationId: m.correlationId, userId: m.userId, contentType: m.contentType, contentEncoding: m.contentEncoding };
  let size = m.body.byteLength + Buffer.byteLength(m.messageId ?? '');
  for (const [name, value] of Object.entries(texts)) size += Buffer.byteLength(checkText(name, value) ?? '');
  for (const [key, value] of Object.entries(m.properties ?? {})) {
    if (key === '') throw new ArgumentInvalid('a message property has an empty name');
    checkText(`property name '${key}'`, key, Infinity);
    checkText(`property '${key}'`, value, Infinity);
    size += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  if (size > limits.maxMessageBytes) throw new TooLarge(`the message (${size} bytes with its properties)`, limits.maxMessageBytes);
  return size;
}

/** Where IoT Hub says a device-bound message goes. */
export function deviceBoundPath(deviceId: string, moduleId: string): string {
  return `/devices/${deviceId}${moduleId ? `/modules/${moduleId}` : ''}/messages/deviceBound`;
}

/** The stored, locked message as its device receives it. */
export function deviceBoundView(m: C2dMessage): DeviceBoundMessage {
  return {
    // lockNext always sets a token on the message it returns.
    lockToken: m.lockToken ?? '',
    messageId: m.messageId,
    to: deviceBoundPath(m.deviceId, m.moduleId),
    correlationId: m.correlationId,
    userId: m.userId,
    ack: m.ack in ACKS ? (m.ack as C2dAck) : 'none',
    contentType: m.contentType,
    contentEncoding: m.contentEncoding,
    enqueuedTimeUtc: isoTime(m.enqueuedMs),
    expiryTimeUtc: isoTime(m.expiryMs),
    deliveryCount: m.deliveryCount,
    properties: m.properties,
    body: m.body,
  };
}
