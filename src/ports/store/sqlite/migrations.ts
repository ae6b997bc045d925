const IDENTITY_COLUMNS_DDL = `
        device_id TEXT NOT NULL,
        module_id TEXT NOT NULL DEFAULT '',
        generation_id TEXT NOT NULL,
        etag TEXT NOT NULL,
        status TEXT NOT NULL,
        status_reason TEXT,
        status_updated_time TEXT NOT NULL,
        auth_type TEXT NOT NULL,
        primary_key TEXT,
        secondary_key TEXT,
        primary_thumbprint TEXT,
        secondary_thumbprint TEXT,
        iot_edge INTEGER NOT NULL DEFAULT 0,
        device_scope TEXT,
        parent_scopes TEXT NOT NULL DEFAULT '[]',
        managed_by TEXT,
        model_id TEXT NOT NULL DEFAULT '',
        connection_state TEXT NOT NULL,
        connection_state_updated_time TEXT NOT NULL,
        last_activity_time TEXT NOT NULL,
        c2d_count INTEGER NOT NULL DEFAULT 0,
        tags TEXT NOT NULL DEFAULT '{}',
        desired TEXT NOT NULL DEFAULT '{}',
        reported TEXT NOT NULL DEFAULT '{}',
        desired_meta TEXT NOT NULL DEFAULT '{}',
        reported_meta TEXT NOT NULL DEFAULT '{}',
        desired_version INTEGER NOT NULL,
        reported_version INTEGER NOT NULL,
        twin_version INTEGER NOT NULL,
        rev INTEGER NOT NULL,
`;

