//! The PostgreSQL backend: one task hub in one schema, shared by any number of hosts.
//!
//! Every [`TaskStore::apply`] is one PostgreSQL transaction (synchronous_commit on, so
//! acknowledged = durable). Work is split into [`PostgresStore::partitions`] partitions by
//! a hash of the instance id or entity key; each host holds leases on a share of them
//! (module [`leases`]) and steps only their instances. A step or entity batch commits only
//! while its host still holds the partition with the epoch it acquired it with, checked in
//! the same transaction under a share lock on the partition row (fencing), so a host that
//! lost its lease writes nothing. Hosts tell each other about new inbox messages and commits
//! with LISTEN/NOTIFY (module [`listener`]).
//!
//! A transaction reads everything it decides on in a few statements (the instance rows
//! under `FOR UPDATE`, in id order so concurrent hosts never deadlock), decides in memory
//! with the same rules as the redb backend, and writes each table with one bulk statement.

mod leases;
mod listener;
mod schema;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::{mpsc, watch};

use crate::location::PostgresLocation;
use crate::{
    AppCatalog, EntityAndInbox, EntityCommit, InstanceAndInbox, ListCursor, ListFilter, Notices, Recovery, Rejection,
    StepCommit, StoreError, StoreEvent, TaskStore, TimerItem, TimerKey, Write, WriteResult, is_entity_key,
};
use durable_core::history::{EntityRecord, HistoryEvent, InstanceRecord, Message, RuntimeStatus, Timestamp};
use durable_core::step;

use schema::Sql;

/// How many ids one block reserved from the database holds.
const ID_BLOCK: u64 = 1 << 20;

/// How often a transaction that lost a race with another host (a serialization failure, a
/// deadlock, two starts of one id) is tried again before the error is reported.
const RETRIES: usize = 5;

/// A PostgreSQL task hub, as one host sees it.
pub struct PostgresStore {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    events: Mutex<Option<mpsc::UnboundedReceiver<StoreEvent>>>,
}

/// What the store and its background tasks share.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) location: PostgresLocation,
    pub(crate) sql: Sql,
    pub(crate) host_id: String,
    pub(crate) partitions: u32,
    /// The partitions this host holds, with the epoch it acquired each with.
    pub(crate) owned: RwLock<HashMap<u32, i64>>,
    pub(crate) commits: watch::Sender<u64>,
    /// Bumped when another host changed the hub's apps.
    pub(crate) apps: watch::Sender<u64>,
    pub(crate) events: mpsc::UnboundedSender<StoreEvent>,
    pub(crate) closed: AtomicBool,
    /// Wakes the lease loop early (another host released partitions).
    pub(crate) lease_wake: tokio::sync::Notify,
    ids: IdBlocks,
}

impl PostgresStore {
    /// Connects to the hub at `location`, creates or migrates its schema, registers this
    /// host and takes its share of the partitions before returning.
    pub async fn connect(location: &PostgresLocation) -> Result<Arc<Self>, StoreError> {
        Self::connect_as(location, true).await
    }

    /// Connects to read the hub (`durable check`): the schema must exist at a version this
    /// host knows; no leases are taken and no steps can commit.
    pub async fn connect_reader(location: &PostgresLocation) -> Result<Arc<Self>, StoreError> {
        Self::connect_as(location, false).await
    }

    async fn connect_as(location: &PostgresLocation, serve: bool) -> Result<Arc<Self>, StoreError> {
        let mut config = location
            .config()
            .map_err(|error| StoreError::Backend(describe(&error)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // A host paused (or cut off) in the middle of a transaction would keep its row locks,
        // and with them its partitions and instances, for as long as it stays paused: the
        // server ends such a session after one lease, so the others can take over.
        let options = format!(
            "{} -c idle_in_transaction_session_timeout={}",
            config.get_options().unwrap_or_default(),
            location.lease.as_millis().max(1000)
        );
        config.options(options.trim());
        if matches!(config.get_ssl_mode(), tokio_postgres::config::SslMode::Require) {
            return Err(StoreError::Backend(
                "sslmode=require is not supported yet (this build connects without TLS); \
                 use sslmode=disable or prefer on a trusted network"
                    .into(),
            ));
        }
        let manager = deadpool_postgres::Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(location.pool_size)
            .build()
            .map_err(|error| StoreError::Backend(error.to_string()))?;
        let sql = Sql::new(&location.schema);
        let partitions = {
            let mut client = pool.get().await.map_err(pool_error)?;
            schema::migrate(&mut client, &location.schema, &sql, serve)
                .await
                .map_err(|error| match error {
                    schema::MigrateError::Postgres(error) => pg_error_of(&error),
                    schema::MigrateError::Store(error) => error,
                })?
        };
        let host_id = location.host_id.clone().unwrap_or_else(default_host_id);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pool,
            location: location.clone(),
            sql,
            host_id,
            partitions,
            owned: RwLock::new(HashMap::new()),
            commits: watch::Sender::new(0),
            apps: watch::Sender::new(0),
            events: events_tx,
            closed: AtomicBool::new(false),
            lease_wake: tokio::sync::Notify::new(),
            ids: IdBlocks::default(),
        });
        shared.ids.fill(shared.reserve_id_block().await?);
        shared.ids.fill(shared.reserve_id_block().await?);
        if !serve {
            return Ok(Arc::new(PostgresStore {
                shared,
                tasks: Mutex::new(Vec::new()),
                events: Mutex::new(None),
            }));
        }
        // The first round takes this host's share before the engine asks what is pending,
        // so that work comes from `recover`, not as an event.
        leases::round(&shared, false).await?;
        let tasks = vec![
            tokio::spawn(leases::run(shared.clone())),
            tokio::spawn(listener::run(shared.clone(), config)),
            tokio::spawn(run_id_refills(shared.clone())),
        ];
        Ok(Arc::new(PostgresStore {
            shared,
            tasks: Mutex::new(tasks),
            events: Mutex::new(Some(events_rx)),
        }))
    }

