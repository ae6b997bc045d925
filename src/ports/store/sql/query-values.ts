import {
  IDENTITY_QUERY_COLUMNS, JOB_QUERY_COLUMNS,
  type ArithmeticOp, type FieldRef, type QueryCollection, type ScalarValue,
} from '../query.js';
import {
  DOCUMENT_COLUMNS, FALSE, JSON_TYPES, TRUE, checkSegment, sqlAnd,
  type DocPath, type JsonType, type QueryDialect, type QueryParams, type ScalarType,
} from './query-dialect.js';

/**
 * What the compiler knows of an expression's value in a row: the JSON types it may have, a test for each, and its
 * native SQL value. A value with none of its types is IoT Hub's `undefined`. Everything static (a column's type, a
 * literal's) is folded here, so only document paths and what is computed from them cost a test at run time.
 */
export interface Val {
  /** The types it may have; empty: always undefined. */
  readonly types: readonly JsonType[];
  /** SQL true exactly when the value has one of `types` (false or NULL otherwise). */
  is(types: readonly JsonType[]): string;
  /** Its native value where it has `type`: arrays and objects as JSON text. */
  sql(type: JsonType): string;
  /** Set for a path in a JSON document, whose dialect forms match declared indexes. */
  readonly doc?: DocPath;
  /** Set for a scalar literal. */
  readonly literal?: { readonly value: ScalarValue };
}

/** The compilation of one statement. */
export interface QueryContext {
  readonly dialect: QueryDialect;
  readonly params: QueryParams;
  readonly collection: QueryCollection;
  /**
   * How `telemetry.*` reads device_state: from the row the statement joins (query-sources.ts), or, in a fragment
   * over `identities` alone (compileDeviceCondition), through a subquery on the identities row's key.
   */
  readonly telemetry: 'joined' | 'subquery';
}

/** device_state's column for each telemetry document. */
const TELEMETRY_COLUMNS = { telemetry: 'values_doc', telemetryMeta: 'meta_doc' } as const;

/** The columns a joined device_state row's documents have in a statement (query-sources.ts joins them). */
export const TELEMETRY_JOINED_COLUMNS = { telemetry: 'telemetry_values', telemetryMeta: 'telemetry_meta' } as const;

function telemetryColumn(ctx: QueryContext, document: 'telemetry' | 'telemetryMeta'): string {
  if (ctx.telemetry === 'joined') return TELEMETRY_JOINED_COLUMNS[document];
  return `(SELECT ${TELEMETRY_COLUMNS[document]} FROM device_state WHERE device_state.device_id = identities.device_id `
    + 'AND device_state.module_id = identities.module_id)';
}

const UNDEFINED_VAL: Val = { types: [], is: () => FALSE, sql: () => 'NULL' };

/** A value of one type, known without reading the row. */
export function staticVal(type: JsonType, sql: string): Val {
  return { types: [type], is: (types) => (types.includes(type) ? TRUE : FALSE), sql: () => sql };
}

export function scalarType(value: ScalarValue): ScalarType {
  if (value === null) return 'null';
  return typeof value as 'boolean' | 'number' | 'string';
}

/** A literal, bound as a parameter (IoT Hub's `undefined` is the undefined value). */
export function literalVal(ctx: QueryContext, value: ScalarValue | undefined): Val {
  if (value === undefined) return UNDEFINED_VAL;
  const sql = value === null ? 'NULL' : ctx.dialect.bindScalar(ctx.params, value);
  return { ...staticVal(scalarType(value), sql), literal: { value } };
}

const IDENTITY_COLUMN_NAMES: Readonly<Record<keyof typeof IDENTITY_QUERY_COLUMNS, string>> = {
  deviceId: 'device_id', moduleId: 'module_id', status: 'status', statusReason: 'status_reason',
  statusUpdateTime: 'status_updated_time', connectionState: 'connection_state',
  connectionStateUpdatedTime: 'connection_state_updated_time', lastActivityTime: 'last_activity_time',
  authenticationType: 'auth_type', modelId: 'model_id', deviceEtag: 'etag', cloudToDeviceMessageCount: 'c2d_count',
  version: 'twin_version', desiredVersion: 'desired_version', reportedVersion: 'reported_version', iotEdge: 'iot_edge',
  primaryThumbprint: 'primary_thumbprint', secondaryThumbprint: 'secondary_thumbprint',
};

