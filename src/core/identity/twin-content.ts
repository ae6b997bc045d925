import { ArgumentInvalid } from '../errors/index.js';
import type { JsonObject } from '../../ports/store/index.js';
import { isRecord } from './spec.js';

/** Twin sections carried by an ExportImportDevice (import lines, bulk updateTwin). */
export interface TwinContent {
  readonly tags?: JsonObject;
  readonly desired?: JsonObject;
  readonly reported?: JsonObject;
}

/** Reads `tags` and `properties.{desired,reported}` if present; validation happens when they are applied. */
export function parseTwinContent(raw: Record<string, unknown>): TwinContent | undefined {
  const props = raw.properties;
  if (props !== undefined && props !== null && !isRecord(props)) throw new ArgumentInvalid('properties must be an object');
  const pick = (v: unknown, name: string): JsonObject | undefined => {
    if (v === undefined || v === null) return undefined;
    if (!isRecord(v)) throw new ArgumentInvalid(`${name} must be an object`);
    return v as JsonObject;
  };
  const content = {
    tags: pick(raw.tags, 'tags'),
    desired: isRecord(props) ? pick(props.desired, 'properties.desired') : undefined,
    reported: isRecord(props) ? pick(props.reported, 'properties.reported') : undefined,
  };
  return content.tags || content.desired || content.reported ? content : undefined;
}
