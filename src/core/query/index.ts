/**
 * IoT Hub's query language: text → a checked, frozen QueryPlan (or a bare condition for a job's queryCondition, or a
 * routing condition over messages), and conditions evaluated in memory with the Store's semantics.
 * No SQL here: the Store compiles plans (ports/store/sql).
 */

import { QuerySyntaxError } from '../errors/index.js';
import type { QueryExpr, QueryPlan } from '../../ports/store/query.js';
import { checkCondition, checkConditionWith, checkQuery } from './checker.js';
import { MESSAGE_PATHS, messageCondition, type MessageCondition } from './message.js';
import { parseConditionText, parseQueryText } from './parser.js';

/** 400004 with the 1-based `position` of the problem; every error below is one. */
export { QuerySyntaxError } from '../errors/index.js';
/** The deepest condition (64) and the longest IN list (1000) a query may hold. */
export { MAX_IN_VALUES, MAX_NESTING } from './syntax.js';
/** `{alias: value}` for the path items of a `paths` select, read from one twin or device-job JSON; never throws. */
export { projectRow } from './project.js';
/**
 * evaluateCondition: whether a checked condition is true, each field's value given by `resolve`, with exactly the
 * Store's semantics (three-valued; false for undefined). evaluateDeviceCondition: whether a devices/modules
 * condition holds for one identity record (and its telemetry, if given), as the Store's query would decide it.
 */
export { evaluateCondition, evaluateDeviceCondition } from './evaluate.js';
/**
 * evaluateMessageCondition: whether a routing condition is true for a message (false for undefined, as IoT Hub).
 * readBodyNumber: the number at a path of a parsed body, or undefined. parseBodyPath: `$body.a.b` or `a.b` → its
 * keys; throws QuerySyntaxError (400004).
 */
export {
  evaluateMessageCondition, parseBodyPath, readBodyNumber,
  type MessageCondition, type MessageFacts, type MessageField,
} from './message.js';

/** IoT Hub's limit on query text, in characters (UTF-16 units, as .NET counts them). */
export const MAX_QUERY_CHARS = 8192;

function checkLength(text: string, what: string): void {
  if (text.length > MAX_QUERY_CHARS) {
    throw new QuerySyntaxError(MAX_QUERY_CHARS + 1, `the ${what} is ${text.length} characters long; the limit is ${MAX_QUERY_CHARS}`);
  }
}

/** Freezes a plan all the way down: it crosses into the Store and may be cached, so no one may change it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses and checks `SELECT … FROM devices | devices.modules | devices.jobs [WHERE …] [GROUP BY …] [ORDER BY …]`.
 * Throws QuerySyntaxError (400004) naming the position, what was expected and what was found.
 */
export function parseQuery(text: string): QueryPlan {
  checkLength(text, 'query');
  return deepFreeze(checkQuery(parseQueryText(text)));
}

/**
 * Parses and checks a bare condition over `devices` (a job's `queryCondition`, e.g. `deviceId IN ['d1','d2']`).
 * Throws QuerySyntaxError (400004) as parseQuery does.
 */
export function parseCondition(text: string): QueryExpr {
  checkLength(text, 'query');
  return deepFreeze(checkCondition(parseConditionText(text), 'devices'));
}

/**
 * Parses and checks an IoT Hub routing condition (`$contentType = 'application/json' AND $body.temp > 30`,
 * `processingPath = 'hot'`, `$twin.tags.site = 'x'`, or just `true`). Throws QuerySyntaxError (400004) with the
 * position of the problem, as parseQuery does.
 */
export function parseMessageCondition(text: string): MessageCondition {
  checkLength(text, 'condition');
  const raw = parseConditionText(text, { hyphenatedDollarNames: true });
  return deepFreeze(messageCondition(text, checkConditionWith(raw, MESSAGE_PATHS)));
}