    /// Deletes the hub at `location`: its schema with every table in it. For throw-away hubs
    /// (benchmarks, tests); no host may be serving it.
    pub async fn drop_hub(location: &PostgresLocation) -> Result<(), StoreError> {
        let config = location
            .config()
            .map_err(|error| StoreError::Backend(describe(&error)))?;
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|error| pg_error_of(&error))?;
        let driver = tokio::spawn(connection);
        let dropped = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", location.schema))
            .await
            .map_err(pg_error);
        drop(client);
        let _ = driver.await;
        dropped
    }

    /// How many partitions the hub's work is split into (fixed when the hub is created).
    pub fn partitions(&self) -> u32 {
        self.shared.partitions
    }

    /// The partitions this host holds now.
    pub fn owned_partitions(&self) -> Vec<u32> {
        let mut owned: Vec<u32> = self.shared.owned.read().expect("lease map").keys().copied().collect();
        owned.sort_unstable();
        owned
    }

    /// This host's name in the lease table.
    pub fn host_id(&self) -> &str {
        &self.shared.host_id
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for task in self.tasks.lock().expect("task list").drain(..) {
            task.abort();
        }
    }
}

fn default_host_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".into());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &nonce[..8])
}

/// The partition of an instance id or entity key: FNV-1a, stable across hosts and versions.
pub(crate) fn partition_of(key: &str, partitions: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.as_bytes() {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % partitions.max(1)
}

impl Shared {
    pub(crate) fn partition(&self, key: &str) -> u32 {
        partition_of(key, self.partitions)
    }

    pub(crate) fn owns(&self, key: &str) -> bool {
        self.owned.read().expect("lease map").contains_key(&self.partition(key))
    }

    /// Whether this host holds every partition: no other host needs to hear of its commits.
    pub(crate) fn alone(&self) -> bool {
        self.owned.read().expect("lease map").len() as u32 == self.partitions
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn reserve_id_block(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client.query_one(&self.sql.next_id_block, &[]).await.map_err(pg_error)?;
        let block: i64 = row.get(0);
        Ok(block as u64 * ID_BLOCK)
    }

    /// What is pending in `partitions`: instances with inbox messages, work items, timers.
    pub(crate) async fn pending(&self, partitions: &[u32]) -> Result<Recovery, StoreError> {
        let mut recovery = Recovery::default();
        if partitions.is_empty() {
            return Ok(recovery);
        }
        let partitions: Vec<i32> = partitions.iter().map(|p| *p as i32).collect();
        let client = self.client().await?;
        for row in client
            .query(&self.sql.pending_ready, &[&partitions])
            .await
            .map_err(pg_error)?
        {
            recovery.ready.push(row.get(0));
        }
        for row in client
            .query(&self.sql.pending_work_items, &[&partitions])
            .await
            .map_err(pg_error)?
        {
            let key: i64 = row.get(0);
            let item = serde_json::from_slice(row.get(1)).map_err(corrupt("work_items"))?;
            recovery.activities.push((key as u64, item));
        }
        for row in client
            .query(&self.sql.pending_timers, &[&partitions])
            .await
            .map_err(pg_error)?
        {
            let key: i64 = row.get(0);
            let fire_at: i64 = row.get(1);
            let timer = serde_json::from_slice(row.get(2)).map_err(corrupt("timers"))?;
            recovery.timers.push((
                TimerKey {
                    fire_at: Timestamp(fire_at),
                    key: key as u64,
                },
                timer,
            ));
        }
        Ok(recovery)
    }

    /// Changes the app catalog in one transaction that also counts the change and tells the
    /// other hosts; returns the catalog's new version.
    async fn change_apps(
        &self,
        change: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error>,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_error)?;
        change(&txn).await.map_err(pg_error)?;
        let version: i64 = txn
            .query_one(&self.sql.bump_apps_version, &[])
            .await
            .map_err(pg_error)?
            .get(0);
        let payload = listener::apps_payload(&self.host_id);
        txn.execute(&self.sql.notify, &[&self.sql.channel, &payload])
            .await
            .map_err(pg_error)?;
        txn.commit().await.map_err(pg_error)?;
        Ok(version as u64)
    }

    async fn apply(&self, writes: &[Write]) -> Result<(Vec<WriteResult>, Notices), StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut client = self.client().await?;
            let txn = client.transaction().await.map_err(pg_error)?;
            let outcome = match self.apply_in(&txn, writes).await {
                Ok(outcome) => txn.commit().await.map(|()| outcome),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(outcome) => {
                    self.commits.send_modify(|count| *count += 1);
                    return Ok(outcome);
                }
                Err(error) if attempt < RETRIES && is_retryable(&error) => continue,
                Err(error) => return Err(pg_error(error)),
            }
        }
    }

    /// One attempt at `writes`, inside `txn`; see the module documentation.
    async fn apply_in(
        &self,
        txn: &deadpool_postgres::Transaction<'_>,
        writes: &[Write],
    ) -> Result<(Vec<WriteResult>, Notices), tokio_postgres::Error> {
        let plan = Plan::of(self, writes);
        let mut batch = Batch::new(self);
        // The reads a batch decides on go out together (one round trip).
        let ids: Vec<&str> = plan.instance_ids.iter().map(String::as_str).collect();
        let partitions: Vec<i32> = plan.fenced_partitions.iter().map(|p| *p as i32).collect();
        let lock_instances: [Param<'_>; 1] = [&ids];
        let lock_partitions: [Param<'_>; 2] = [&partitions, &self.host_id];
        let take_work: [Param<'_>; 1] = [&plan.work_keys];
        let take_timers: [Param<'_>; 1] = [&plan.timer_keys];
        let (instances, fenced, work, timers) = tokio::try_join!(
            query_if(txn, !ids.is_empty(), &self.sql.lock_instances, &lock_instances),
            query_if(txn, !partitions.is_empty(), &self.sql.lock_partitions, &lock_partitions),
            query_if(txn, !plan.work_keys.is_empty(), &self.sql.take_work_items, &take_work),
            query_if(txn, !plan.timer_keys.is_empty(), &self.sql.take_timers, &take_timers),
        )?;
        for row in instances {
            let id: String = row.get(0);
            let record = InstanceRecord::decode(row.get(1)).ok();
            batch.stored.insert(id.clone());
            batch.rows.insert(id, record);
        }
        let fence: HashMap<u32, i64> = fenced
            .iter()
            .map(|row| (row.get::<_, i32>(0) as u32, row.get(1)))
            .collect();
        batch.taken_work = work.iter().map(|row| row.get::<_, i64>(0)).collect();
        batch.taken_timers = timers.iter().map(|row| row.get::<_, i64>(0)).collect();
        batch.fenced_ok = {
            let owned = self.owned.read().expect("lease map");
            fence
                .into_iter()
                .filter(|(partition, epoch)| owned.get(partition) == Some(epoch))
                .map(|(partition, _)| partition)
                .collect()
        };
        // A partition the database no longer gives this host is lost: forget it now, so the
        // engine stops stepping its instances before the next lease round says so.
        let lost: Vec<u32> = plan
            .fenced_partitions
            .iter()
            .copied()
            .filter(|partition| !batch.fenced_ok.contains(partition))
            .collect();
        if !lost.is_empty() {
            let mut owned = self.owned.write().expect("lease map");
            for partition in lost {
                if owned.remove(&partition).is_some() {
                    eprintln!(
                        "warning: host {} lost partition {partition} to another host (a step was fenced)",
                        self.host_id
                    );
                }
            }
        }
        let results: Vec<WriteResult> = writes.iter().map(|write| batch.apply(write)).collect();
        batch.write(txn).await?;
        Ok((results, batch.notices))
    }
}

/// What a batch of writes must read before it decides anything.
#[derive(Default)]
struct Plan {
    instance_ids: Vec<String>,
    fenced_partitions: Vec<u32>,
    work_keys: Vec<i64>,
    timer_keys: Vec<i64>,
}

impl Plan {
    fn of(shared: &Shared, writes: &[Write]) -> Plan {
        let mut plan = Plan::default();
        let mut ids: HashSet<&str> = HashSet::new();
        let mut partitions: HashSet<u32> = HashSet::new();
        let orchestration = |id: &'_ str| !is_entity_key(id);
        for write in writes {
            match write {
                Write::Start { record, .. } => {
                    ids.insert(&record.instance_id);
                }
                Write::Deliver { instance_id, .. } => {
                    ids.insert(instance_id);
                }
                Write::Step(step) => {
                    ids.insert(&step.instance_id);
                    partitions.insert(shared.partition(&step.instance_id));
                    ids.extend(
                        step.messages
                            .iter()
                            .map(|(target, _)| target.as_str())
                            .filter(|id| orchestration(id)),
                    );
                    ids.extend(step.children.iter().map(|child| child.record.instance_id.as_str()));
                }
                Write::Entity(commit) => {
                    partitions.insert(shared.partition(&commit.entity_key));
                    ids.extend(
                        commit
                            .messages
                            .iter()
                            .map(|(target, _)| target.as_str())
                            .filter(|id| orchestration(id)),
                    );
                    ids.extend(commit.starts.iter().map(|(record, _)| record.instance_id.as_str()));
                }
                Write::Signal { .. } => {}
                Write::Purge { instance_ids } => ids.extend(instance_ids.iter().map(String::as_str)),
                Write::ActivityDone { key, instance_id, .. } => {
                    ids.insert(instance_id);
                    plan.work_keys.push(*key as i64);
                }
                Write::TimersFired { timers } => {
                    for (key, timer) in timers {
                        plan.timer_keys.push(key.key as i64);
                        if orchestration(&timer.instance_id) {
                            ids.insert(&timer.instance_id);
                        }
                    }
                }
            }
        }
        plan.instance_ids = ids.into_iter().map(str::to_owned).collect();
        // Rows are locked in one order by every host, so two hosts never wait on each other.
        plan.instance_ids.sort_unstable();
        plan.fenced_partitions = partitions.into_iter().collect();
        plan
    }
}

/// A batch's decisions, made in memory over the rows it read, then written table by table.
struct Batch<'s> {
    shared: &'s Shared,
    /// The instance rows as the batch has them so far (`None`: absent).
    rows: HashMap<String, Option<InstanceRecord>>,
    /// Instances whose row must be written (or deleted) at the end.
    rows_changed: HashSet<String>,
    /// Instances that had a row when the batch read them (locked by it since).
    stored: HashSet<String>,
    /// Instances removed or replaced: their stored history, inbox and timers go.
    wiped: HashSet<String>,
    /// Instances whose stored history goes (continue-as-new).
    history_reset: HashSet<String>,
    history_inserts: Vec<(String, i64, Vec<u8>)>,
    inbox_deletes: Vec<(String, i64)>,
    inbox_inserts: Vec<(String, i32, Vec<u8>)>,
    work_inserts: Vec<(i64, i32, Vec<u8>)>,
    timer_inserts: Vec<(i64, i64, String, i32, Vec<u8>)>,
    entity_writes: HashMap<String, Option<Vec<u8>>>,
    /// Instances and entities that took a step: ready again if messages remain.
    stepped: Vec<String>,
    fenced_ok: HashSet<u32>,
    taken_work: HashSet<i64>,
    taken_timers: HashSet<i64>,
    notices: Notices,
}

impl<'s> Batch<'s> {
    fn new(shared: &'s Shared) -> Self {
        Batch {
            shared,
            rows: HashMap::new(),
            rows_changed: HashSet::new(),
            stored: HashSet::new(),
            wiped: HashSet::new(),
            history_reset: HashSet::new(),
            history_inserts: Vec::new(),
            inbox_deletes: Vec::new(),
            inbox_inserts: Vec::new(),
            work_inserts: Vec::new(),
            timer_inserts: Vec::new(),
            entity_writes: HashMap::new(),
            stepped: Vec::new(),
            fenced_ok: HashSet::new(),
            taken_work: HashSet::new(),
            taken_timers: HashSet::new(),
            notices: Notices::default(),
        }
    }

    fn row(&self, instance_id: &str) -> Option<&InstanceRecord> {
        self.rows.get(instance_id).and_then(Option::as_ref)
    }

    fn apply(&mut self, write: &Write) -> WriteResult {
        match write {
            Write::Start { record, started } => {
                if let Some(running) = self.start_over(record, started) {
                    return Err(Rejection::AlreadyExists(running));
                }
            }
            Write::Deliver { instance_id, message } => {
                let Some(existing) = self.row(instance_id) else {
                    return Err(Rejection::NotFound);
                };
                if existing.runtime_status.is_terminal() {
                    return Err(Rejection::Gone(existing.runtime_status));
                }
                self.push_message(instance_id, message);
            }
            Write::Step(step) => return self.apply_step(step),
            Write::Entity(commit) => return self.apply_entity(commit),
            Write::Signal { entity_key, message } => self.push_message(entity_key, message),
            Write::Purge { instance_ids } => {
                let mut deleted = 0;
                for instance_id in instance_ids {
                    if self.row(instance_id).is_some() {
                        self.delete_instance(instance_id);
                        deleted += 1;
                    }
                }
                return if deleted == 0 {
                    Err(Rejection::NotFound)
                } else {
                    Ok(deleted)
                };
            }
            Write::ActivityDone {
                key,
                instance_id,
                message,
            } => {
                if self.taken_work.remove(&(*key as i64)) && self.row(instance_id).is_some() {
                    self.push_message(instance_id, message);
                }
            }
            Write::TimersFired { timers } => {
                let mut fired = 0;
                for (key, timer) in timers {
                    if !self.taken_timers.remove(&(key.key as i64)) {
                        continue;
                    }
                    fired += 1;
                    let message = step::timer_message(timer, Timestamp::now());
                    self.deliver_if_present(&timer.instance_id, &message);
                }
                return Ok(fired);
            }
        }
        Ok(1)
    }

    fn fenced(&self, key: &str) -> bool {
        !self.fenced_ok.contains(&self.shared.partition(key))
    }

    fn apply_step(&mut self, step: &StepCommit) -> WriteResult {
        if self.fenced(&step.instance_id) {
            return Err(Rejection::Fenced);
        }
        let current_ok = self.row(&step.instance_id).is_some_and(|current| {
            current.execution_id == step.execution_id
                && step
                    .require_status
                    .is_none_or(|status| status == current.runtime_status)
        });
        if !current_ok {
            return Err(Rejection::Stale);
        }
        let id = step.instance_id.as_str();
        for key in &step.consumed {
            self.inbox_deletes.push((id.to_owned(), *key as i64));
        }
        if step.reset_history {
            self.history_reset.insert(id.to_owned());
            self.history_inserts.retain(|(owner, _, _)| owner != id);
        }
        for (offset, event) in step.append.iter().enumerate() {
            self.history_inserts.push((
                id.to_owned(),
                (step.history_start + offset as u64) as i64,
                event.encode(),
            ));
        }
        self.put_instance(&step.record);
        let partition = self.shared.partition(id) as i32;
        for item in &step.activities {
            let key = self.shared.ids.allocate();
            self.work_inserts.push((
                key as i64,
                partition,
                serde_json::to_vec(item).expect("work items serialize"),
            ));
            self.notices.activities.push((key, item.clone()));
        }
        for timer in &step.timers {
            self.add_timer(timer, partition);
        }
        for (target, message) in &step.messages {
            self.deliver_if_present(target, message);
        }
        for child in &step.children {
            if self.start_over(&child.record, &child.started).is_some() {
                self.push_message(id, &child.conflict);
            }
        }
        self.stepped.push(step.instance_id.clone());
        Ok(1)
    }

    fn apply_entity(&mut self, commit: &EntityCommit) -> WriteResult {
        let key = commit.entity_key.as_str();
        if self.fenced(key) {
            return Err(Rejection::Fenced);
        }
        for inbox_key in &commit.consumed {
            self.inbox_deletes.push((key.to_owned(), *inbox_key as i64));
        }
        self.entity_writes
            .insert(key.to_owned(), commit.record.as_ref().map(EntityRecord::encode));
        for (target, message) in &commit.messages {
            self.deliver_if_present(target, message);
        }
        let partition = self.shared.partition(key) as i32;
        for timer in &commit.timers {
            self.add_timer(timer, partition);
        }
        for (record, started) in &commit.starts {
            self.start_over(record, started);
        }
        self.stepped.push(commit.entity_key.clone());
        Ok(1)
    }

    /// A timer belongs to the partition of the instance whose step set it, so whoever takes
    /// that partition over also fires its timers.
    fn add_timer(&mut self, timer: &TimerItem, partition: i32) {
        let key = TimerKey {
            fire_at: timer.fire_at,
            key: self.shared.ids.allocate(),
        };
        self.timer_inserts.push((
            key.key as i64,
            key.fire_at.0,
            timer.instance_id.clone(),
            partition,
            serde_json::to_vec(timer).expect("timers serialize"),
        ));
        self.notices.timers.push((key, timer.clone()));
    }

    /// Creates `record` with its `ExecutionStarted`, replacing a finished instance of the
    /// same id; returns the status of a running one instead, which it leaves alone.
    fn start_over(&mut self, record: &InstanceRecord, started: &Message) -> Option<RuntimeStatus> {
        let existing = self.row(&record.instance_id);
        if let Some(running) = step::start_blocked_by(existing) {
            return Some(running);
        }
        if existing.is_some() {
            self.delete_instance(&record.instance_id);
        }
        self.put_instance(record);
        self.push_message(&record.instance_id, started);
        None
    }

    fn put_instance(&mut self, record: &InstanceRecord) {
        self.rows.insert(record.instance_id.clone(), Some(record.clone()));
        self.rows_changed.insert(record.instance_id.clone());
    }

    /// Removes an instance with its history, inbox and timers, including what this batch
    /// added for it so far.
    fn delete_instance(&mut self, instance_id: &str) {
        self.rows.insert(instance_id.to_owned(), None);
        self.rows_changed.insert(instance_id.to_owned());
        self.wiped.insert(instance_id.to_owned());
        self.history_inserts.retain(|(owner, _, _)| owner != instance_id);
        self.inbox_inserts.retain(|(owner, _, _)| owner != instance_id);
        self.timer_inserts.retain(|(_, _, owner, _, _)| owner != instance_id);
    }

    /// Delivers to an entity (they exist implicitly) or to an existing orchestration.
    fn deliver_if_present(&mut self, target: &str, message: &Message) {
        if is_entity_key(target) || self.row(target).is_some() {
            self.push_message(target, message);
        }
    }

    fn push_message(&mut self, instance_id: &str, message: &Message) {
        self.inbox_inserts.push((
            instance_id.to_owned(),
            self.shared.partition(instance_id) as i32,
            message.encode(),
        ));
        self.notices.ready.push(instance_id.to_owned());
    }

    /// Writes the batch's decisions: removals first (they concern rows stored before the
    /// batch), then the new rows, then the notification to other hosts, then which stepped
    /// instances still have messages. The statements are prepared once per connection and
    /// sent together: the server runs them in order, and the batch waits one round trip.
    async fn write(&mut self, txn: &deadpool_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        let sql = &self.shared.sql;
        let mut history_gone: Vec<&str> = self.wiped.iter().map(String::as_str).collect();
        history_gone.extend(self.history_reset.iter().map(String::as_str));
        let wiped: Vec<&str> = self.wiped.iter().map(String::as_str).collect();
        let (message_ids, message_keys): (Vec<&str>, Vec<i64>) =
            self.inbox_deletes.iter().map(|(id, key)| (id.as_str(), *key)).unzip();
        let mut deleted_rows = Vec::new();
        // Rows the batch found are locked and updated; rows it creates are inserted, and if
        // another host created one meanwhile the insert fails and the batch is tried again
        // (then it sees that row: a second start of one id is refused, never merged).
        let mut updated = Rows::default();
        let mut created = Rows::default();
        for id in &self.rows_changed {
            match self.rows.get(id).and_then(Option::as_ref) {
                Some(record) if self.stored.contains(id) => updated.push(id, record),
                Some(record) => created.push(id, record),
                None => deleted_rows.push(id.as_str()),
            }
        }
        let history_ids: Vec<&str> = self.history_inserts.iter().map(|row| row.0.as_str()).collect();
        let history_positions: Vec<i64> = self.history_inserts.iter().map(|row| row.1).collect();
        let history_events: Vec<&[u8]> = self.history_inserts.iter().map(|row| row.2.as_slice()).collect();
        let inbox_ids: Vec<&str> = self.inbox_inserts.iter().map(|row| row.0.as_str()).collect();
        let inbox_partitions: Vec<i32> = self.inbox_inserts.iter().map(|row| row.1).collect();
        let inbox_messages: Vec<&[u8]> = self.inbox_inserts.iter().map(|row| row.2.as_slice()).collect();
        let work_keys: Vec<i64> = self.work_inserts.iter().map(|row| row.0).collect();
        let work_partitions: Vec<i32> = self.work_inserts.iter().map(|row| row.1).collect();
        let work_items: Vec<&[u8]> = self.work_inserts.iter().map(|row| row.2.as_slice()).collect();
        let timer_keys: Vec<i64> = self.timer_inserts.iter().map(|row| row.0).collect();
        let timer_fire_at: Vec<i64> = self.timer_inserts.iter().map(|row| row.1).collect();
        let timer_ids: Vec<&str> = self.timer_inserts.iter().map(|row| row.2.as_str()).collect();
        let timer_partitions: Vec<i32> = self.timer_inserts.iter().map(|row| row.3).collect();
        let timer_items: Vec<&[u8]> = self.timer_inserts.iter().map(|row| row.4.as_slice()).collect();
        let (mut entity_keys, mut entity_records, mut entities_gone) = (Vec::new(), Vec::new(), Vec::new());
        for (key, record) in &self.entity_writes {
            match record {
                Some(record) => {
                    entity_keys.push(key.as_str());
                    entity_records.push(record.as_slice());
                }
                None => entities_gone.push(key.as_str()),
            }
        }
        let payloads = self.notifications();
        let stepped: Vec<&str> = self.stepped.iter().map(String::as_str).collect();

        let mut statements: Vec<(&str, Vec<Param<'_>>)> = Vec::new();
        macro_rules! add {
            ($needed:expr, $statement:expr, vec![$($param:expr),* $(,)?] $(,)?) => {
                if $needed {
                    statements.push(($statement.as_str(), vec![$($param as Param<'_>),*]));
                }
            };
        }
        add!(!history_gone.is_empty(), &sql.delete_history, vec![&history_gone]);
        add!(!wiped.is_empty(), &sql.delete_inboxes, vec![&wiped]);
        add!(!wiped.is_empty(), &sql.delete_timers_of, vec![&wiped]);
        add!(
            !message_ids.is_empty(),
            &sql.delete_messages,
            vec![&message_ids, &message_keys]
        );
        add!(!deleted_rows.is_empty(), &sql.delete_instances, vec![&deleted_rows]);
        for (rows, statement) in [(&updated, &sql.upsert_instances), (&created, &sql.insert_instances)] {
            add!(
                !rows.ids.is_empty(),
                statement,
                vec![&rows.ids, &rows.created, &rows.statuses, &rows.records],
            );
        }
        add!(
            !history_ids.is_empty(),
            &sql.insert_history,
            vec![&history_ids, &history_positions, &history_events],
        );
        add!(
            !inbox_ids.is_empty(),
            &sql.insert_messages,
            vec![&inbox_ids, &inbox_partitions, &inbox_messages],
        );
        add!(
            !work_keys.is_empty(),
            &sql.insert_work_items,
            vec![&work_keys, &work_partitions, &work_items],
        );
        add!(
            !timer_keys.is_empty(),
            &sql.insert_timers,
            vec![&timer_keys, &timer_fire_at, &timer_ids, &timer_partitions, &timer_items],
        );
        add!(!entities_gone.is_empty(), &sql.delete_entities, vec![&entities_gone]);
        add!(
            !entity_keys.is_empty(),
            &sql.upsert_entities,
            vec![&entity_keys, &entity_records]
        );
        for payload in &payloads {
            add!(true, &sql.notify, vec![&sql.channel, payload]);
        }
        add!(!stepped.is_empty(), &sql.still_ready, vec![&stepped]);

        let mut prepared = Vec::with_capacity(statements.len());
        for (statement, _) in &statements {
            prepared.push(txn.prepare_cached(statement).await?);
        }
        let queries = prepared
            .iter()
            .zip(&statements)
            .map(|(statement, (_, params))| txn.query(statement, params));
        let mut results = futures_util::future::try_join_all(queries).await?;
        if !stepped.is_empty() {
            let still_ready = results.pop().expect("the last statement's rows");
            let ready: Vec<String> = still_ready.iter().map(|row| row.get(0)).collect();
            self.notices.ready.extend(ready);
        }
        Ok(())
    }

    /// The notifications telling the other hosts of this commit: the instances it made ready
    /// that they own, and that something changed (their waiters re-read). A host alone sends
    /// none. (Instances stepped here are this host's own, so they are never in them.)
    fn notifications(&self) -> Vec<String> {
        let shared = self.shared;
        let mut foreign: Vec<&str> = self
            .notices
            .ready
            .iter()
            .map(String::as_str)
            .filter(|id| !shared.owns(id))
            .collect();
        if foreign.is_empty() && shared.alone() {
            return Vec::new();
        }
        foreign.sort_unstable();
        foreign.dedup();
        listener::payloads(&shared.host_id, &foreign)
    }
}

/// A row (if any) and its oldest inbox messages with their keys.
type RowAndInbox<R> = (Option<R>, Vec<(u64, Message)>);

/// Splits the rows of a row-and-inbox read: a NULL key is the row, the others are inbox
/// messages in key order.
fn row_and_inbox<R>(
    rows: Vec<tokio_postgres::Row>,
    table: &'static str,
    decode: fn(&[u8]) -> Result<R, serde_json::Error>,
) -> Result<RowAndInbox<R>, StoreError> {
    let mut record = None;
    let mut messages = Vec::new();
    for row in rows {
        match row.get::<_, Option<i64>>(0) {
            None => record = Some(decode(row.get(1)).map_err(corrupt(table))?),
            Some(key) => messages.push((key as u64, Message::decode(row.get(1)).map_err(corrupt("inbox"))?)),
        }
    }
    Ok((record, messages))
}

type Param<'p> = &'p (dyn tokio_postgres::types::ToSql + Sync);

/// Runs a statement prepared once per connection: a text query would be prepared again on
/// every call, one more round trip each time.
async fn query<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query(&statement, params).await
}

/// [`query`] when `needed`, else no rows and no round trip.
async fn query_if<C: GenericClient>(
    client: &C,
    needed: bool,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    if needed {
        query(client, sql, params).await
    } else {
        Ok(Vec::new())
    }
}

async fn query_opt<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
    Ok(query(client, sql, params).await?.into_iter().next())
}

/// Instance rows of one bulk statement, column by column.
#[derive(Default)]
struct Rows<'a> {
    ids: Vec<&'a str>,
    created: Vec<i64>,
    statuses: Vec<i16>,
    records: Vec<Vec<u8>>,
}

impl<'a> Rows<'a> {
    fn push(&mut self, id: &'a str, record: &InstanceRecord) {
        self.ids.push(id);
        self.created.push(record.created_time.0);
        self.statuses.push(i16::from(record.runtime_status.code()));
        self.records.push(record.encode());
    }
}

/// Ids handed out by this host: blocks of [`ID_BLOCK`] reserved from a database sequence,
/// so ids are unique across hosts and restarts; the next block is reserved in the
/// background before the current one runs out.
#[derive(Default)]
struct IdBlocks {
    state: Mutex<IdState>,
    refilled: Condvar,
    wanted: tokio::sync::Notify,
}

#[derive(Default)]
struct IdState {
    next: u64,
    end: u64,
    spare: Option<u64>,
}

impl IdBlocks {
    fn fill(&self, block_start: u64) {
        let mut state = self.state.lock().expect("id blocks");
        if state.next >= state.end {
            state.next = block_start;
            state.end = block_start + ID_BLOCK;
        } else {
            state.spare = Some(block_start);
        }
        self.refilled.notify_all();
    }

    fn allocate(&self) -> u64 {
        let mut state = self.state.lock().expect("id blocks");
        loop {
            if state.next < state.end {
                let id = state.next;
                state.next += 1;
                return id;
            }
            if let Some(start) = state.spare.take() {
                state.next = start;
                state.end = start + ID_BLOCK;
                self.wanted.notify_one();
                continue;
            }
            // A whole block went by before the spare one came: rare, and brief.
            self.wanted.notify_one();
            state = self
                .refilled
                .wait_timeout(state, Duration::from_millis(100))
                .expect("id blocks")
                .0;
        }
    }
}

async fn run_id_refills(shared: Arc<Shared>) {
    loop {
        shared.ids.wanted.notified().await;
        loop {
            match shared.reserve_id_block().await {
                Ok(start) => {
                    shared.ids.fill(start);
                    break;
                }
                Err(error) => {
                    eprintln!("warning: reserving ids failed, retrying: {error}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

fn corrupt(table: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |source| StoreError::Corrupt { table, source }
}

/// A failure of the database or of the connection to it, as a [`StoreError`].
pub(crate) fn pg_error(error: tokio_postgres::Error) -> StoreError {
    pg_error_of(&error)
}

/// Like [`pg_error`], for a borrowed error. The message does not repeat the store's
/// location: whoever reports it names the store.
fn pg_error_of(error: &tokio_postgres::Error) -> StoreError {
    // The server going away (a restart, a crash, a failover) is unavailability too, though
    // it comes as a server error: connection exceptions (class 08), shutdowns (57P01-57P03),
    // too many connections (53300).
    let server_going_away = error.code().is_some_and(|code| {
        let code = code.code();
        code.starts_with("08") || code.starts_with("57P") || code == "53300"
    });
    if error.as_db_error().is_some() && !server_going_away && !error.is_closed() {
        StoreError::Backend(describe(error))
    } else {
        StoreError::Unavailable(describe(error))
    }
}

fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    match error {
        deadpool_postgres::PoolError::Backend(error) => pg_error_of(&error),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// The whole chain of an error in one line: tokio-postgres keeps the useful part (the
/// server's message, the refused connection) in its sources.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A race with another host's transaction that the same batch wins on a second try.
fn is_retryable(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    error.code().is_some_and(|code| {
        [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::UNIQUE_VIOLATION,
        ]
        .contains(code)
    })
}

#[async_trait]
impl TaskStore for PostgresStore {
    fn subscribe_commits(&self) -> watch::Receiver<u64> {
        self.shared.commits.subscribe()
    }

    fn allocate_id(&self) -> u64 {
        self.shared.ids.allocate()
    }

    async fn apply(&self, writes: &[Write]) -> Result<(Vec<WriteResult>, Notices), StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        self.shared.apply(writes).await
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        let client = self.shared.client().await?;
        let row = query_opt(&client, &self.shared.sql.instance, &[&instance_id])
            .await
            .map_err(pg_error)?;
        row.map(|row| InstanceRecord::decode(row.get(0)).map_err(corrupt("instances")))
            .transpose()
    }

    async fn history(&self, instance_id: &str) -> Result<Vec<HistoryEvent>, StoreError> {
        let client = self.shared.client().await?;
        query(&client, &self.shared.sql.history, &[&instance_id])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|row| HistoryEvent::decode(row.get(0)).map_err(corrupt("history")))
            .collect()
    }

    async fn instance_and_inbox(&self, instance_id: &str, limit: usize) -> Result<InstanceAndInbox, StoreError> {
        let client = self.shared.client().await?;
        let rows = query(
            &client,
            &self.shared.sql.instance_and_inbox,
            &[&instance_id, &(limit as i64)],
        )
        .await
        .map_err(pg_error)?;
        row_and_inbox(rows, "instances", InstanceRecord::decode)
    }

    async fn instances_and_inboxes(
        &self,
        instance_ids: &[String],
        limit: usize,
    ) -> Result<Vec<InstanceAndInbox>, StoreError> {
        let client = self.shared.client().await?;
        let rows = query(
            &client,
            &self.shared.sql.instances_and_inboxes,
            &[&instance_ids, &(limit as i64)],
        )
        .await
        .map_err(pg_error)?;
        let mut read: HashMap<String, InstanceAndInbox> = HashMap::with_capacity(instance_ids.len());
        for row in rows {
            let entry = read.entry(row.get(0)).or_default();
            match row.get::<_, Option<i64>>(1) {
                None => entry.0 = Some(InstanceRecord::decode(row.get(2)).map_err(corrupt("instances"))?),
                Some(key) => entry
                    .1
                    .push((key as u64, Message::decode(row.get(2)).map_err(corrupt("inbox"))?)),
            }
        }
        Ok(instance_ids
            .iter()
            .map(|id| {
                let (record, mut messages) = read.remove(id).unwrap_or_default();
                messages.sort_by_key(|(key, _)| *key);
                (record, messages)
            })
            .collect())
    }

    async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<(Vec<InstanceRecord>, Option<ListCursor>), StoreError> {
        let client = self.shared.client().await?;
        let statuses: Vec<i16> = filter.statuses.iter().map(|status| i16::from(status.code())).collect();
        let from = filter.created_from.map(|time| time.0);
        let to = filter.created_to.map(|time| time.0);
        let after_created = after.map(|cursor| cursor.created);
        let after_id = after.map(|cursor| cursor.instance_id.as_str());
        let wanted = limit.saturating_add(1).min(i64::MAX as usize) as i64;
        let statement = if statuses.is_empty() {
            &self.shared.sql.list
        } else {
            &self.shared.sql.list_by_status
        };
        let rows = client
            .query(
                statement,
                &[
                    &from,
                    &to,
                    &statuses,
                    &filter.id_prefix,
                    &after_created,
                    &after_id,
                    &wanted,
                ],
            )
            .await
            .map_err(pg_error)?;
        let more = rows.len() > limit;
        let mut records = Vec::with_capacity(rows.len().min(limit));
        for row in rows.iter().take(limit) {
            records.push(InstanceRecord::decode(row.get(0)).map_err(corrupt("instances"))?);
        }
        let next = if more {
            records.last().map(|record| ListCursor {
                created: record.created_time.0,
                instance_id: record.instance_id.clone(),
            })
        } else {
            None
        };
        Ok((records, next))
    }

    async fn entity(&self, entity_key: &str) -> Result<Option<EntityRecord>, StoreError> {
        let client = self.shared.client().await?;
        let row = query_opt(&client, &self.shared.sql.entity, &[&entity_key])
            .await
            .map_err(pg_error)?;
        row.map(|row| EntityRecord::decode(row.get(0)).map_err(corrupt("entities")))
            .transpose()
    }

    async fn entity_and_inbox(&self, entity_key: &str, limit: usize) -> Result<EntityAndInbox, StoreError> {
        let client = self.shared.client().await?;
        let rows = query(
            &client,
            &self.shared.sql.entity_and_inbox,
            &[&entity_key, &(limit as i64)],
        )
        .await
        .map_err(pg_error)?;
        row_and_inbox(rows, "entities", EntityRecord::decode)
    }

    async fn list_entities(
        &self,
        name: Option<&str>,
        after: Option<&str>,
        limit: usize,
        filter: &(dyn for<'r> Fn(&'r EntityRecord) -> bool + Send + Sync),
    ) -> Result<(Vec<EntityRecord>, Option<String>), StoreError> {
        const PAGE: i64 = 500;
        let client = self.shared.client().await?;
        let prefix = name.map(|name| format!("@{name}@")).unwrap_or_else(|| "@".to_owned());
        let mut position = after.map(str::to_owned);
        let mut records = Vec::new();
        let mut last = None;
        loop {
            let rows = query(&client, &self.shared.sql.list_entities, &[&prefix, &position, &PAGE])
                .await
                .map_err(pg_error)?;
            let exhausted = (rows.len() as i64) < PAGE;
            for row in &rows {
                let key: String = row.get(0);
                let record = EntityRecord::decode(row.get(1)).map_err(corrupt("entities"))?;
                position = Some(key.clone());
                if !filter(&record) {
                    continue;
                }
                if records.len() == limit {
                    return Ok((records, last));
                }
                last = Some(key);
                records.push(record);
            }
            if exhausted {
                return Ok((records, None));
            }
        }
    }

    async fn recover(&self) -> Result<Recovery, StoreError> {
        let owned = self.owned_partitions();
        self.shared.pending(&owned).await
    }

    async fn instance_count(&self) -> Result<u64, StoreError> {
        let client = self.shared.client().await?;
        let row = query_opt(&client, &self.shared.sql.instance_count, &[])
            .await
            .map_err(pg_error)?;
        Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
    }

    fn owns(&self, key: &str) -> bool {
        self.shared.owns(key)
    }

    fn shares_apps(&self) -> bool {
        true
    }

    // Two transactions in flight measured best here (hello-sequence5 on 2 cores: 1 in
    // flight ~880/s, 2 ~1,000/s, 4 ~800/s): one commits while the next batch fills.
    fn commit_concurrency(&self) -> usize {
        (self.shared.location.pool_size / 4).clamp(1, 2)
    }

    async fn app_catalog(&self) -> Result<AppCatalog, StoreError> {
        let mut client = self.shared.client().await?;
        // One snapshot: the version read names exactly the rows read.
        let txn = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let sql = &self.shared.sql;
        let mut catalog = AppCatalog::default();
        for row in txn.query(&sql.app_current, &[]).await.map_err(pg_error)? {
            catalog.current.insert(row.get(0), row.get(1));
        }
        for row in txn.query(&sql.app_versions, &[]).await.map_err(pg_error)? {
            catalog.versions.insert(row.get(0), row.get(1));
        }
        let version: i64 = txn.query_one(&sql.apps_version, &[]).await.map_err(pg_error)?.get(0);
        catalog.version = version as u64;
        txn.commit().await.map_err(pg_error)?;
        Ok(catalog)
    }

    async fn app_version(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.shared.client().await?;
        let row = query_opt(&client, &self.shared.sql.app_version, &[&hash])
            .await
            .map_err(pg_error)?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn deploy_app(&self, name: &str, hash: &str, bytes: &[u8], only_if_new: bool) -> Result<u64, StoreError> {
        let sql = &self.shared.sql;
        let set_current = if only_if_new {
            &sql.add_app_current
        } else {
            &sql.set_app_current
        };
        self.shared
            .change_apps(async |txn| {
                txn.execute(&sql.keep_app_version, &[&hash, &name, &bytes]).await?;
                txn.execute(set_current, &[&name, &Some(hash)]).await?;
                Ok(())
            })
            .await
    }

    async fn remove_app(&self, name: &str) -> Result<u64, StoreError> {
        let sql = &self.shared.sql;
        self.shared
            .change_apps(async |txn| {
                txn.execute(&sql.set_app_current, &[&name, &None::<&str>]).await?;
                Ok(())
            })
            .await
    }

    async fn drop_app_versions(&self, hashes: &[String]) -> Result<u64, StoreError> {
        let sql = &self.shared.sql;
        self.shared
            .change_apps(async |txn| {
                txn.execute(&sql.drop_app_versions, &[&hashes]).await?;
                Ok(())
            })
            .await
    }

    async fn apps_loaded(&self, version: u64) -> Result<(), StoreError> {
        let client = self.shared.client().await?;
        client
            .execute(
                &self.shared.sql.mark_apps_loaded,
                &[&self.shared.host_id, &(version as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn await_apps_loaded(&self, version: u64, timeout: Duration) -> Result<Vec<String>, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let lease = self.shared.location.lease.as_secs_f64();
        loop {
            let client = self.shared.client().await?;
            let behind: Vec<String> = query(&client, &self.shared.sql.hosts_behind, &[&lease, &(version as i64)])
                .await
                .map_err(pg_error)?
                .iter()
                .map(|row| row.get(0))
                .collect();
            drop(client);
            if behind.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(behind);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn subscribe_apps(&self) -> Option<watch::Receiver<u64>> {
        Some(self.shared.apps.subscribe())
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<StoreEvent>> {
        self.events.lock().expect("events").take()
    }

    async fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for task in self.tasks.lock().expect("task list").drain(..) {
            task.abort();
        }
        if let Err(error) = leases::release_all(&self.shared).await {
            eprintln!("warning: releasing this host's partitions failed (they expire instead): {error}");
        }
    }
}

#[cfg(test)]
mod tests;
