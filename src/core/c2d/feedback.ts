import type { C2dFeedback, C2dOutcome } from '../../ports/store/index.js';
import { isoTime } from '../../ports/clock/index.js';

/** IoT Hub's feedback status codes (azure-compat §7.6). */
export type FeedbackStatusCode = 'Success' | 'Expired' | 'DeliveryCountExceeded' | 'Rejected';

/** One feedback record, exactly IoT Hub's JSON shape. */
export interface FeedbackRecord {
  readonly originalMessageId: string;
  /** When the outcome happened. */
  readonly enqueuedTimeUtc: string;
  readonly statusCode: FeedbackStatusCode;
  readonly description: string;
  readonly deviceId: string;
  readonly deviceGenerationId: string;
}

/** Records read together under one lock; complete the lock to remove them. */
export interface FeedbackBatch {
  readonly lockToken: string;
  readonly records: readonly FeedbackRecord[];
}

const STATUS: Readonly<Record<C2dOutcome, { statusCode: FeedbackStatusCode; description: string }>> = {
  completed: { statusCode: 'Success', description: 'Success' },
  expired: { statusCode: 'Expired', description: 'Message expired' },
  deadLettered: { statusCode: 'DeliveryCountExceeded', description: 'Message delivery count exceeded' },
  rejected: { statusCode: 'Rejected', description: 'Message rejected' },
};

export function feedbackRecord(f: C2dFeedback): FeedbackRecord {
  const { statusCode, description } = STATUS[f.outcome];
  return {
    originalMessageId: f.originalMessageId,
    enqueuedTimeUtc: isoTime(f.outcomeMs),
    statusCode,
    description,
    deviceId: f.deviceId,
    deviceGenerationId: f.deviceGenerationId,
  };
}
