import assert from 'node:assert/strict';
import { identityRecord } from './contract.js';
import type { IdentityRecord, JsonObject, Store } from './index.js';
import type {
  ArithmeticOp, CompareOp, IdentityQueryColumn, JobQueryColumn, QueryCollection, QueryDocument, QueryExpr, QueryFunction,
  QueryPage, QueryPageOptions, QueryPlan, ScalarValue,
} from './query.js';

/**
 * The registry the query contract runs on, and a small language to write plans in. 34 devices and 6 modules; each
 * group of devices carries the tags one family of cases reads, so each expected id list can be checked by eye:
 * - d01–d16 `tags.g = 'zoo'`, `tags.v` one of each JSON type (d06 has none);
 * - d17–d22 `tags.arr` (arrays and non-arrays) and `tags.loc` (nested objects);
 * - d23–d28 `tags.s`, strings differing in case and holding LIKE wildcards;
 * - d29–d30 keys with a dot and a quote; d31–d34 SQL-looking keys and values.
 */

/** Fixed times, so string comparisons on them are exact. */
export const T = {
  jan: '2026-01-01T00:00:00Z', feb: '2026-02-01T00:00:00Z', mar: '2026-03-01T00:00:00Z', apr: '2026-04-01T00:00:00Z',
  may: '2026-05-01T00:00:00Z',
} as const;

export const INJECTION = `'; DROP TABLE identities; --`;

const ZOO: readonly (ScalarValue | JsonObject | number[] | undefined)[] = [
  10, '10', true, false, null, undefined, { x: 10 }, [10], 0, 'abc', 5.5, -3, '', 'ABC', 10, 'abc',
];

const OTHER_TAGS: Readonly<Record<string, JsonObject>> = {
  d17: { arr: [1, 'two', true, null, [5]], loc: { city: 'paris', geo: { lat: 48.8 } } },
  d18: { arr: ['1'], loc: { city: 'Paris' } },
  d19: { arr: [], loc: 'paris' },
  d20: { arr: { 0: 1 }, loc: { city: null } },
  d21: { arr: 1, loc: { city: { name: 'paris' } } },
  d22: { arr: [1, 2] },
  d23: { s: 'Hello' }, d24: { s: 'hello world' }, d25: { s: 'HELLO' }, d26: { s: 'help' }, d27: { s: 'h%_llo' }, d28: { s: 'x' },
  d29: { 'a.b': 1, "it's": 'yes' },
  d30: { a: { b: 2 } },
  d31: { name: INJECTION, [INJECTION]: 'boom', $1: 'dollar', '?': 'question', 'say "hi"': 'quoted' },
  d32: { name: '"' }, d33: { name: '$1' }, d34: { name: '?' },
};

const REPORTED: Readonly<Record<string, JsonObject>> = {
  d01: { fw: '1.0', temp: 20, mode: 'eco' }, d02: { fw: '1.0', temp: 22, mode: 'boost' }, d03: { fw: '1.0', temp: 24 },
  d04: { fw: '2.0', temp: '25' }, d05: { fw: '2.0', temp: 30 }, d06: { fw: 2, temp: true }, d07: { fw: null }, d08: { fw: true },
};

const DESIRED: Readonly<Record<string, JsonObject>> = { d01: { mode: 'eco' }, d02: { mode: 'eco' }, d03: { mode: 'boost' } };

type Over = Parameters<typeof identityRecord>[2];

const COLUMNS: Readonly<Record<string, Over>> = {
  d01: { connectionState: 'Connected', connectionStateUpdatedTime: '2026-01-02T00:00:00Z', lastActivityTime: T.may, c2dCount: 3 },
  d02: { connectionState: 'Connected', lastActivityTime: T.apr, c2dCount: 1 },
  d03: { twin: { version: 7, desiredVersion: 4, reportedVersion: 5 } },
  d04: { iotEdge: true },
  d05: { status: 'disabled' },
  d09: { status: 'disabled', statusReason: 'maintenance', statusUpdatedTime: T.mar },
  d10: { iotEdge: true },
  d11: { connectionState: 'Connected' },
  d12: { authType: 'selfSigned', primaryKey: null, secondaryKey: null, primaryThumbprint: 'AAA', secondaryThumbprint: 'BBB' },
  d13: { authType: 'certificateAuthority', primaryKey: null, secondaryKey: null },
  d15: { modelId: 'dtmi:com:example:Thermostat;1' },
  d16: { etag: 'ZXRhZw==' },
};

