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
  {
    // The C2D inbox (a device's or module's messages go with it) and the feedback the service reads. Times are ms.
    version: 2,
    sql: `
      CREATE TABLE c2d_messages (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        device_id text COLLATE "C" NOT NULL,
        module_id text COLLATE "C" NOT NULL,
        message_id text NOT NULL,
        correlation_id text,
        user_id text,
        content_type text,
        content_encoding text,
        ack text NOT NULL,
        properties text NOT NULL,
        body bytea NOT NULL,
        generation_id text NOT NULL,
        enqueued_ms bigint NOT NULL,
        expiry_ms bigint NOT NULL,
        feedback_on text NOT NULL,
        state text NOT NULL,
        delivery_count integer NOT NULL,
        lock_token text,
        lock_until_ms bigint,
        updated_ms bigint NOT NULL,
        FOREIGN KEY (device_id, module_id) REFERENCES identities (device_id, module_id) ON DELETE CASCADE
      );
      CREATE INDEX c2d_messages_inbox ON c2d_messages (device_id, module_id, state, seq);
      CREATE INDEX c2d_messages_pending_expiry ON c2d_messages (expiry_ms) WHERE state IN ('enqueued', 'locked');
      CREATE INDEX c2d_messages_pending_deliveries ON c2d_messages (delivery_count) WHERE state IN ('enqueued', 'locked');
      CREATE INDEX c2d_messages_finished ON c2d_messages (updated_ms) WHERE state NOT IN ('enqueued', 'locked');
      CREATE TABLE c2d_feedback (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        original_message_id text NOT NULL,
        device_id text COLLATE "C" NOT NULL,
        module_id text COLLATE "C" NOT NULL,
        device_generation_id text NOT NULL,
        outcome text NOT NULL,
        outcome_ms bigint NOT NULL,
        lock_token text,
        lock_until_ms bigint
      );
      CREATE INDEX c2d_feedback_lock ON c2d_feedback (lock_token);
      CREATE INDEX c2d_feedback_age ON c2d_feedback (outcome_ms);
    `,
  },
  {
    // CA certificates for X.509 device authentication; chains look their issuer up by subject. Times are ms.
    version: 3,
    sql: `
      CREATE TABLE ca_certificates (
        name text COLLATE "C" PRIMARY KEY,
        pem text NOT NULL,
        thumbprint text NOT NULL,
        subject text NOT NULL,
        is_verified boolean NOT NULL,
        verification_code text,
        verification_code_issued_ms bigint,
        etag text NOT NULL,
        created_ms bigint NOT NULL,
        updated_ms bigint NOT NULL,
        rev integer NOT NULL
      );
      CREATE INDEX ca_certificates_subject ON ca_certificates (subject);
    `,
  },
  {
    // Subscriptions of clean-session-0 MQTT clients, by clientId: shared, so a reconnect to another node finds them.
    version: 4,
    sql: `CREATE TABLE mqtt_sessions (client_id text COLLATE "C" PRIMARY KEY, subscriptions jsonb NOT NULL, updated_ms bigint NOT NULL);`,
  },
  {
    // Jobs v2 and each device's part in them (devices.jobs); declared query indexes (Corral). Times: *_ms are epoch
    // ms, *_time ISO 8601 (what devices.jobs queries compare). Leases (FOR UPDATE SKIP LOCKED) share a job's devices.
    version: 5,
    sql: `
      CREATE TABLE jobs (
        job_id text COLLATE "C" PRIMARY KEY,
        job_type text NOT NULL,
        status text NOT NULL,
        query_condition text NOT NULL,
        request jsonb NOT NULL,
        created_ms bigint NOT NULL,
        start_ms bigint NOT NULL,
        end_ms bigint,
        max_execution_seconds integer NOT NULL,
        devices_per_second double precision,
        failure_reason text,
        status_message text,
        expand_after text COLLATE "C",
        claimed_count bigint NOT NULL DEFAULT 0,
        statistics jsonb,
        lease_owner text,
        lease_until_ms bigint,
        updated_ms bigint NOT NULL,
        rev integer NOT NULL
      );
      CREATE INDEX jobs_due ON jobs (status, start_ms);
      CREATE INDEX jobs_created ON jobs (created_ms);
      CREATE TABLE job_devices (
        job_id text COLLATE "C" NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        device_id text COLLATE "C" NOT NULL,
        module_id text COLLATE "C" NOT NULL DEFAULT '',
        job_type text NOT NULL,
        status text NOT NULL,
        created_time text NOT NULL,
        start_time text,
        end_time text,
        updated_time text NOT NULL,
        outcome jsonb,
        error jsonb,
        lease_owner text,
        lease_until_ms bigint,
        PRIMARY KEY (job_id, device_id, module_id)
      );
      CREATE INDEX job_devices_work ON job_devices (job_id, status);
      CREATE INDEX job_devices_device ON job_devices (device_id, job_id, module_id);
      CREATE TABLE query_indexes (
        document text NOT NULL,
        path jsonb NOT NULL,
        created_time text NOT NULL,
        PRIMARY KEY (document, path)
      );
    `,
  },  {
    // The telemetry pipeline (Corral): settings as named JSON documents with a version counter nodes poll, EventLog
    // checkpoints, leases sharing work between nodes, each identity's last-known values and health, and alerts; the
    // partial unique index lets only one alert per rule and identity be open, across nodes. Times are epoch ms.
    // device_state.values_doc {field: value} and meta_doc {field: {$lastUpdated}} are read by fleet-query SQL.
    version: 6,
    sql: `
      CREATE TABLE pipeline_settings (
        kind text NOT NULL,
        name text COLLATE "C" NOT NULL,
        doc jsonb NOT NULL,
        created_ms bigint NOT NULL,
        updated_ms bigint NOT NULL,
        rev integer NOT NULL,
        PRIMARY KEY (kind, name)
      );
      CREATE TABLE pipeline_settings_version (
        id integer PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL
      );
      INSERT INTO pipeline_settings_version (id, version) VALUES (1, 0);
      CREATE TABLE pipeline_checkpoints (
        consumer text COLLATE "C" NOT NULL,
        partition text COLLATE "C" NOT NULL,
        sequence bigint NOT NULL,
        updated_ms bigint NOT NULL,
        PRIMARY KEY (consumer, partition)
      );
      CREATE TABLE pipeline_leases (
        name text COLLATE "C" PRIMARY KEY,
        owner text NOT NULL,
        until_ms bigint NOT NULL
      );
      CREATE TABLE device_state (
        device_id text COLLATE "C" NOT NULL,
        module_id text COLLATE "C" NOT NULL DEFAULT '',
        values_doc jsonb NOT NULL DEFAULT '{}',
        meta_doc jsonb NOT NULL DEFAULT '{}',
        last_seen_ms bigint NOT NULL DEFAULT 0,
        health text,
        health_changed_ms bigint,
        PRIMARY KEY (device_id, module_id)
      );
      CREATE INDEX device_state_health ON device_state (health) WHERE health IS NOT NULL AND module_id = '';
      CREATE TABLE alerts (
        id text COLLATE "C" PRIMARY KEY,
        rule_name text COLLATE "C" NOT NULL,
        device_id text COLLATE "C" NOT NULL,
        module_id text COLLATE "C" NOT NULL DEFAULT '',
        severity text NOT NULL,
        status text NOT NULL,
        details jsonb NOT NULL,
        raised_ms bigint NOT NULL,
        acknowledged_ms bigint,
        acknowledged_by text,
        cleared_ms bigint,
        updated_ms bigint NOT NULL,
        rev integer NOT NULL
      );
      CREATE UNIQUE INDEX alerts_open ON alerts (rule_name, device_id, module_id) WHERE status IN ('raised', 'acknowledged');
      CREATE INDEX alerts_raised ON alerts (raised_ms DESC, id DESC);
      CREATE INDEX alerts_device ON alerts (device_id, raised_ms DESC, id DESC);
    `,
  },
];
