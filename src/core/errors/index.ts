/**
 * The one family of domain errors. Each carries an IoT Hub error code (the catalog below); edges map codes to
 * their wire form in one place each (edges/rest/wire-errors.ts, …).
 */

/** Every code Corral raises, with IoT Hub's name for it and the HTTP status it travels with. */
export const ERROR_CATALOG = {
  400004: { name: 'ArgumentInvalid', httpStatus: 400, doc: 'a request argument (id, body field, header, JSON) is invalid' },
  400027: { name: 'ConnectionForcefullyClosedOnNewConnection', httpStatus: 400, doc: 'a newer connection for the same identity replaced this one' },
  401002: { name: 'IotHubUnauthorizedAccess', httpStatus: 401, doc: 'the caller is authenticated but its policy lacks the right for this operation' },
  401003: { name: 'IotHubUnauthorized', httpStatus: 401, doc: 'the SAS token is missing, malformed, expired or signed with the wrong key' },
  403002: { name: 'IotHubQuotaExceeded', httpStatus: 403, doc: 'a hub-wide quota (devices, message rate) is used up' },
  403004: { name: 'DeviceMaximumQueueDepthExceeded', httpStatus: 403, doc: 'the device already holds the most pending cloud-to-device messages allowed' },
  404001: { name: 'DeviceNotFound', httpStatus: 404, doc: 'no device (or module) with that id' },
  404002: { name: 'JobNotFound', httpStatus: 404, doc: 'no job with that id' },
  404010: { name: 'ModuleNotFound', httpStatus: 404, doc: 'the device has no module with that id' },
  404103: { name: 'DeviceNotOnline', httpStatus: 404, doc: 'the device exists but is not connected' },
  404999: { name: 'NotFound', httpStatus: 404, doc: 'no such route or resource on this hub' },
  405001: { name: 'MethodNotAllowed', httpStatus: 405, doc: 'the route exists but not for this HTTP method' },
  409001: { name: 'DeviceAlreadyExists', httpStatus: 409, doc: 'a device with that id already exists' },
  409005: { name: 'JobAlreadyExists', httpStatus: 409, doc: 'a job with that id exists already' },
  409999: { name: 'Conflict', httpStatus: 409, doc: 'a Corral resource (route, endpoint, rule, consumer group) with that name exists already, or changed since it was read' },
  409301: { name: 'ModuleAlreadyExistsOnDevice', httpStatus: 409, doc: 'the device already has a module with that id' },
  412002: { name: 'PreconditionFailed', httpStatus: 412, doc: 'the If-Match etag, or a message or feedback lock token, is not the current one' },
  413001: { name: 'MessageTooLarge', httpStatus: 413, doc: 'the request body is larger than the configured limit' },
  415001: { name: 'UnsupportedMediaType', httpStatus: 415, doc: 'the request body has a content type this route does not read' },
  429001: { name: 'ThrottlingException', httpStatus: 429, doc: 'too many requests for the configured rate; retry later' },
  500001: { name: 'ServerError', httpStatus: 500, doc: 'an unexpected failure; its tracking id is in the log' },
  503001: { name: 'ServiceUnavailable', httpStatus: 503, doc: 'the store or another dependency is unavailable; retry later' },
  504101: { name: 'GatewayTimeout', httpStatus: 504, doc: 'the device did not answer in time' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export class CorralError extends Error {
  constructor(readonly code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
  get codeName(): string { return ERROR_CATALOG[this.code].name; }
  get httpStatus(): number { return ERROR_CATALOG[this.code].httpStatus; }
}

export class ArgumentInvalid extends CorralError {
  constructor(message: string) { super(400004, message); }
}

export class Unauthorized extends CorralError {
  constructor(message = 'the SAS token is missing, malformed, expired or not valid for this hub') { super(401003, message); }
}

export class AccessDenied extends CorralError {
  constructor(policy: string, right: string) {
    super(401002, `policy '${policy}' does not grant ${right}, which this operation needs`);
  }
}

export class DeviceNotFound extends CorralError {
  constructor(deviceId: string) { super(404001, `device '${deviceId}' not found`); }
}

export class ModuleNotFound extends CorralError {
  // 404001 is what IoT Hub answers for a missing module too, and what the SDK maps to DeviceNotFoundError.
  constructor(deviceId: string, moduleId: string) { super(404001, `module '${moduleId}' not found on device '${deviceId}'`); }
}

export class DeviceAlreadyExists extends CorralError {
  constructor(deviceId: string) { super(409001, `device '${deviceId}' already exists`); }
}

export class ModuleAlreadyExists extends CorralError {
  constructor(deviceId: string, moduleId: string) { super(409301, `module '${moduleId}' already exists on device '${deviceId}'`); }
}

export class PreconditionFailed extends CorralError {
  constructor(what: string, expected: string, actual: string) {
    super(412002, `${what}: If-Match etag ${expected} does not match the current etag ${actual}`);
  }
}

export class QueueDepthExceeded extends CorralError {
  constructor(what: string, maxDepth: number) {
    super(403004, `${what} already holds ${maxDepth} pending cloud-to-device messages, the most allowed`);
  }
}

/** 412002 for a lock token that is not (or no longer) the current lock of a message. */
export class LockLost extends CorralError {
  constructor(what: string, lockToken: string) {
    super(412002, `lock token '${lockToken}' does not hold ${what}: it was settled, its lock ran out, or it never existed`);
  }
}

export class TooLarge extends CorralError {
  constructor(what: string, maxBytes: number) { super(413001, `${what} is larger than the limit of ${maxBytes} bytes`); }
}

export class Throttled extends CorralError {
  constructor(limitPerSecond: number) {
    super(429001, `more than ${limitPerSecond} requests per second; retry later`);
  }
}

export class StoreUnavailable extends CorralError {
  constructor(what: string, options?: ErrorOptions) { super(503001, `the store is unavailable (${what}); retry later`, options); }
}

export class RouteNotFound extends CorralError {
  constructor(method: string, path: string) { super(404999, `no route for ${method} ${path}`); }
}

export class DeviceNotOnline extends CorralError {
  // 404103, not 404001: the device exists but is not connected (or not listening for methods).
  constructor(deviceId: string) { super(404103, `device '${deviceId}' is not online`); }
}

export class GatewayTimeout extends CorralError {
  constructor(deviceId: string, timeoutSeconds: number) {
    super(504101, `device '${deviceId}' did not answer within ${timeoutSeconds} s`);
  }
}

/** 400004 for query text that does not parse or check; `position` is the 1-based character where it went wrong. */
export class QuerySyntaxError extends ArgumentInvalid {
  constructor(readonly position: number, detail: string) {
    super(`query error at position ${position}: ${detail}`);
  }
}

export class JobNotFound extends CorralError {
  constructor(jobId: string) { super(404002, `job '${jobId}' not found`); }
}

export class JobAlreadyExists extends CorralError {
  constructor(jobId: string) { super(409005, `a job with id '${jobId}' exists already; job ids are never reused`); }
}

export class IndexNotFound extends CorralError {
  constructor(path: string) { super(404999, `no index is declared on '${path}'`); }
}

/** A pipeline setting (route, endpoint, rule, …) or an alert that does not exist. */
export class PipelineItemNotFound extends CorralError {
  constructor(what: string, name: string) { super(404999, `no ${what} named '${name}'`); }
}

/** A pipeline setting that exists already (create) or changed since it was read (If-Match). */
export class PipelineItemConflict extends CorralError {
  constructor(message: string) { super(409999, message); }
}
