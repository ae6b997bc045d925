import type { IdentityRecord, JsonObject } from '../index.js';
import type { QueryCollection, QueryPage, QueryCursor, TelemetryDocs } from '../query.js';
import { TRUE } from './query-dialect.js';
import { TELEMETRY_JOINED_COLUMNS } from './query-values.js';
import { IDENTITY_COLUMNS, identityFromRow, json } from './rows.js';
import { deviceJobFromRow } from './job-rows.js';

type Row = Record<string, unknown>;

/** The columns of `job_devices` a devices.jobs row reads. */
const JOB_DEVICE_COLUMNS = [
  'job_id', 'device_id', 'module_id', 'job_type', 'status', 'created_time', 'start_time', 'end_time', 'updated_time',
  'outcome', 'error',
] as const;

/** Where a collection's rows live and how one becomes a record. */
export interface QuerySource {
  readonly table: string;
  /** The condition that picks the collection's rows out of the table. */
  readonly filter: string;
  readonly columns: readonly string[];
  /** The columns that make a row unique, in the order that breaks ties after the plan's order keys. */
  readonly keys: readonly string[];
  page(rows: readonly Row[], after: QueryCursor | undefined): QueryPage;
}

const identities = (filter: string): QuerySource => ({
  table: 'identities',
  filter,
  columns: IDENTITY_COLUMNS,
  keys: ['device_id', 'module_id'],
  page: (rows, after) => ({ kind: 'identities', rows: rows.map(identityFromRow) as IdentityRecord[], ...(after && { after }) }),
});

/**
 * What a statement reading telemetry joins to `identities`: the row's device_state row, if any. The derived table
 * renames its columns, so the statement's unqualified identity columns (device_id, …) stay unambiguous and a plan
 * without telemetry compiles to the SQL it always did; both engines flatten it into a primary-key lookup.
 */
const TELEMETRY_JOIN = 'LEFT JOIN (SELECT device_id AS telemetry_device_id, module_id AS telemetry_module_id, '
  + `values_doc AS ${TELEMETRY_JOINED_COLUMNS.telemetry}, meta_doc AS ${TELEMETRY_JOINED_COLUMNS.telemetryMeta} FROM device_state) AS t `
  + 'ON telemetry_device_id = identities.device_id AND telemetry_module_id = identities.module_id';

function telemetryOf(row: Row): TelemetryDocs | null {
  const values = row[TELEMETRY_JOINED_COLUMNS.telemetry];
  if (values === null || values === undefined) return null;
  return { values: json<JsonObject>(values), meta: json<JsonObject>(row[TELEMETRY_JOINED_COLUMNS.telemetryMeta]) ?? {} };
}

/**
 * `devices` or `devices.modules` with each row's telemetry joined (Corral's extension); with `projected`, a page
 * also carries each row's telemetry documents, for a projection that reads them.
 */
export function withTelemetry(collection: 'devices' | 'modules', projected: boolean): QuerySource {
  const source = QUERY_SOURCES[collection];
  const table = `${source.table} ${TELEMETRY_JOIN}`;
  if (!projected) return { ...source, table };
  return {
    ...source,
    table,
    columns: [...source.columns, TELEMETRY_JOINED_COLUMNS.telemetry, TELEMETRY_JOINED_COLUMNS.telemetryMeta],
    page: (rows, after) => ({
      kind: 'identities', rows: rows.map(identityFromRow), telemetry: rows.map(telemetryOf), ...(after && { after }),
    }),
  };
}

export const QUERY_SOURCES: Readonly<Record<QueryCollection, QuerySource>> = {
  devices: identities(`module_id = ''`),
  modules: identities(`module_id <> ''`),
  jobs: {
    table: 'job_devices',
    filter: TRUE,
    columns: JOB_DEVICE_COLUMNS,
    keys: ['device_id', 'job_id', 'module_id'],
    page: (rows, after) => ({ kind: 'jobs', rows: rows.map(deviceJobFromRow), ...(after && { after }) }),
  },
};
