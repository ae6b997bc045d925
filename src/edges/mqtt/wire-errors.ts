import { randomUUID } from 'node:crypto';
import { CorralError } from '../../core/errors/index.js';

/** `$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]`. */
export function twinTopic(status: number, rid: string, version?: number): string {
  return `$iothub/twin/res/${status}/?$rid=${encodeURIComponent(rid)}${version === undefined ? '' : `&$version=${version}`}`;
}

/**
 * A failed twin request as IoT Hub answers it: the status in the topic and a JSON body with `errorCode` (the SDK
 * ignores the topic status and treats a body with `errorCode` as the error; azure-compat §4).
 */
export function twinError(rid: string, err: unknown): { topic: string; body: Buffer } {
  const e = err instanceof CorralError ? err : undefined;
  const status = e?.httpStatus ?? 500;
  const body = {
    errorCode: e?.code ?? 500001,
    message: e?.message ?? 'an unexpected error occurred',
    trackingId: randomUUID().replace(/-/g, ''),
    timestampUtc: new Date().toISOString(),
  };
  return { topic: twinTopic(status, rid), body: Buffer.from(JSON.stringify(body)) };
}