const JOB_COLUMN_NAMES: Readonly<Record<keyof typeof JOB_QUERY_COLUMNS, string>> = {
  deviceId: 'device_id', jobId: 'job_id', jobType: 'job_type', status: 'status', createdDateTimeUtc: 'created_time',
  startTimeUtc: 'start_time', endTimeUtc: 'end_time', lastUpdatedDateTimeUtc: 'updated_time',
};

/** A field of the collection's row. Job fields exist only in `jobs`, twin fields only in `devices` and `modules`. */
export function fieldVal(ctx: QueryContext, field: FieldRef): Val {
  const isJobs = ctx.collection === 'jobs';
  switch (field.kind) {
    case 'document': {
      if (isJobs) throw new Error(`devices.jobs rows have no ${field.document} document`);
      const { document } = field;
      const column = document === 'telemetry' || document === 'telemetryMeta' ? telemetryColumn(ctx, document) : DOCUMENT_COLUMNS[document];
      return docVal(ctx.dialect, { column, path: field.path.map(checkSegment) });
    }
    case 'column': {
      if (isJobs) throw new Error(`devices.jobs rows have no twin column ${field.column}`);
      const { type, nullable } = IDENTITY_QUERY_COLUMNS[field.column];
      return columnVal(ctx.dialect, IDENTITY_COLUMN_NAMES[field.column], type, nullable);
    }
    case 'jobColumn': {
      if (!isJobs) throw new Error(`${ctx.collection} rows have no job column ${field.column}`);
      const { type, nullable } = JOB_QUERY_COLUMNS[field.column];
      return columnVal(ctx.dialect, JOB_COLUMN_NAMES[field.column], type, nullable);
    }
  }
}

/** A column; NULL in a nullable column is JSON null (the twin shows `"statusReason": null`). */
function columnVal(dialect: QueryDialect, column: string, type: 'string' | 'number' | 'boolean', nullable: boolean): Val {
  // iot_edge is a 0/1 integer column holding a boolean.
  const sql = type === 'boolean' ? dialect.intColumnToBool(column) : type === 'number' ? dialect.numberColumn(column) : column;
  if (!nullable) return staticVal(type, sql);
  return {
    types: [type, 'null'],
    is: (types) => {
      const value = types.includes(type);
      if (value && types.includes('null')) return TRUE;
      if (value) return `${column} IS NOT NULL`;
      return types.includes('null') ? `${column} IS NULL` : FALSE;
    },
    sql: (t) => (t === 'null' ? 'NULL' : sql),
  };
}

function docVal(dialect: QueryDialect, doc: DocPath): Val {
  return {
    types: JSON_TYPES,
    is: (types) => (types.length === 0 ? FALSE : dialect.docTypeIn(doc, types)),
    sql: (type) => (type === 'null' ? 'NULL' : dialect.docValue(doc, type)),
    doc,
  };
}

/** `+ - * / %` on two numbers; undefined for anything else and for a division by zero. */
export function arithmeticVal(ctx: QueryContext, op: ArithmeticOp, left: Val, right: Val): Val {
  if (!left.types.includes('number') || !right.types.includes('number')) return UNDEFINED_VAL;
  const l = left.sql('number');
  const r = right.sql('number');
  const defined = sqlAnd([left.is(['number']), right.is(['number']), op === '/' || op === '%' ? nonZero(right, r) : TRUE]);
  return derivedVal('number', defined, ctx.dialect.arithmetic(op, l, r));
}

/** A divisor is defined when not zero; a literal one is known now. */
function nonZero(divisor: Val, sql: string): string {
  if (divisor.literal) return divisor.literal.value === 0 ? FALSE : TRUE;
  return `${sql} <> 0`;
}

/** LOWER, UPPER (string → string) and LENGTH (string → number); undefined unless given a string. */
export function stringFunctionVal(ctx: QueryContext, fn: 'LOWER' | 'UPPER' | 'LENGTH', arg: Val): Val {
  if (!arg.types.includes('string')) return UNDEFINED_VAL;
  const text = arg.sql('string');
  const d = ctx.dialect;
  const defined = arg.is(['string']);
  if (fn === 'LENGTH') return derivedVal('number', defined, d.length(text));
  return derivedVal('string', defined, fn === 'LOWER' ? d.lower(text) : d.upper(text));
}

/** A value of one type where `defined` holds, undefined elsewhere. */
export function derivedVal(type: JsonType, defined: string, sql: string): Val {
  if (defined === TRUE) return staticVal(type, sql);
  if (defined === FALSE) return UNDEFINED_VAL;
  return { types: [type], is: (types) => (types.includes(type) ? defined : FALSE), sql: () => sql };
}