export const DEVICE_IDS = Array.from({ length: 34 }, (_, i) => `d${String(i + 1).padStart(2, '0')}`);

function deviceTags(id: string, index: number): JsonObject {
  if (index >= ZOO.length) return OTHER_TAGS[id] ?? {};
  const v = ZOO[index];
  return v === undefined ? { g: 'zoo' } : { g: 'zoo', v };
}

export function seededDevices(): IdentityRecord[] {
  return DEVICE_IDS.map((id, i) => {
    const { twin, ...over } = COLUMNS[id] ?? {};
    return identityRecord(id, '', {
      ...over,
      twin: {
        ...twin, tags: deviceTags(id, i), reported: REPORTED[id] ?? {}, desired: DESIRED[id] ?? {},
        ...(id === 'd01' && { desiredMeta: { mode: { $lastUpdated: T.jan } }, reportedMeta: { fw: { $lastUpdated: T.feb } } }),
      },
    });
  });
}

export function seededModules(): IdentityRecord[] {
  const module = (deviceId: string, moduleId: string, tags: JsonObject, over: Over = {}): IdentityRecord =>
    identityRecord(deviceId, moduleId, { ...over, twin: { tags } });
  return [
    module('d01', 'm1', { v: 10, role: 'sensor' }),
    module('d01', 'm2', { role: 'Sensor' }),
    module('d02', 'mA', { role: 'sensor' }),
    module('d10', 'm1', { v: 'abc' }),
    module('d10', 'm2', {}, { status: 'disabled' }),
    module('d20', 'm1', { role: null }),
  ];
}

/** Two jobs and their device rows, as SQL both engines take (jsonb columns accept the JSON text literals). */
export const JOBS_SQL = `
  INSERT INTO jobs (job_id, job_type, status, query_condition, request, created_ms, start_ms, max_execution_seconds, updated_ms, rev)
  VALUES ('j1', 'scheduleDeviceMethod', 'running', '', '{}', 0, 0, 60, 0, 1),
         ('j2', 'scheduleUpdateTwin', 'running', '', '{}', 0, 0, 60, 0, 1);
  INSERT INTO job_devices (job_id, device_id, module_id, job_type, status, created_time, start_time, end_time, updated_time, outcome, error)
  VALUES ('j1', 'd01', '', 'scheduleDeviceMethod', 'completed', '${T.jan}', '2026-01-01T00:00:01Z', '2026-01-01T00:00:02Z',
            '2026-01-01T00:00:02Z', '{"deviceMethodResponse":{"status":200,"payload":{"ok":true}}}', NULL),
         ('j1', 'd02', '', 'scheduleDeviceMethod', 'failed', '${T.jan}', '2026-01-01T00:00:01Z', '2026-01-01T00:00:05Z',
            '2026-01-01T00:00:05Z', NULL, '{"code":"DeviceNotOnline","description":"offline"}'),
         ('j1', 'd03', '', 'scheduleDeviceMethod', 'running', '${T.jan}', '2026-01-01T00:00:01Z', NULL, '2026-01-01T00:00:01Z', NULL, NULL),
         ('j1', 'd04', '', 'scheduleDeviceMethod', 'pending', '${T.jan}', NULL, NULL, '${T.jan}', NULL, NULL),
         ('j2', 'd01', '', 'scheduleUpdateTwin', 'completed', '${T.feb}', '${T.feb}', '${T.feb}', '${T.feb}', NULL, NULL),
         ('j2', 'd05', '', 'scheduleUpdateTwin', 'pending', '${T.feb}', NULL, NULL, '${T.feb}', NULL, NULL),
         ('j2', 'd10', 'm1', 'scheduleUpdateTwin', 'pending', '${T.feb}', NULL, NULL, '${T.feb}', NULL, NULL);
`;

export async function seed(store: Store, exec: (sql: string) => Promise<void>): Promise<void> {
  const results = await store.identities.applyBatch([...seededDevices(), ...seededModules()].map((record) => ({ kind: 'insert', record })));
  assert.ok(results.every(Boolean), 'the seed registry was inserted whole');
  await exec(JOBS_SQL);
}

/**
 * Last-known telemetry (Corral's `telemetry.*`) of d01–d05 and two modules, seen at T.mar (d02 at T.apr):
 * `temp` a number (21.5, 30, 25), a string ('31') or missing; d05 has a device_state row without any field.
 */
