import { randomUUID } from 'node:crypto';
import { CorralError, ERROR_CATALOG, type ErrorCode } from '../../core/errors/index.js';
import { ContendedRecord } from '../../ports/store/index.js';

/** An error as the REST wire carries it: status, IoT Hub's headers and classic body. */
export interface WireError {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: { Message: string; ExceptionMessage: string };
  /** Set for unexpected errors: the id under which the cause was logged. */
  readonly trackingId: string;
  readonly unexpected: boolean;
}

// The Node service SDK reads `ErrorCode:{name};{message}` up to the next ';' (azure-compat §8), so messages
// must not contain one.
function clean(message: string): string {
  return message.replace(/;/g, ',');
}

// IoT Hub answers these two in its newer envelope: `Message` holds a JSON string (azure-compat §5, §8).
const ENVELOPED: ReadonlySet<ErrorCode> = new Set([404103, 504101]);

function wire(code: ErrorCode, message: string, unexpected = false): WireError {
  const entry = ERROR_CATALOG[code];
  const trackingId = randomUUID().replace(/-/g, '');
  if (ENVELOPED.has(code)) {
    const inner = { errorCode: code, trackingId, message: clean(message), info: {}, timestampUtc: new Date().toISOString() };
    return { status: entry.httpStatus, headers: { 'iothub-errorcode': entry.name }, body: { Message: JSON.stringify(inner), ExceptionMessage: '' }, trackingId, unexpected };
  }
  return {
    status: entry.httpStatus,
    headers: { 'iothub-errorcode': entry.name },
    body: {
      Message: `ErrorCode:${entry.name};${clean(message)}`,
      ExceptionMessage: `Tracking ID:${trackingId}-G:0-TimeStamp:${new Date().toISOString()}`,
    },
    trackingId,
    unexpected,
  };
}

interface FrameworkError { statusCode?: number; code?: string; message?: string }

/** Maps anything thrown while serving a request to IoT Hub's error form; unknown errors become 500 with an id. */
export function toWireError(err: unknown): WireError {
  if (err instanceof CorralError) return wire(err.code, err.message);
  if (err instanceof ContendedRecord) return wire(503001, err.message);
  const fw = (typeof err === 'object' && err !== null ? err : {}) as FrameworkError;
  switch (fw.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return wire(413001, 'the request body is larger than the configured limit (--max-body-bytes)');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return wire(415001, 'the request has a Content-Type this route does not read; send application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return wire(400004, 'the request has Content-Type application/json but no body');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return wire(400004, `the request body is not valid JSON: ${fw.message ?? ''}`);
  }
  if (err instanceof SyntaxError || fw.statusCode === 400) return wire(400004, `malformed request: ${fw.message ?? 'bad input'}`);
  if (fw.statusCode === 413) return wire(413001, fw.message ?? 'request too large');
  return wire(500001, 'an unexpected error occurred; the tracking id is in the hub log', true);
}
