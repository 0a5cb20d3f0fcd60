//! The hub's tables in PostgreSQL, their migrations and the statements over them.
//!
//! Everything lives in one schema (the URL's `schema=`), so hubs share a database without
//! sharing tables. `schema_version` records which layout the tables have; a host migrates
//! an older one under an advisory lock (so hosts starting together migrate once) and
//! refuses a newer one.

use crate::StoreError;

/// The layout this host writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// How many partitions a new hub is split into. Fixed for the hub's life: an instance's
/// partition is a hash of its id modulo this number.
const PARTITIONS: i64 = 32;

/// Version 1, from nothing. Instance ids and entity keys compare bytewise (`COLLATE "C"`),
/// as in redb, so listings page the same on both backends.
const CREATE_V1: &str = r#"
CREATE TABLE {s}.meta (name text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE {s}.instances (
    instance_id text COLLATE "C" PRIMARY KEY,
    created bigint NOT NULL,
    status smallint NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX instances_by_created ON {s}.instances (created, instance_id);
CREATE INDEX instances_by_status ON {s}.instances (status, created, instance_id);
CREATE TABLE {s}.history (
    instance_id text COLLATE "C" NOT NULL,
    position bigint NOT NULL,
    event bytea NOT NULL,
    PRIMARY KEY (instance_id, position)
);
CREATE SEQUENCE {s}.inbox_keys;
CREATE TABLE {s}.inbox (
    instance_id text COLLATE "C" NOT NULL,
    key bigint NOT NULL DEFAULT nextval('{s}.inbox_keys'),
    partition integer NOT NULL,
    message bytea NOT NULL,
    PRIMARY KEY (instance_id, key)
);
CREATE INDEX inbox_by_partition ON {s}.inbox (partition, instance_id);
CREATE TABLE {s}.work_items (key bigint PRIMARY KEY, partition integer NOT NULL, item bytea NOT NULL);
CREATE INDEX work_items_by_partition ON {s}.work_items (partition);
CREATE TABLE {s}.timers (
    key bigint PRIMARY KEY,
    fire_at bigint NOT NULL,
    instance_id text COLLATE "C" NOT NULL,
    partition integer NOT NULL,
    item bytea NOT NULL
);
CREATE INDEX timers_by_instance ON {s}.timers (instance_id);
CREATE INDEX timers_by_partition ON {s}.timers (partition);
CREATE TABLE {s}.entities (entity_key text COLLATE "C" PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE {s}.partitions (
    id integer PRIMARY KEY,
    owner text,
    epoch bigint NOT NULL DEFAULT 0,
    expires timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {s}.hosts (
    host_id text PRIMARY KEY,
    seen timestamptz NOT NULL,
    apps_version bigint NOT NULL DEFAULT 0
);
CREATE TABLE {s}.app_versions (
    hash text PRIMARY KEY,
    name text NOT NULL,
    wasm bytea NOT NULL,
    added timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {s}.app_current (name text PRIMARY KEY, hash text);
CREATE SEQUENCE {s}.id_blocks;
"#;

/// Why a migration did not happen.
pub(crate) enum MigrateError {
    Postgres(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(error: tokio_postgres::Error) -> Self {
        MigrateError::Postgres(error)
    }
}

/// Creates or migrates the hub's schema; returns its partition count.
pub(crate) async fn migrate(
    client: &mut deadpool_postgres::Client,
    schema: &str,
    sql: &Sql,
    create: bool,
) -> Result<u32, MigrateError> {
    let txn = client.transaction().await?;
    txn.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("durable:{schema}")],
    )
    .await?;
    txn.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_version (version bigint NOT NULL)"
    ))
    .await?;
    let found: Option<i64> = txn
        .query_one(&format!("SELECT max(version) FROM {schema}.schema_version"), &[])
        .await?
        .get(0);
    match found {
        Some(found) if found > SCHEMA_VERSION => {
            return Err(MigrateError::Store(StoreError::SchemaTooNew {
                found: found as u64,
                known: SCHEMA_VERSION as u64,
            }));
        }
        Some(_) => {}
        None if !create => {
            return Err(MigrateError::Store(StoreError::Backend(format!(
                "no task hub in schema {schema} (give the --store of `durable serve`)"
            ))));
        }
        None => {
            txn.batch_execute(&CREATE_V1.replace("{s}", schema)).await?;
            txn.execute(
                &format!("INSERT INTO {schema}.partitions (id) SELECT generate_series(0, $1::bigint - 1)"),
                &[&PARTITIONS],
            )
            .await?;
            txn.execute(
                &format!("INSERT INTO {schema}.meta VALUES ('partitions', $1), ('apps_version', 0)"),
                &[&PARTITIONS],
            )
            .await?;
            txn.execute(
                &format!("INSERT INTO {schema}.schema_version VALUES ($1)"),
                &[&SCHEMA_VERSION],
            )
            .await?;
        }
    }
    let partitions: i64 = txn.query_one(&sql.partition_count, &[]).await?.get(0);
    txn.commit().await?;
    Ok(partitions as u32)
}

/// The statements of one hub, with its schema spelled in.
pub(crate) struct Sql {
    pub(crate) channel: String,
    pub(crate) notify: String,
    pub(crate) partition_count: String,
    pub(crate) next_id_block: String,
    pub(crate) lock_instances: String,
    pub(crate) lock_partitions: String,
    pub(crate) take_work_items: String,
    pub(crate) take_timers: String,
    pub(crate) delete_history: String,
    pub(crate) delete_inboxes: String,
    pub(crate) delete_timers_of: String,
    pub(crate) delete_messages: String,
    pub(crate) delete_instances: String,
    pub(crate) upsert_instances: String,
    pub(crate) insert_instances: String,
    pub(crate) insert_history: String,
    pub(crate) insert_messages: String,
    pub(crate) insert_work_items: String,
    pub(crate) insert_timers: String,
    pub(crate) delete_entities: String,
    pub(crate) upsert_entities: String,
    pub(crate) still_ready: String,
    pub(crate) instance: String,
    pub(crate) history: String,
    pub(crate) instance_and_inbox: String,
    pub(crate) instances_and_inboxes: String,
    pub(crate) list: String,
    pub(crate) list_by_status: String,
    pub(crate) entity: String,
    pub(crate) entity_and_inbox: String,
    pub(crate) list_entities: String,
    pub(crate) instance_count: String,
    pub(crate) pending_ready: String,
    pub(crate) pending_work_items: String,
    pub(crate) pending_timers: String,
    pub(crate) heartbeat: String,
    pub(crate) live_hosts: String,
    pub(crate) forget_hosts: String,
    pub(crate) renew: String,
    pub(crate) acquire: String,
    pub(crate) release: String,
    pub(crate) release_all: String,
    pub(crate) leave: String,
    pub(crate) app_current: String,
    pub(crate) app_versions: String,
    pub(crate) app_version: String,
    pub(crate) keep_app_version: String,
    pub(crate) set_app_current: String,
    pub(crate) add_app_current: String,
    pub(crate) drop_app_versions: String,
    pub(crate) apps_version: String,
    pub(crate) bump_apps_version: String,
    pub(crate) mark_apps_loaded: String,
    pub(crate) hosts_behind: String,
}

impl Sql {
    /// The statements over the tables of `schema` (an identifier, checked by the parser).
    pub(crate) fn new(schema: &str) -> Sql {
        let s = |text: &str| text.replace("{s}", schema);
        Sql {
            channel: format!("durable_{schema}"),
            notify: "SELECT pg_notify($1, $2)".into(),
            partition_count: s("SELECT value FROM {s}.meta WHERE name = 'partitions'"),
            next_id_block: s("SELECT nextval('{s}.id_blocks')"),
            lock_instances: s(
                "SELECT instance_id, record FROM {s}.instances WHERE instance_id = ANY($1::text[]) \
                 ORDER BY instance_id FOR UPDATE",
            ),
            lock_partitions: s(
                "SELECT id, epoch FROM {s}.partitions WHERE id = ANY($1::int4[]) AND owner = $2 \
                 ORDER BY id FOR SHARE",
            ),
            take_work_items: s("DELETE FROM {s}.work_items WHERE key = ANY($1::int8[]) RETURNING key"),
            take_timers: s("DELETE FROM {s}.timers WHERE key = ANY($1::int8[]) RETURNING key"),
            delete_history: s("DELETE FROM {s}.history WHERE instance_id = ANY($1::text[])"),
            delete_inboxes: s("DELETE FROM {s}.inbox WHERE instance_id = ANY($1::text[])"),
            delete_timers_of: s("DELETE FROM {s}.timers WHERE instance_id = ANY($1::text[])"),
            delete_messages: s("DELETE FROM {s}.inbox WHERE (instance_id, key) IN \
                 (SELECT * FROM unnest($1::text[], $2::int8[]))"),
            delete_instances: s("DELETE FROM {s}.instances WHERE instance_id = ANY($1::text[])"),
            upsert_instances: s("INSERT INTO {s}.instances (instance_id, created, status, record) \
                 SELECT * FROM unnest($1::text[], $2::int8[], $3::int2[], $4::bytea[]) \
                 ON CONFLICT (instance_id) DO UPDATE \
                 SET created = excluded.created, status = excluded.status, record = excluded.record"),
            insert_instances: s("INSERT INTO {s}.instances (instance_id, created, status, record) \
                 SELECT * FROM unnest($1::text[], $2::int8[], $3::int2[], $4::bytea[])"),
            insert_history: s("INSERT INTO {s}.history (instance_id, position, event) \
                 SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[])"),
            // Keys come from a sequence in the order of the batch, so an inbox reads in
            // arrival order.
            insert_messages: s("INSERT INTO {s}.inbox (instance_id, partition, message) \
                 SELECT id, partition, message \
                 FROM unnest($1::text[], $2::int4[], $3::bytea[]) WITH ORDINALITY AS m(id, partition, message, n) \
                 ORDER BY n"),
            insert_work_items: s("INSERT INTO {s}.work_items (key, partition, item) \
                 SELECT * FROM unnest($1::int8[], $2::int4[], $3::bytea[])"),
            insert_timers: s("INSERT INTO {s}.timers (key, fire_at, instance_id, partition, item) \
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int4[], $5::bytea[])"),
            delete_entities: s("DELETE FROM {s}.entities WHERE entity_key = ANY($1::text[])"),
            upsert_entities: s(
                "INSERT INTO {s}.entities (entity_key, record) SELECT * FROM unnest($1::text[], $2::bytea[]) \
                 ON CONFLICT (entity_key) DO UPDATE SET record = excluded.record",
            ),
            still_ready: s("SELECT DISTINCT instance_id FROM {s}.inbox WHERE instance_id = ANY($1::text[])"),
            instance: s("SELECT record FROM {s}.instances WHERE instance_id = $1"),
            history: s("SELECT event FROM {s}.history WHERE instance_id = $1 ORDER BY position"),
            // One statement, so the row and the messages are one snapshot.
            instance_and_inbox: s("(SELECT NULL::int8, record FROM {s}.instances WHERE instance_id = $1) \
                 UNION ALL \
                 (SELECT key, message FROM {s}.inbox WHERE instance_id = $1 ORDER BY key LIMIT $2)"),
            instances_and_inboxes: s(
                "SELECT instance_id, NULL::int8, record FROM {s}.instances WHERE instance_id = ANY($1::text[]) \
                 UNION ALL \
                 SELECT m.instance_id, m.key, m.message FROM unnest($1::text[]) AS wanted(id) \
                 CROSS JOIN LATERAL (SELECT instance_id, key, message FROM {s}.inbox \
                   WHERE instance_id = wanted.id ORDER BY key LIMIT $2) AS m",
            ),
            // All statuses: the (created, id) index. Some: the (status, created, id) index once
            // per status, merged, so a page costs its size, not the table's.
            list: s("SELECT record FROM {s}.instances \
                 WHERE ($1::int8 IS NULL OR created >= $1) AND ($2::int8 IS NULL OR created <= $2) \
                 AND ($4::text IS NULL OR starts_with(instance_id, $4)) \
                 AND ($5::int8 IS NULL OR (created, instance_id) > ($5, $6::text)) \
                 AND cardinality($3::int2[]) = 0 \
                 ORDER BY created, instance_id LIMIT $7"),
            list_by_status: s("SELECT m.record FROM unnest($3::int2[]) AS wanted(status) \
                 CROSS JOIN LATERAL (SELECT record, created, instance_id FROM {s}.instances \
                   WHERE status = wanted.status \
                   AND ($1::int8 IS NULL OR created >= $1) AND ($2::int8 IS NULL OR created <= $2) \
                   AND ($4::text IS NULL OR starts_with(instance_id, $4)) \
                   AND ($5::int8 IS NULL OR (created, instance_id) > ($5, $6::text)) \
                   ORDER BY created, instance_id LIMIT $7) AS m \
                 ORDER BY m.created, m.instance_id LIMIT $7"),
            entity: s("SELECT record FROM {s}.entities WHERE entity_key = $1"),
            entity_and_inbox: s("(SELECT NULL::int8, record FROM {s}.entities WHERE entity_key = $1) \
                 UNION ALL \
                 (SELECT key, message FROM {s}.inbox WHERE instance_id = $1 ORDER BY key LIMIT $2)"),
            list_entities: s("SELECT entity_key, record FROM {s}.entities \
                 WHERE starts_with(entity_key, $1) AND ($2::text IS NULL OR entity_key > $2) \
                 ORDER BY entity_key LIMIT $3"),
            instance_count: s("SELECT count(*) FROM {s}.instances"),
            pending_ready: s("SELECT DISTINCT instance_id FROM {s}.inbox WHERE partition = ANY($1::int4[])"),
            pending_work_items: s(
                "SELECT key, item FROM {s}.work_items WHERE partition = ANY($1::int4[]) ORDER BY key",
            ),
            pending_timers: s(
                "SELECT key, fire_at, item FROM {s}.timers WHERE partition = ANY($1::int4[]) ORDER BY fire_at, key",
            ),
            heartbeat: s("INSERT INTO {s}.hosts (host_id, seen) VALUES ($1, now()) \
                 ON CONFLICT (host_id) DO UPDATE SET seen = now()"),
            live_hosts: s("SELECT count(*) FROM {s}.hosts WHERE seen > now() - make_interval(secs => $1)"),
            forget_hosts: s("DELETE FROM {s}.hosts WHERE seen < now() - interval '1 day'"),
            renew: s("UPDATE {s}.partitions SET expires = now() + make_interval(secs => $2) \
                 WHERE owner = $1 AND id = ANY($3::int4[]) RETURNING id, epoch"),
            // Free partitions, expired ones, and ones this host's name holds from an earlier
            // life (a restart with a fixed host id): each taken with a new epoch, which
            // fences out whoever held it before.
            acquire: s("UPDATE {s}.partitions SET owner = $1, epoch = epoch + 1, \
                 expires = now() + make_interval(secs => $2) \
                 WHERE id IN (SELECT id FROM {s}.partitions \
                   WHERE (owner IS NULL OR expires < now() OR owner = $1) AND NOT (id = ANY($3::int4[])) \
                   ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, epoch"),
            release: s("UPDATE {s}.partitions SET owner = NULL, expires = now() \
                 WHERE owner = $1 AND id = ANY($2::int4[])"),
            release_all: s("UPDATE {s}.partitions SET owner = NULL, expires = now() WHERE owner = $1"),
            leave: s("DELETE FROM {s}.hosts WHERE host_id = $1"),
            app_current: s("SELECT name, hash FROM {s}.app_current"),
            app_versions: s("SELECT hash, name FROM {s}.app_versions"),
            app_version: s("SELECT wasm FROM {s}.app_versions WHERE hash = $1"),
            keep_app_version: s(
                "INSERT INTO {s}.app_versions (hash, name, wasm) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING",
            ),
            set_app_current: s("INSERT INTO {s}.app_current (name, hash) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET hash = excluded.hash"),
            add_app_current: s(
                "INSERT INTO {s}.app_current (name, hash) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            ),
            apps_version: s("SELECT value FROM {s}.meta WHERE name = 'apps_version'"),
            bump_apps_version: s("UPDATE {s}.meta SET value = value + 1 WHERE name = 'apps_version' RETURNING value"),
            mark_apps_loaded: s(
                "INSERT INTO {s}.hosts (host_id, seen, apps_version) VALUES ($1, now(), $2) \
                 ON CONFLICT (host_id) DO UPDATE SET apps_version = greatest({s}.hosts.apps_version, excluded.apps_version)",
            ),
            hosts_behind: s(
                "SELECT host_id FROM {s}.hosts WHERE seen > now() - make_interval(secs => $1) AND apps_version < $2 \
                 ORDER BY host_id",
            ),
            drop_app_versions: s("DELETE FROM {s}.app_versions WHERE hash = ANY($1::text[]) \
                 AND hash NOT IN (SELECT hash FROM {s}.app_current WHERE hash IS NOT NULL)"),
        }
    }
}