export const TELEMETRY: Readonly<Record<string, JsonObject>> = {
  d01: { temp: 21.5, fw: '1.0', on: true, arr: [1, 'two'], pos: { x: 1 } },
  d02: { temp: 30, fw: '2.0', on: false },
  d03: { temp: '31', fw: null },
  d04: { temp: 25, s: 'Hello' },
  d05: {},
  'd01/m1': { temp: 5 },
  'd10/m1': { temp: 40 },
};

/** Writes TELEMETRY through the pipeline port, as the telemetry pipeline does. */
export async function seedTelemetry(store: Store): Promise<void> {
  await store.pipeline.mergeDeviceState(Object.entries(TELEMETRY).map(([id, values]) => {
    const [deviceId, moduleId = ''] = id.split('/');
    const timeMs = Date.parse(deviceId === 'd02' ? T.apr : T.mar);
    return {
      deviceId, moduleId, lastSeenMs: timeMs,
      values: Object.fromEntries(Object.entries(values).map(([field, value]) => [field, { value, timeMs }])),
    };
  }));
}

// --- plans as data, written compactly ---

type Operand = QueryExpr | ScalarValue;

const isExpr = (v: Operand): v is QueryExpr => typeof v === 'object' && v !== null;
const expr = (v: Operand): QueryExpr => (isExpr(v) ? v : { kind: 'literal', value: v });

export const lit = (value: ScalarValue | undefined): QueryExpr => ({ kind: 'literal', value });
export const doc = (document: QueryDocument, ...path: string[]): QueryExpr => ({ kind: 'field', field: { kind: 'document', document, path } });
export const tag = (...path: string[]): QueryExpr => doc('tags', ...path);
export const col = (column: IdentityQueryColumn): QueryExpr => ({ kind: 'field', field: { kind: 'column', column } });
export const jobCol = (column: JobQueryColumn): QueryExpr => ({ kind: 'field', field: { kind: 'jobColumn', column } });
export const cmp = (left: Operand, op: CompareOp, right: Operand): QueryExpr => ({ kind: 'compare', op, left: expr(left), right: expr(right) });
export const eq = (left: Operand, right: Operand): QueryExpr => cmp(left, '=', right);
export const arith = (left: Operand, op: ArithmeticOp, right: Operand): QueryExpr => ({ kind: 'arithmetic', op, left: expr(left), right: expr(right) });
export const and = (left: QueryExpr, right: QueryExpr): QueryExpr => ({ kind: 'and', left, right });
export const or = (left: QueryExpr, right: QueryExpr): QueryExpr => ({ kind: 'or', left, right });
export const not = (operand: QueryExpr): QueryExpr => ({ kind: 'not', operand });
export const isIn = (operand: QueryExpr, values: ScalarValue[]): QueryExpr => ({ kind: 'in', negated: false, operand, values });
export const nin = (operand: QueryExpr, values: ScalarValue[]): QueryExpr => ({ kind: 'in', negated: true, operand, values });
export const call = (fn: QueryFunction, ...args: Operand[]): QueryExpr => ({ kind: 'call', fn, args: args.map(expr) });

export const rows = (where?: QueryExpr, collection: QueryCollection = 'devices'): QueryPlan =>
  ({ collection, select: { kind: 'all' }, ...(where && { where }) });

/** A page's rows as ids: `d01`, `d01/m1`, or `j1:d01` for devices.jobs. */
export function idsOf(page: QueryPage): string[] {
  switch (page.kind) {
    case 'identities': return page.rows.map((r) => (r.moduleId ? `${r.deviceId}/${r.moduleId}` : r.deviceId));
    case 'jobs': return page.rows.map((r) => `${r.jobId}:${r.deviceId}${r.moduleId ? `/${r.moduleId}` : ''}`);
    case 'values': return page.rows.map((r) => JSON.stringify(r));
  }
}

/** Every page of `plan`, `limit` rows at a time; asserts each page but the last is full and the last has no `after`. */
export async function allPages(store: Store, plan: QueryPlan, limit: number): Promise<QueryPage[]> {
  const pages: QueryPage[] = [];
  let options: QueryPageOptions = { limit };
  for (;;) {
    const page = await store.query.run(plan, options);
    pages.push(page);
    if (page.after === undefined) return pages;
    assert.equal(page.rows.length, limit, 'a page with `after` is full');
    assert.ok(pages.length <= 100, 'paging ends');
    options = { limit, after: page.after };
  }
}

/** The ids of every row of `plan`, read in pages of `limit`. */
export async function allIds(store: Store, plan: QueryPlan, limit = 1000): Promise<string[]> {
  return (await allPages(store, plan, limit)).flatMap(idsOf);
}
