import type { QueryPage } from '../../src/ports/store/query.js';
import type { HandRow } from './hand.js';

/**
 * What a right answer is, for each side of the query figures: the batch's 10 devices, each once, each with the
 * asked tag; and the GROUP BY's groups with the hand-written SQL's counts.
 */

export const BATCH_SIZE = 10;

/** The batch a `… tags.batch = 'b-<n>'` query text (or a request body holding one) asks for. */
export function batchAsked(text: string): string | undefined {
  return /'(b-\d+)'/.exec(text)?.[1];
}

/** Undefined when `rows` are the batch's 10 devices; else what is wrong. `tagsOf` finds a row's tags. */
function tenOfBatch(tag: string, rows: readonly unknown[], tagsOf: (row: unknown) => unknown, idOf: (row: unknown) => unknown): string | undefined {
  if (rows.length !== BATCH_SIZE) return `${rows.length} rows for batch ${tag}, not ${BATCH_SIZE}`;
  const wrong = rows.find((row) => (tagsOf(row) as { batch?: unknown } | undefined)?.batch !== tag);
  if (wrong !== undefined) return `a row outside batch ${tag}: ${JSON.stringify(wrong).slice(0, 300)}`;
  const ids = new Set(rows.map(idOf));
  if (ids.size !== BATCH_SIZE) return `batch ${tag}: ${ids.size} distinct devices among ${BATCH_SIZE} rows`;
  return undefined;
}

/** A REST answer (the body of `POST /devices/query`): a JSON array of 10 twins. */
export function restTenProblem(tag: string | undefined, body: string): string | undefined {
  if (tag === undefined) return 'the request names no batch';
  let twins: unknown;
  try {
    twins = JSON.parse(body);
  } catch {
    return `not JSON: ${body.slice(0, 300)}`;
  }
  if (!Array.isArray(twins)) return `not a JSON array: ${body.slice(0, 300)}`;
  return tenOfBatch(tag, twins, (t) => (t as { tags?: unknown }).tags, (t) => (t as { deviceId?: unknown }).deviceId);
}

export function handTenProblem(tag: string, rows: readonly HandRow[]): string | undefined {
  return tenOfBatch(tag, rows, (r) => (r as HandRow).tags, (r) => (r as HandRow).device_id);
}

export function storeTenProblem(tag: string, page: QueryPage): string | undefined {
  if (page.kind !== 'identities') return `a page of ${page.kind}, not identities`;
  return tenOfBatch(tag, page.rows, (r) => (r as (typeof page.rows)[number]).twin.tags, (r) => (r as (typeof page.rows)[number]).deviceId);
}

/** Throws unless `problem` is undefined. */
export function must(what: string, problem: string | undefined): void {
  if (problem !== undefined) throw new Error(`${what}: ${problem}`);
}

/**
 * Undefined when the REST GROUP BY rows (`[{v, n}, …]`) hold exactly the hand-written SQL's groups and counts
 * (values compared as JSON text).
 */
export function groupsProblem(rows: readonly unknown[], expected: ReadonlyMap<string, number>): string | undefined {
  const got = new Map<string, number>();
  for (const row of rows) {
    const { v, n } = (row ?? {}) as { v?: unknown; n?: unknown };
    if (typeof n !== 'number') return `a group without a count n: ${JSON.stringify(row)}`;
    got.set(JSON.stringify(v), n);
  }
  return sameGroups(got, expected);
}

export function sameGroups(got: ReadonlyMap<string, number>, expected: ReadonlyMap<string, number>): string | undefined {
  if (got.size !== expected.size) return `${got.size} groups, expected ${expected.size}`;
  for (const [v, n] of expected) {
    if (got.get(v) !== n) return `group ${v}: ${String(got.get(v))} devices, expected ${n}`;
  }
  return undefined;
}
