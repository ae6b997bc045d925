import type { JetStreamManager } from 'nats';
import { subjectToken } from '../../bus/index.js';

/** How a set names its partitions' streams and subjects (JetStreamEventLogSetOptions). */
export interface PartitionNaming {
  readonly streamPrefix: string;
  readonly subjectPrefix: string;
}

/** What a partition name may hold: a stream name's characters. */
const PARTITION_NAME = /^[A-Za-z0-9_-]+$/;

/**
 * A node's partition name: its id as one Bus subject token, so only [A-Za-z0-9_-] (`node-1` stays, `host:42` becomes
 * `host_3A42`), and no two ids share a name (the encoding is injective), which keeps one writer per stream.
 */
export function partitionOf(nodeId: string): string {
  if (typeof nodeId !== 'string' || nodeId === '') throw new RangeError(`nodeId must be a non-empty string, got '${String(nodeId)}'`);
  return subjectToken(nodeId);
}

export function isPartitionName(name: string): boolean {
  return PARTITION_NAME.test(name);
}

/** The partition's stream: `<streamPrefix>_<partition>`. */
export function streamOf(n: PartitionNaming, partition: string): string {
  return `${n.streamPrefix}_${partition}`;
}

/** The partition's subjects' prefix: `<subjectPrefix>.<partition>`. */
export function subjectPrefixOf(n: PartitionNaming, partition: string): string {
  return `${n.subjectPrefix}.${partition}`;
}

/**
 * The description a partition's stream carries. The listing takes a stream for a partition only if its description
 * is exactly this for the name after the prefix, so another set's streams (a longer prefix, say) never pass for ours.
 */
export function partitionDescription(n: PartitionNaming, partition: string): string {
  return `Corral event log partition '${partition}' of ${n.streamPrefix}`;
}

/** The partitions with a stream on the server, unsorted: streams holding the set's subjects, mapped back by description. */
export async function listPartitions(jsm: JetStreamManager, n: PartitionNaming): Promise<string[]> {
  const found: string[] = [];
  for await (const info of jsm.streams.list(`${n.subjectPrefix}.>`)) {
    const name = info.config.name;
    if (!name.startsWith(`${n.streamPrefix}_`)) continue;
    const partition = name.slice(n.streamPrefix.length + 1);
    if (info.config.description === partitionDescription(n, partition)) found.push(partition);
  }
  return found;
}
