import type { C2dFeedback, C2dMessage, C2dNewMessage, C2dOutcome, C2dState } from '../c2d.js';

/**
 * The C2D tables, shared by both SQL adapters: column lists, message → row values, rows → records, and the state
 * predicates both dialects write the same way. Properties and feedbackOn travel as JSON text.
 */
export const C2D_INSERT_COLUMNS = [
  'device_id', 'module_id', 'message_id', 'correlation_id', 'user_id', 'content_type', 'content_encoding', 'ack',
  'properties', 'body', 'generation_id', 'enqueued_ms', 'expiry_ms', 'feedback_on', 'state', 'delivery_count',
  'updated_ms',
] as const;

export const C2D_COLUMNS = ['seq', ...C2D_INSERT_COLUMNS, 'lock_token', 'lock_until_ms'] as const;

export const FEEDBACK_COLUMNS = [
  'seq', 'original_message_id', 'device_id', 'module_id', 'device_generation_id', 'outcome', 'outcome_ms',
] as const;

/** Pending: counts toward the depth and `identities.c2d_count`. */
export const PENDING = `state IN ('enqueued', 'locked')`;

/** Available to a receive at time `now` (a SQL expression): enqueued, or locked with the lock run out. */
export function available(now: string): string {
  return `(state = 'enqueued' OR (state = 'locked' AND lock_until_ms <= ${now}))`;
}

/** Values in C2D_INSERT_COLUMNS order for a new, enqueued message. */
export function c2dValues(m: C2dNewMessage): (string | number | Uint8Array | null)[] {
  return [
    m.deviceId, m.moduleId, m.messageId, m.correlationId, m.userId, m.contentType, m.contentEncoding, m.ack,
    JSON.stringify(m.properties), Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength), m.generationId,
    m.enqueuedMs, m.expiryMs, JSON.stringify(m.feedbackOn), 'enqueued', 0, m.enqueuedMs,
  ];
}

function nullableString(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

/** A row as either driver returns it (bigint columns may arrive as strings from pg). */
export function c2dFromRow(row: Record<string, unknown>): C2dMessage {
  return {
    seq: Number(row.seq),
    deviceId: row.device_id as string,
    moduleId: row.module_id as string,
    messageId: row.message_id as string,
    correlationId: nullableString(row.correlation_id),
    userId: nullableString(row.user_id),
    contentType: nullableString(row.content_type),
    contentEncoding: nullableString(row.content_encoding),
    ack: row.ack as string,
    properties: JSON.parse(row.properties as string) as Record<string, string>,
    body: new Uint8Array(row.body as Buffer),
    generationId: row.generation_id as string,
    enqueuedMs: Number(row.enqueued_ms),
    expiryMs: Number(row.expiry_ms),
    feedbackOn: JSON.parse(row.feedback_on as string) as C2dOutcome[],
    state: row.state as C2dState,
    deliveryCount: Number(row.delivery_count),
    lockToken: nullableString(row.lock_token),
    lockUntilMs: row.lock_until_ms === null || row.lock_until_ms === undefined ? null : Number(row.lock_until_ms),
    updatedMs: Number(row.updated_ms),
  };
}

export function feedbackFromRow(row: Record<string, unknown>): C2dFeedback {
  return {
    seq: Number(row.seq),
    originalMessageId: row.original_message_id as string,
    deviceId: row.device_id as string,
    moduleId: row.module_id as string,
    deviceGenerationId: row.device_generation_id as string,
    outcome: row.outcome as C2dOutcome,
    outcomeMs: Number(row.outcome_ms),
  };
}

/** A message that reached `outcome`, as the columns the transition's RETURNING gives. */
export interface FinishedRow {
  readonly seq: number;
  readonly messageId: string;
  readonly deviceId: string;
  readonly moduleId: string;
  readonly generationId: string;
  readonly feedbackOn: readonly C2dOutcome[];
}

/** What a transition to a final state returns, so the adapter can append the feedback the message asks for. */
export const FINISHED_RETURNING = 'RETURNING seq, message_id, device_id, module_id, generation_id, feedback_on';

export function finishedFromRow(row: Record<string, unknown>): FinishedRow {
  return {
    seq: Number(row.seq),
    messageId: row.message_id as string,
    deviceId: row.device_id as string,
    moduleId: row.module_id as string,
    generationId: row.generation_id as string,
    feedbackOn: JSON.parse(row.feedback_on as string) as C2dOutcome[],
  };
}

/**
 * Feedback row values (FEEDBACK_COLUMNS without seq) for the finished messages that list `outcome`, in the messages'
 * enqueue order (RETURNING promises no order).
 */
export function feedbackValues(rows: readonly FinishedRow[], outcome: C2dOutcome, nowMs: number): (string | number)[][] {
  return rows.filter((r) => r.feedbackOn.includes(outcome)).sort((a, b) => a.seq - b.seq)
    .map((r) => [r.messageId, r.deviceId, r.moduleId, r.generationId, outcome, nowMs]);
}


export function emptyCounts(): Record<C2dState, number> {
  return { enqueued: 0, locked: 0, completed: 0, rejected: 0, deadLettered: 0, expired: 0 };
}
