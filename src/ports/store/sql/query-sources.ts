import type { IdentityRecord, JsonObject } from '../index.js';
import type { DeviceJobRecord, QueryCollection, QueryPage, QueryCursor } from '../query.js';
import { TRUE } from './query-dialect.js';
import { IDENTITY_COLUMNS, identityFromRow } from './rows.js';
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