/** Versioned schema for SQLite; append only: a shipped migration never changes. */
export const SQLITE_MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE identities (
${IDENTITY_COLUMNS_DDL}        PRIMARY KEY (device_id, module_id)
      );
      CREATE INDEX identities_status ON identities (status) WHERE module_id = '';
      CREATE INDEX identities_connected ON identities (connection_state) WHERE module_id = '';
      CREATE TABLE policies (
        name TEXT PRIMARY KEY,
        rights TEXT NOT NULL,
        primary_key TEXT NOT NULL,
        secondary_key TEXT NOT NULL
      );
      CREATE TABLE import_staging (
        import_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        op TEXT NOT NULL,
${IDENTITY_COLUMNS_DDL}        PRIMARY KEY (import_id, seq)
      );
    `,
  },
  {
    // Imports stage into per-import TEMP tables now (no WAL, no sync); the shared staging table is unused.
    version: 2,
    sql: 'DROP TABLE import_staging;',
  },
  {
    // The C2D inbox (a device's or module's messages go with it) and the feedback the service reads.
    version: 3,
    sql: `
      CREATE TABLE c2d_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL,
        module_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        correlation_id TEXT,
        user_id TEXT,
        content_type TEXT,
        content_encoding TEXT,
        ack TEXT NOT NULL,
        properties TEXT NOT NULL,
        body BLOB NOT NULL,
        generation_id TEXT NOT NULL,
        enqueued_ms INTEGER NOT NULL,
        expiry_ms INTEGER NOT NULL,
        feedback_on TEXT NOT NULL,
        state TEXT NOT NULL,
        delivery_count INTEGER NOT NULL,
        lock_token TEXT,
        lock_until_ms INTEGER,
        updated_ms INTEGER NOT NULL,
        FOREIGN KEY (device_id, module_id) REFERENCES identities (device_id, module_id) ON DELETE CASCADE
      );
      CREATE INDEX c2d_messages_inbox ON c2d_messages (device_id, module_id, state, seq);
      CREATE INDEX c2d_messages_pending_expiry ON c2d_messages (expiry_ms) WHERE state IN ('enqueued', 'locked');
      CREATE INDEX c2d_messages_pending_deliveries ON c2d_messages (delivery_count) WHERE state IN ('enqueued', 'locked');
      CREATE INDEX c2d_messages_finished ON c2d_messages (updated_ms) WHERE state NOT IN ('enqueued', 'locked');
      CREATE TABLE c2d_feedback (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        original_message_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        module_id TEXT NOT NULL,
        device_generation_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        outcome_ms INTEGER NOT NULL,
        lock_token TEXT,
        lock_until_ms INTEGER
      );
      CREATE INDEX c2d_feedback_lock ON c2d_feedback (lock_token);
      CREATE INDEX c2d_feedback_age ON c2d_feedback (outcome_ms);
    `,
  },
  {
    // CA certificates for X.509 device authentication; chains look their issuer up by subject. Times are ms.
    version: 4,
    sql: `
      CREATE TABLE ca_certificates (
        name TEXT PRIMARY KEY,
        pem TEXT NOT NULL,
        thumbprint TEXT NOT NULL,
        subject TEXT NOT NULL,
        is_verified INTEGER NOT NULL,
        verification_code TEXT,
        verification_code_issued_ms INTEGER,
        etag TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        rev INTEGER NOT NULL
      );
      CREATE INDEX ca_certificates_subject ON ca_certificates (subject);
    `,
  },
  {
    // Subscriptions of clean-session-0 MQTT clients, by clientId (JSON array).
    version: 5,
    sql: `CREATE TABLE mqtt_sessions (client_id TEXT PRIMARY KEY, subscriptions TEXT NOT NULL, updated_ms INTEGER NOT NULL);`,
  },
  {
    // Jobs v2 and each device's part in them (devices.jobs); declared query indexes (Corral). Times: *_ms are epoch
    // ms, *_time ISO 8601 (what devices.jobs queries compare). Leases let several workers share a job's devices.
    version: 6,
    sql: `
      CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        job_type TEXT NOT NULL,
        status TEXT NOT NULL,
        query_condition TEXT NOT NULL,
        request TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        max_execution_seconds INTEGER NOT NULL,
        devices_per_second REAL,
        failure_reason TEXT,
        status_message TEXT,
        expand_after TEXT,
        claimed_count INTEGER NOT NULL DEFAULT 0,
        statistics TEXT,
        lease_owner TEXT,
        lease_until_ms INTEGER,
        updated_ms INTEGER NOT NULL,
        rev INTEGER NOT NULL
      );
      CREATE INDEX jobs_due ON jobs (status, start_ms);
      CREATE INDEX jobs_created ON jobs (created_ms);
      CREATE TABLE job_devices (
        job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        module_id TEXT NOT NULL DEFAULT '',
        job_type TEXT NOT NULL,
        status TEXT NOT NULL,
        created_time TEXT NOT NULL,
        start_time TEXT,
        end_time TEXT,
        updated_time TEXT NOT NULL,
        outcome TEXT,
        error TEXT,
        lease_owner TEXT,
        lease_until_ms INTEGER,
        PRIMARY KEY (job_id, device_id, module_id)
      );
      CREATE INDEX job_devices_work ON job_devices (job_id, status);
      CREATE INDEX job_devices_device ON job_devices (device_id, job_id, module_id);
      CREATE TABLE query_indexes (
        document TEXT NOT NULL,
        path TEXT NOT NULL,
        created_time TEXT NOT NULL,
        PRIMARY KEY (document, path)
      );
    `,
  },  {
    // The telemetry pipeline (Corral): settings as named JSON documents with a version counter nodes poll, EventLog
    // checkpoints, leases sharing work between nodes, each identity's last-known values and health, and alerts; the
    // partial unique index lets only one alert per rule and identity be open, across nodes. Times are epoch ms.
    // device_state.values_doc {field: value} and meta_doc {field: {$lastUpdated}} are read by fleet-query SQL.
    version: 7,
    sql: `
      CREATE TABLE pipeline_settings (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        doc TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        rev INTEGER NOT NULL,
        PRIMARY KEY (kind, name)
      );
      CREATE TABLE pipeline_settings_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
      );
      INSERT INTO pipeline_settings_version (id, version) VALUES (1, 0);
      CREATE TABLE pipeline_checkpoints (
        consumer TEXT NOT NULL,
        partition TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (consumer, partition)
      );
      CREATE TABLE pipeline_leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        until_ms INTEGER NOT NULL
      );
      CREATE TABLE device_state (
        device_id TEXT NOT NULL,
        module_id TEXT NOT NULL DEFAULT '',
        values_doc TEXT NOT NULL DEFAULT '{}',
        meta_doc TEXT NOT NULL DEFAULT '{}',
        last_seen_ms INTEGER NOT NULL DEFAULT 0,
        health TEXT,
        health_changed_ms INTEGER,
        PRIMARY KEY (device_id, module_id)
      );
      CREATE INDEX device_state_health ON device_state (health) WHERE health IS NOT NULL AND module_id = '';
      CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        rule_name TEXT NOT NULL,
        device_id TEXT NOT NULL,
        module_id TEXT NOT NULL DEFAULT '',
        severity TEXT NOT NULL,
        status TEXT NOT NULL,
        details TEXT NOT NULL,
        raised_ms INTEGER NOT NULL,
        acknowledged_ms INTEGER,
        acknowledged_by TEXT,
        cleared_ms INTEGER,
        updated_ms INTEGER NOT NULL,
        rev INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX alerts_open ON alerts (rule_name, device_id, module_id) WHERE status IN ('raised', 'acknowledged');
      CREATE INDEX alerts_raised ON alerts (raised_ms DESC, id DESC);
      CREATE INDEX alerts_device ON alerts (device_id, raised_ms DESC, id DESC);
    `,
  },
];
