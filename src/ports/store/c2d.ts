import type { IdentityKey } from './index.js';

/**
 * The cloud-to-device inbox of the Store port. Adapters keep rows and move them between states; every rule (depth,
 * TTL, lock time, delivery limit, which outcomes are reported) is core's and arrives as arguments or as data on the
 * message. All times are milliseconds since the epoch, given by core's clock.
 */

/** A message's state: pending while 'enqueued' or 'locked'; every other state is final. */
export type C2dState = 'enqueued' | 'locked' | 'completed' | 'rejected' | 'deadLettered' | 'expired';

/** The final states a message can reach; the feedback a service reads names one of them. */
export type C2dOutcome = 'completed' | 'rejected' | 'deadLettered' | 'expired';

/** A message as core hands it to `enqueue`. */
export interface C2dNewMessage {
  readonly deviceId: string;
  /** '' for a device. */
  readonly moduleId: string;
  readonly messageId: string;
  readonly correlationId: string | null;
  readonly userId: string | null;
  readonly contentType: string | null;
  readonly contentEncoding: string | null;
  /** IoT Hub's `iothub-ack` as sent (none, positive, negative, full); kept for delivery. */
  readonly ack: string;
  /** Application properties. */
  readonly properties: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** The identity's generation id when the message was sent (feedback names it). */
  readonly generationId: string;
  /** Enqueue time; also "now" for the depth check. */
  readonly enqueuedMs: number;
  /** The message is dropped (state 'expired') once the clock reaches this. */
  readonly expiryMs: number;
  /** The final states for which a feedback record is appended, in the same transaction as the state change. */
  readonly feedbackOn: readonly C2dOutcome[];
}

/** A stored message with its delivery state. */
export interface C2dMessage extends C2dNewMessage {
  /** Enqueue order, increasing across the hub. */
  readonly seq: number;
  readonly state: C2dState;
  /** How many times it was handed out (each lock counts one). */
  readonly deliveryCount: number;
  /** The current lock's token; null unless locked. */
  readonly lockToken: string | null;
  readonly lockUntilMs: number | null;
  /** When the state last changed. */
  readonly updatedMs: number;
}

/** A feedback record as the Store keeps it; core turns it into IoT Hub's JSON. */
export interface C2dFeedback {
  readonly seq: number;
  readonly originalMessageId: string;
  readonly deviceId: string;
  readonly moduleId: string;
  readonly deviceGenerationId: string;
  readonly outcome: C2dOutcome;
  /** When the outcome happened. */
  readonly outcomeMs: number;
}

export type C2dEnqueueResult = 'enqueued' | 'queue-full' | 'no-identity';

/** How `settle` ends a lock: 'abandoned' puts the message back for the next receive. */
export type C2dSettlement = 'completed' | 'rejected' | 'abandoned';

export interface C2dSweep {
  readonly nowMs: number;
  /** Pending messages handed out this many times and not locked now are dead-lettered. */
  readonly maxDeliveryCount: number;
  /** Messages in a final state since before this are deleted. */
  readonly finishedBeforeMs: number;
  /** Feedback records whose outcome is older than this are deleted. */
  readonly feedbackBeforeMs: number;
}

export interface C2dSweepResult {
  readonly expired: number;
  readonly deadLettered: number;
  readonly messagesDeleted: number;
  readonly feedbackDeleted: number;
}

export type C2dCounts = Readonly<Record<C2dState, number>>;

export interface C2dStore {
  /**
   * Appends a message to its identity's inbox unless that identity already holds `maxDepth` pending messages not
   * expired at `enqueuedMs` ('queue-full'), or does not exist ('no-identity'). Keeps `identities.c2d_count` equal to
   * the identity's pending messages, in the same transaction.
   */
  enqueue(message: C2dNewMessage, maxDepth: number): Promise<C2dEnqueueResult>;
  /**
   * In one transaction: moves the identity's pending messages expired at `nowMs` to 'expired'; dead-letters those
   * available (enqueued, or locked with the lock run out) with `deliveryCount >= maxDeliveryCount`; then locks the
   * first available message in enqueue order until `lockUntilMs` with a new random token and deliveryCount + 1.
   * Undefined when none is available. Feedback rows are appended for the final states a message lists.
   */
  lockNext(key: IdentityKey, nowMs: number, lockUntilMs: number, maxDeliveryCount: number): Promise<C2dMessage | undefined>;
  /**
   * Ends the lock `lockToken` of one of the identity's messages: completed and rejected are final (with feedback
   * when listed), abandoned makes the message available again. False when no message of the identity holds that
   * token with its lock still running at `nowMs`.
   */
  settle(key: IdentityKey, lockToken: string, settlement: C2dSettlement, nowMs: number): Promise<boolean>;
  /** Deletes the identity's pending messages (no feedback); returns how many. */
  purge(key: IdentityKey): Promise<number>;
  /** Hub-wide housekeeping, the lockNext rules for every identity plus deleting old final messages and feedback. */
  sweep(options: C2dSweep): Promise<C2dSweepResult>;
  /** Messages per state, of one identity or (without a key) of the hub. */
  counts(key?: IdentityKey): Promise<C2dCounts>;
  /**
   * Locks up to `max` feedback records that are not locked (or whose lock ran out at `nowMs`), oldest first, under
   * one new random token until `lockUntilMs`. Undefined when there are none.
   */
  lockFeedback(nowMs: number, lockUntilMs: number, max: number): Promise<{ lockToken: string; records: C2dFeedback[] } | undefined>;
  /** Deletes the records locked under `lockToken`, if that lock still runs at `nowMs`; false otherwise. */
  completeFeedback(lockToken: string, nowMs: number): Promise<boolean>;
  /** Unlocks the records locked under `lockToken` so the next read gets them; false if that lock is not running. */
  abandonFeedback(lockToken: string, nowMs: number): Promise<boolean>;
}
