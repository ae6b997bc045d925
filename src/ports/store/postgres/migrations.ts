/**
 * The identity columns. Keys are COLLATE "C" so ordering and keyset paging are bytewise, as in SQLite; JSON is
 * jsonb; numbers are integer so pg hands back JS numbers. `required` adds NOT NULL and the defaults.
 */
function identityColumnsDdl(required: boolean): string {
  const nn = (ddl: string): string => (required ? `${ddl} NOT NULL` : ddl);
  const df = (ddl: string, value: string): string => (required ? `${ddl} NOT NULL DEFAULT ${value}` : ddl);
  return `
        device_id text COLLATE "C" NOT NULL,
        module_id text COLLATE "C" NOT NULL DEFAULT '',
        generation_id ${nn('text')},
        etag ${nn('text')},
        status ${nn('text')},
        status_reason text,
        status_updated_time ${nn('text')},
        auth_type ${nn('text')},
        primary_key text,
        secondary_key text,
        primary_thumbprint text,
        secondary_thumbprint text,
        iot_edge ${df('smallint', '0')},
        device_scope text,
        parent_scopes ${df('jsonb', `'[]'`)},
        managed_by text,
        model_id ${df('text', `''`)},
        connection_state ${nn('text')},
        connection_state_updated_time ${nn('text')},
        last_activity_time ${nn('text')},
        c2d_count ${df('integer', '0')},
        tags ${df('jsonb', `'{}'`)},
        desired ${df('jsonb', `'{}'`)},
        reported ${df('jsonb', `'{}'`)},
        desired_meta ${df('jsonb', `'{}'`)},
        reported_meta ${df('jsonb', `'{}'`)},
        desired_version ${nn('integer')},
        reported_version ${nn('integer')},
        twin_version ${nn('integer')},
        rev ${nn('integer')},
`;
}

/**
 * Versioned schema for PostgreSQL, the same tables as SQLite's; append only: a shipped migration never changes.
 * Staging rows of a delete carry only their key, so the staging table's other columns take NULL.
 */
export const POSTGRES_MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE identities (
${identityColumnsDdl(true)}        PRIMARY KEY (device_id, module_id)
      );
      CREATE INDEX identities_status ON identities (status) WHERE module_id = '';
      CREATE INDEX identities_connected ON identities (connection_state) WHERE module_id = '';
      CREATE TABLE policies (
        name text COLLATE "C" PRIMARY KEY,
        rights jsonb NOT NULL,
        primary_key text NOT NULL,
        secondary_key text NOT NULL
      );
      CREATE TABLE import_staging (
        import_id text NOT NULL,
        seq integer NOT NULL,
        op text NOT NULL,
${identityColumnsDdl(false)}        PRIMARY KEY (import_id, seq)
      );
    `,
  },
];
