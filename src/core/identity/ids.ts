import { ArgumentInvalid } from '../errors/index.js';

// IoT Hub identity registry rules: ≤ 128 characters, case-sensitive, ASCII alphanumerics and - . % _ * ? ! ( ) , : = @ $ '
const ID_PATTERN = /^[A-Za-z0-9\-.%_*?!(),:=@$']+$/;
const MAX_ID_LENGTH = 128;

function checkId(kind: 'device' | 'module', id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) throw new ArgumentInvalid(`${kind} id is missing or empty`);
  if (id.length > MAX_ID_LENGTH) throw new ArgumentInvalid(`${kind} id is ${id.length} characters long; the limit is ${MAX_ID_LENGTH}`);
  if (!ID_PATTERN.test(id)) {
    throw new ArgumentInvalid(`${kind} id '${id}' has characters outside IoT Hub's set: ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ '`);
  }
  return id;
}

/** Returns the id if it follows IoT Hub's device id rules; throws ArgumentInvalid naming the rule otherwise. */
export function validateDeviceId(id: unknown): string {
  return checkId('device', id);
}

/** Same rules as device ids. */
export function validateModuleId(id: unknown): string {
  return checkId('module', id);
}
