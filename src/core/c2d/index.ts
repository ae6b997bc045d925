export { CloudToDevice, c2dSubject, startC2dSweeper, type CloudToDeviceDeps } from './cloud-to-device.js';
export {
  IOT_HUB_C2D_LIMITS, deviceBoundPath, type C2dAck, type C2dLimits, type DeviceBoundMessage, type OutgoingMessage,
} from './message.js';
export type { FeedbackBatch, FeedbackRecord, FeedbackStatusCode } from './feedback.js';
