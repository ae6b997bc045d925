import { createHash } from 'node:crypto';
import { ArgumentInvalid } from '../errors/index.js';
import { deviceJobView } from '../jobs/view.js';
import { twinView } from '../twins/index.js';
import type { JsonObject, Store } from '../../ports/store/index.js';
import { QueryCursorInvalid, type FieldRef, type QueryCursor, type QueryPlan, type TelemetryDocs } from '../../ports/store/query.js';
import { parseQuery, projectRow } from './index.js';

/** IoT Hub's `x-ms-item-type`: whole twins, device-job rows, or anything else (projections, aggregates). */
export type QueryItemType = 'twin' | 'deviceJob' | 'raw';

export interface QueryResultPage {
  readonly items: readonly unknown[];
  readonly itemType: QueryItemType;
  /** The token for the next page; absent on the last page (the SDK loops while the header is there). */
  readonly continuation?: string;
}

/** What a continuation token carries: the query's fingerprint, the keyset position and what TOP still allows. */
interface Continuation {
  readonly q: string;
  readonly after: QueryCursor;
  readonly left?: number;
}

// The SDK documents page sizes up to 10,000 (registry.js createQuery) with 1000 when the caller gives none.
export const DEFAULT_PAGE_SIZE = 1000;
export const MAX_PAGE_SIZE = 10_000;

function fingerprint(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 16);
}

function encode(c: Continuation): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decode(token: string, text: string): Continuation {
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new ArgumentInvalid('x-ms-continuation is not a continuation token this hub issued');
  }
  const v = c as Partial<Continuation> | null;
  if (!v || typeof v !== 'object' || v.q !== fingerprint(text) || !Array.isArray(v.after)
    || (v.left !== undefined && (typeof v.left !== 'number' || !Number.isInteger(v.left) || v.left < 1))) {
    throw new ArgumentInvalid('x-ms-continuation does not belong to this query: send the token with the query text it came with');
  }
  return v as Continuation;
}

function itemTypeOf(plan: QueryPlan): QueryItemType {
  if (plan.select.kind !== 'all') return 'raw';
  return plan.collection === 'jobs' ? 'deviceJob' : 'twin';
}

/** Fleet queries: IoT Hub's query text run on the Store, a page at a time, always fresh (no index lag). */
export class FleetQueries {
  constructor(private readonly deps: { store: Store }) {}

  /**
   * Runs one page of `text`. `continuation` is the token the previous page gave; pages are keyset-paged, so rows
   * changed between pages are neither repeated nor skipped because others moved. Throws QuerySyntaxError or
   * ArgumentInvalid (400004) naming what is wrong.
   */
  async run(text: string, opts: { pageSize: number; continuation?: string }): Promise<QueryResultPage> {
    const plan = parseQuery(text);
    const from = opts.continuation ? decode(opts.continuation, text) : undefined;
    const left = from?.left ?? plan.top;
    const limit = Math.min(opts.pageSize, left ?? Number.MAX_SAFE_INTEGER);
    let page;
    try {
      page = await this.deps.store.query.run({ ...plan, top: undefined }, { limit, after: from?.after });
    } catch (err) {
      if (err instanceof QueryCursorInvalid) throw new ArgumentInvalid(err.message);
      throw err;
    }
    const items = this.itemsOf(plan, page);
    const stillLeft = left === undefined ? undefined : left - items.length;
    const more = page.after !== undefined && (stillLeft === undefined || stillLeft > 0);
    return {
      items, itemType: itemTypeOf(plan),
      continuation: more && page.after ? encode({ q: fingerprint(text), after: page.after, left: stillLeft }) : undefined,
    };
  }

  /** Declared indexes, as `{path, createdTime}` with the path in query syntax. */
  async listIndexes(): Promise<{ path: string; createdTime: string }[]> {
    return (await this.deps.store.query.listIndexes()).map((i) => ({ path: indexPathText(i.document, i.path), createdTime: i.createdTime }));
  }

  /** Declares an index on a twin path (idempotent); true when it was new. Building it may take a while on a big fleet. */
  async addIndex(pathText: string, nowIso: string): Promise<boolean> {
    const f = parseIndexPath(pathText);
    return this.deps.store.query.addIndex(f.document, f.path, nowIso);
  }

  /** Drops a declared index; false when there was none on that path. */
  async removeIndex(pathText: string): Promise<boolean> {
    const f = parseIndexPath(pathText);
    return this.deps.store.query.removeIndex(f.document, f.path);
  }

  private itemsOf(plan: QueryPlan, page: Awaited<ReturnType<Store['query']['run']>>): unknown[] {
    const project = (doc: unknown): unknown => (plan.select.kind === 'paths' ? projectRow(plan.select.items, doc) : doc);
    switch (page.kind) {
      case 'identities': {
        const telemetry = page.telemetry;
        // A projection of telemetry paths reads them beside the twin, as `telemetry.x` and `telemetry.$metadata.x`.
        if (telemetry) return page.rows.map((r, i) => project({ ...twinView(r), telemetry: telemetryView(telemetry[i]) }));
        return page.rows.map((r) => project(twinView(r)));
      }
      case 'jobs': return page.rows.map((r) => project(deviceJobView(r)));
      case 'values': return [...page.rows];
    }
  }
}

function telemetryView(docs: TelemetryDocs | null | undefined): JsonObject | undefined {
  return docs ? { ...docs.values, $metadata: docs.meta } : undefined;
}

/**
 * A path declared for indexing (`tags.site`, `properties.reported.fw`), resolved by the query language's own rules;
 * only paths inside tags and the property documents can be declared (columns have their own indexes).
 */
export function parseIndexPath(text: string): Extract<FieldRef, { kind: 'document' }> {
  if (typeof text !== 'string' || text.length === 0 || text.length > 512) throw new ArgumentInvalid('path must be a twin path such as tags.site');
  const plan = parseQuery(`SELECT COUNT() FROM devices GROUP BY ${text}`);
  const field = plan.groupBy?.length === 1 ? plan.groupBy[0] : undefined;
  const isTwin = field?.kind === 'document' && field.document !== 'telemetry' && field.document !== 'telemetryMeta';
  if (!field || field.kind !== 'document' || !isTwin || field.path.length === 0) {
    throw new ArgumentInvalid(`'${text}' cannot be indexed: give one path inside tags or properties.desired/reported, such as tags.site`);
  }
  return field;
}

/** The text form of a declared index's path, as `parseIndexPath` reads it. */
export function indexPathText(document: string, path: readonly string[]): string {
  const head = { tags: 'tags', desired: 'properties.desired', reported: 'properties.reported', desiredMeta: 'properties.desired.$metadata', reportedMeta: 'properties.reported.$metadata' }[document] ?? document;
  return [head, ...path.map((s) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s) ? s : `['${s}']`))].join('.').replace(/\.\[/g, '[');
}

