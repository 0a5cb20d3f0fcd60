//! The redb backend: one file, one process, every write one fsynced transaction.
//!
//! The schema is the table definitions below; [`RedbStore`] keeps the invariants of the
//! crate documentation with redb's serializable write transactions.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{
    EntityAndInbox, EntityCommit, InstanceAndInbox, ListCursor, ListFilter, Notices, Recovery, Rejection, StepCommit,
    StoreError, TaskStore, TimerItem, TimerKey, Write, WriteResult, is_entity_key,
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use async_trait::async_trait;
use durable_core::history::{EntityRecord, HistoryEvent, InstanceRecord, Message, RuntimeStatus, Timestamp};
use durable_core::step;

/// instance id -> [`InstanceRecord`]
const INSTANCES: TableDefinition<&str, &[u8]> = TableDefinition::new("instances");
/// (instance id, position) -> [`HistoryEvent`] of the current execution
const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
/// (instance id, arrival key) -> [`Message`]
const INBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("inbox");
/// key -> [`ActivityWorkItem`]
const WORK_ITEMS: TableDefinition<u64, &[u8]> = TableDefinition::new("work_items");
/// (fire at, key) -> [`TimerItem`]
const TIMERS: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("timers");
/// (created time, instance id) -> (): lists instances in creation order.
const BY_CREATED: TableDefinition<(i64, &str), ()> = TableDefinition::new("instances_by_created");
/// (runtime status, created time, instance id) -> (): lists instances of some statuses.
const BY_STATUS: TableDefinition<(u8, i64, &str), ()> = TableDefinition::new("instances_by_status");
/// (instance id, fire at, key) -> (): finds an instance's timers to purge them.
const TIMERS_BY_INSTANCE: TableDefinition<(&str, i64, u64), ()> = TableDefinition::new("timers_by_instance");
/// entity storage key (`@name@key`) -> [`EntityRecord`]
const ENTITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entities");
/// name -> counter
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_ID: &str = "next_id";
/// The key of [`SCHEMA_VERSION`] in [`META`]. That table and this key keep their types in
/// every version, so any host can read which version wrote a store before it opens
/// anything else.
const SCHEMA_VERSION_KEY: &str = "schema_version";

/// The layout of the tables above. A store records the version that wrote it; a host
/// refuses a store of a newer version (its tables may mean something else) and migrates an
/// older one when it opens it. Stores written before versions were recorded have the
/// layout of version 1 and are marked so.
pub(crate) const SCHEMA_VERSION: u64 = 1;

/// How many ids one write of the high-water mark reserves.
const ID_BLOCK: u64 = 1 << 16;

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        StoreError::Backend(error.to_string())
    }
}

impl From<redb::Error> for StoreError {
    fn from(error: redb::Error) -> Self {
        match error {
            redb::Error::DatabaseAlreadyOpen => StoreError::InUse,
            error => StoreError::Backend(error.to_string()),
        }
    }
}

macro_rules! redb_error_into_store_error {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(error: $error) -> Self {
                redb::Error::from(error).into()
            }
        }
    )*};
}
redb_error_into_store_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

fn corrupt(table: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |source| StoreError::Corrupt { table, source }
}

/// The redb store of one task hub.
pub struct RedbStore {
    db: Database,
    next_id: AtomicU64,
    /// The id the store has on disk as its high-water mark: every id below it may be in use.
    /// Ids are reserved in blocks so that most transactions need not write it.
    reserved_id: AtomicU64,
    /// Counts committed transactions, so a waiter re-reads when something changed instead
    /// of polling on an interval.
    commits: tokio::sync::watch::Sender<u64>,
}

impl RedbStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get(SCHEMA_VERSION_KEY)?.map(|value| value.value());
            match found {
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::SchemaTooNew {
                        found,
                        known: SCHEMA_VERSION,
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
                }
            }
        }
        let next_id = {
            for_each_table_open(&txn)?;
            let meta = txn.open_table(META)?;
            meta.get(NEXT_ID)?.map(|value| value.value()).unwrap_or(1)
        };
        txn.commit()?;
        Ok(RedbStore {
            db,
            next_id: AtomicU64::new(next_id),
            reserved_id: AtomicU64::new(next_id),
            commits: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Changes after every committed [`TaskStore::apply`]: wait on it, then read what you need.
    fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// A fresh id, never handed out before (also across restarts).
    fn allocate_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Applies `writes` in one durable write transaction. Returns one result per write,
    /// and what the dispatcher must pick up once the transaction is durable.
    /// Each result counts the instances the write affected (1, or for a purge, how many it
    /// deleted).
    fn apply(&self, writes: &[Write]) -> Result<(Vec<WriteResult>, Notices), StoreError> {
        let txn = self.db.begin_write()?;
        let mut notices = Notices::default();
        let mut results = Vec::with_capacity(writes.len());
        let mut reservation = None;
        {
            let mut tables = Tables::open(&txn)?;
            for write in writes {
                results.push(self.apply_one(&mut tables, write, &mut notices)?);
            }
            // Every id this transaction uses was allocated by now; when one is past the
            // reservation, the transaction moves the reservation on by a block.
            let next_id = self.next_id.load(Ordering::Relaxed);
            if next_id > self.reserved_id.load(Ordering::Relaxed) {
                reservation = Some(next_id + ID_BLOCK);
                tables.meta.insert(NEXT_ID, next_id + ID_BLOCK)?;
            }
        }
        txn.commit()?;
        if let Some(reservation) = reservation {
            self.reserved_id.fetch_max(reservation, Ordering::Relaxed);
        }
        self.commits.send_modify(|count| *count += 1);
        Ok((results, notices))
    }

    fn apply_one(&self, t: &mut Tables<'_>, write: &Write, notices: &mut Notices) -> Result<WriteResult, StoreError> {
        match write {
            Write::Start { record, started } => {
                if let Some(running) = self.start_over(t, record, started, notices)? {
                    return Ok(Err(Rejection::AlreadyExists(running)));
                }
            }
            Write::Deliver { instance_id, message } => {
                let Some(existing) = t.instance(instance_id)? else {
                    return Ok(Err(Rejection::NotFound));
                };
                if existing.runtime_status.is_terminal() {
                    return Ok(Err(Rejection::Gone(existing.runtime_status)));
                }
                self.push_message(t, instance_id, message, notices)?;
            }
            Write::Step(step) => return self.apply_step(t, step, notices),
            Write::Entity(commit) => self.apply_entity(t, commit, notices)?,
            Write::Signal { entity_key, message } => self.push_message(t, entity_key, message, notices)?,
            Write::Purge { instance_ids } => {
                let mut deleted = 0;
                for instance_id in instance_ids {
                    if let Some(existing) = t.instance(instance_id)? {
                        t.delete_instance(&existing)?;
                        deleted += 1;
                    }
                }
                return Ok(if deleted == 0 {
                    Err(Rejection::NotFound)
                } else {
                    Ok(deleted)
                });
            }
            Write::ActivityDone {
                key,
                instance_id,
                message,
            } => {
                if t.work_items.remove(*key)?.is_some() && t.exists(instance_id)? {
                    self.push_message(t, instance_id, message, notices)?;
                }
            }
            Write::TimersFired { timers } => {
                let mut fired = 0;
                for (key, timer) in timers {
                    if !t.remove_timer(&timer.instance_id, *key)? {
                        continue;
                    }
                    fired += 1;
                    let message = step::timer_message(timer, Timestamp::now());
                    self.deliver_if_present(t, &timer.instance_id, &message, notices)?;
                }
                return Ok(Ok(fired));
            }
        }
        Ok(Ok(1))
    }

    fn apply_step(
        &self,
        t: &mut Tables<'_>,
        step: &StepCommit,
        notices: &mut Notices,
    ) -> Result<WriteResult, StoreError> {
        let current = match t.instance(&step.instance_id)? {
            Some(current)
                if current.execution_id == step.execution_id
                    && step
                        .require_status
                        .is_none_or(|status| status == current.runtime_status) =>
            {
                current
            }
            _ => return Ok(Err(Rejection::Stale)),
        };
        let id = step.instance_id.as_str();
        for key in &step.consumed {
            t.inbox.remove((id, *key))?;
        }
        if step.reset_history {
            t.history.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
        }
        for (offset, event) in step.append.iter().enumerate() {
            t.history
                .insert((id, step.history_start + offset as u64), event.encode().as_slice())?;
        }
        t.put_instance(Some(&current), &step.record)?;
        for item in &step.activities {
            let key = self.allocate_id();
            t.work_items
                .insert(key, serde_json::to_vec(item).expect("work items serialize").as_slice())?;
            notices.activities.push((key, item.clone()));
        }
        for timer in &step.timers {
            let key = TimerKey {
                fire_at: timer.fire_at,
                key: self.allocate_id(),
            };
            t.insert_timer(key, timer)?;
            notices.timers.push((key, timer.clone()));
        }
        for (target, message) in &step.messages {
            self.deliver_if_present(t, target, message, notices)?;
        }
        for child in &step.children {
            if self.start_over(t, &child.record, &child.started, notices)?.is_some() {
                self.push_message(t, id, &child.conflict, notices)?;
            }
        }
        if t.inbox.range((id, 0)..=(id, u64::MAX))?.next().is_some() {
            notices.ready.push(step.instance_id.clone());
        }
        Ok(Ok(1))
    }

    fn apply_entity(&self, t: &mut Tables<'_>, commit: &EntityCommit, notices: &mut Notices) -> Result<(), StoreError> {
        let key = commit.entity_key.as_str();
        for inbox_key in &commit.consumed {
            t.inbox.remove((key, *inbox_key))?;
        }
        match &commit.record {
            Some(record) => {
                t.entities.insert(key, record.encode().as_slice())?;
            }
            None => {
                t.entities.remove(key)?;
            }
        }
        for (target, message) in &commit.messages {
            self.deliver_if_present(t, target, message, notices)?;
        }
        for timer in &commit.timers {
            let timer_key = TimerKey {
                fire_at: timer.fire_at,
                key: self.allocate_id(),
            };
            t.insert_timer(timer_key, timer)?;
            notices.timers.push((timer_key, timer.clone()));
        }
        for (record, started) in &commit.starts {
            self.start_over(t, record, started, notices)?;
        }
        if t.inbox.range((key, 0)..=(key, u64::MAX))?.next().is_some() {
            notices.ready.push(commit.entity_key.clone());
        }
        Ok(())
    }

    /// Creates `record` with its `ExecutionStarted`, replacing a finished instance of the
    /// same id; returns the status of a running one instead, which it leaves alone.
    fn start_over(
        &self,
        t: &mut Tables<'_>,
        record: &InstanceRecord,
        started: &Message,
        notices: &mut Notices,
    ) -> Result<Option<RuntimeStatus>, StoreError> {
        let existing = t.instance(&record.instance_id)?;
        if let Some(running) = step::start_blocked_by(existing.as_ref()) {
            return Ok(Some(running));
        }
        if let Some(finished) = existing {
            t.delete_instance(&finished)?;
        }
        t.put_instance(None, record)?;
        self.push_message(t, &record.instance_id, started, notices)?;
        Ok(None)
    }

    /// Delivers to an entity (they exist implicitly) or to an existing orchestration.
    fn deliver_if_present(
        &self,
        t: &mut Tables<'_>,
        target: &str,
        message: &Message,
        notices: &mut Notices,
    ) -> Result<(), StoreError> {
        if is_entity_key(target) || t.exists(target)? {
            self.push_message(t, target, message, notices)?;
        }
        Ok(())
    }

    fn push_message(
        &self,
        t: &mut Tables<'_>,
        instance_id: &str,
        message: &Message,
        notices: &mut Notices,
    ) -> Result<(), StoreError> {
        t.inbox
            .insert((instance_id, self.allocate_id()), message.encode().as_slice())?;
        notices.ready.push(instance_id.to_owned());
        Ok(())
    }

    /// The instance's row.
    fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(INSTANCES)?;
        table
            .get(instance_id)?
            .map(|row| InstanceRecord::decode(row.value()).map_err(corrupt("instances")))
            .transpose()
    }

    /// The current execution's history, in order.
    fn history(&self, instance_id: &str) -> Result<Vec<HistoryEvent>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HISTORY)?;
        let mut events = Vec::new();
        for row in table.range((instance_id, 0)..=(instance_id, u64::MAX))? {
            let (_, value) = row?;
            events.push(HistoryEvent::decode(value.value()).map_err(corrupt("history"))?);
        }
        Ok(events)
    }

    /// The instance's row and up to `limit` of its oldest inbox messages, read together.
    fn instance_and_inbox(&self, instance_id: &str, limit: usize) -> Result<InstanceAndInbox, StoreError> {
        let txn = self.db.begin_read()?;
        let instances = txn.open_table(INSTANCES)?;
        let record = instances
            .get(instance_id)?
            .map(|row| InstanceRecord::decode(row.value()).map_err(corrupt("instances")))
            .transpose()?;
        let inbox = txn.open_table(INBOX)?;
        let mut messages = Vec::new();
        for row in inbox.range((instance_id, 0)..=(instance_id, u64::MAX))?.take(limit) {
            let (key, value) = row?;
            messages.push((key.value().1, Message::decode(value.value()).map_err(corrupt("inbox"))?));
        }
        Ok((record, messages))
    }

    /// Lists instances matching `filter` in (created time, instance id) order, starting
    /// after `after`. Returns at most `limit` rows and, if more may follow, the cursor of the
    /// last one. Instances created meanwhile sort after every existing cursor (their created
    /// time is later), so paging neither skips nor repeats an instance.
    fn list(
        &self,
        filter: &ListFilter,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<(Vec<InstanceRecord>, Option<ListCursor>), StoreError> {
        let txn = self.db.begin_read()?;
        let from = filter.created_from.map_or(i64::MIN, |time| time.0);
        let to = filter.created_to.map_or(i64::MAX, |time| time.0);
        let start = match after {
            Some(cursor) if cursor.created >= from => (cursor.created, cursor.instance_id.clone()),
            _ => (from, String::new()),
        };
        let wanted = limit.saturating_add(1);
        let keep = |created: i64, id: &str| {
            after.is_none_or(|cursor| (created, id) > (cursor.created, cursor.instance_id.as_str()))
                && filter.id_prefix.as_deref().is_none_or(|prefix| id.starts_with(prefix))
        };
        let mut keys: Vec<ListCursor> = Vec::new();
        if filter.statuses.is_empty() {
            let index = txn.open_table(BY_CREATED)?;
            for row in index.range((start.0, start.1.as_str())..)? {
                let (key, _) = row?;
                let (created, id) = key.value();
                if created > to || keys.len() >= wanted {
                    break;
                }
                if keep(created, id) {
                    keys.push(ListCursor {
                        created,
                        instance_id: id.to_owned(),
                    });
                }
            }
        } else {
            let index = txn.open_table(BY_STATUS)?;
            for status in &filter.statuses {
                let mut taken = 0;
                for row in index.range((status.code(), start.0, start.1.as_str())..)? {
                    let (key, _) = row?;
                    let (code, created, id) = key.value();
                    if code != status.code() || created > to || taken >= wanted {
                        break;
                    }
                    if keep(created, id) {
                        keys.push(ListCursor {
                            created,
                            instance_id: id.to_owned(),
                        });
                        taken += 1;
                    }
                }
            }
            keys.sort();
            keys.dedup();
            keys.truncate(wanted);
        }
        let more = keys.len() > limit;
        keys.truncate(limit);
        let instances = txn.open_table(INSTANCES)?;
        let mut records = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Some(row) = instances.get(key.instance_id.as_str())? {
                records.push(InstanceRecord::decode(row.value()).map_err(corrupt("instances"))?);
            }
        }
        let next = if more { keys.last().cloned() } else { None };
        Ok((records, next))
    }

    /// An entity's row.
    fn entity(&self, entity_key: &str) -> Result<Option<EntityRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENTITIES)?;
        table
            .get(entity_key)?
            .map(|row| EntityRecord::decode(row.value()).map_err(corrupt("entities")))
            .transpose()
    }

    /// An entity's row and up to `limit` of its oldest inbox messages, read together.
    fn entity_and_inbox(&self, entity_key: &str, limit: usize) -> Result<EntityAndInbox, StoreError> {
        let txn = self.db.begin_read()?;
        let entities = txn.open_table(ENTITIES)?;
        let record = entities
            .get(entity_key)?
            .map(|row| EntityRecord::decode(row.value()).map_err(corrupt("entities")))
            .transpose()?;
        let inbox = txn.open_table(INBOX)?;
        let mut messages = Vec::new();
        for row in inbox.range((entity_key, 0)..=(entity_key, u64::MAX))?.take(limit) {
            let (key, value) = row?;
            messages.push((key.value().1, Message::decode(value.value()).map_err(corrupt("inbox"))?));
        }
        Ok((record, messages))
    }

    /// Lists entities in storage-key order after `after`, optionally of one name (lowercase),
    /// filtered by `filter` on the row. Returns at most `limit` rows and, if more may follow,
    /// the key of the last one.
    fn list_entities(
        &self,
        name: Option<&str>,
        after: Option<&str>,
        limit: usize,
        filter: impl Fn(&EntityRecord) -> bool,
    ) -> Result<(Vec<EntityRecord>, Option<String>), StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENTITIES)?;
        let prefix = name.map(|name| format!("@{name}@")).unwrap_or_else(|| "@".to_owned());
        let start = after.map(str::to_owned).unwrap_or_else(|| prefix.clone());
        let mut records = Vec::new();
        let mut last = None;
        for row in table.range(start.as_str()..)? {
            let (key, value) = row?;
            let key = key.value();
            if !key.starts_with(&prefix) {
                break;
            }
            if Some(key) == after {
                continue;
            }
            let record = EntityRecord::decode(value.value()).map_err(corrupt("entities"))?;
            if !filter(&record) {
                continue;
            }
            if records.len() == limit {
                return Ok((records, last));
            }
            last = Some(key.to_owned());
            records.push(record);
        }
        Ok((records, None))
    }

    /// Everything that was pending when the store was last closed (or the host killed).
    fn recover(&self) -> Result<Recovery, StoreError> {
        let txn = self.db.begin_read()?;
        let mut recovery = Recovery::default();
        let inbox = txn.open_table(INBOX)?;
        for row in inbox.iter()? {
            let (key, _) = row?;
            let instance_id = key.value().0;
            if recovery.ready.last().is_none_or(|last| last != instance_id) {
                recovery.ready.push(instance_id.to_owned());
            }
        }
        let work_items = txn.open_table(WORK_ITEMS)?;
        for row in work_items.iter()? {
            let (key, value) = row?;
            let item = serde_json::from_slice(value.value()).map_err(corrupt("work_items"))?;
            recovery.activities.push((key.value(), item));
        }
        let timers = txn.open_table(TIMERS)?;
        for row in timers.iter()? {
            let (key, value) = row?;
            let (fire_at, key) = key.value();
            let timer = serde_json::from_slice(value.value()).map_err(corrupt("timers"))?;
            recovery.timers.push((
                TimerKey {
                    fire_at: Timestamp(fire_at),
                    key,
                },
                timer,
            ));
        }
        Ok(recovery)
    }

    /// Number of instances in the store.
    fn instance_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(INSTANCES)?.len()?)
    }
}

fn for_each_table_open(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    Tables::open(txn).map(drop)
}

/// The open tables of one write transaction.
struct Tables<'txn> {
    instances: redb::Table<'txn, &'static str, &'static [u8]>,
    by_created: redb::Table<'txn, (i64, &'static str), ()>,
    by_status: redb::Table<'txn, (u8, i64, &'static str), ()>,
    history: redb::Table<'txn, (&'static str, u64), &'static [u8]>,
    inbox: redb::Table<'txn, (&'static str, u64), &'static [u8]>,
    work_items: redb::Table<'txn, u64, &'static [u8]>,
    timers: redb::Table<'txn, (i64, u64), &'static [u8]>,
    timers_by_instance: redb::Table<'txn, (&'static str, i64, u64), ()>,
    entities: redb::Table<'txn, &'static str, &'static [u8]>,
    meta: redb::Table<'txn, &'static str, u64>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            instances: txn.open_table(INSTANCES)?,
            by_created: txn.open_table(BY_CREATED)?,
            by_status: txn.open_table(BY_STATUS)?,
            history: txn.open_table(HISTORY)?,
            inbox: txn.open_table(INBOX)?,
            work_items: txn.open_table(WORK_ITEMS)?,
            timers: txn.open_table(TIMERS)?,
            timers_by_instance: txn.open_table(TIMERS_BY_INSTANCE)?,
            entities: txn.open_table(ENTITIES)?,
            meta: txn.open_table(META)?,
        })
    }

    /// Whether the instance has a row, without decoding it.
    fn exists(&self, instance_id: &str) -> Result<bool, StoreError> {
        Ok(self.instances.get(instance_id)?.is_some())
    }

    fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        self.instances
            .get(instance_id)?
            .map(|row| InstanceRecord::decode(row.value()).map_err(corrupt("instances")))
            .transpose()
    }

    /// Writes an instance row and keeps the indexes in step with it; `old` is the row it
    /// replaces, if any.
    fn put_instance(&mut self, old: Option<&InstanceRecord>, record: &InstanceRecord) -> Result<(), StoreError> {
        let id = record.instance_id.as_str();
        self.instances.insert(id, record.encode().as_slice())?;
        // Most steps change neither the status nor the creation time: their index entries stay.
        let indexed_as_before = old
            .is_some_and(|old| old.runtime_status == record.runtime_status && old.created_time == record.created_time);
        if indexed_as_before {
            return Ok(());
        }
        if let Some(old) = old {
            self.by_created.remove((old.created_time.0, id))?;
            self.by_status
                .remove((old.runtime_status.code(), old.created_time.0, id))?;
        }
        self.by_created.insert((record.created_time.0, id), ())?;
        self.by_status
            .insert((record.runtime_status.code(), record.created_time.0, id), ())?;
        Ok(())
    }

    /// Removes an instance: its row and index entries, history, inbox and timers.
    fn delete_instance(&mut self, record: &InstanceRecord) -> Result<(), StoreError> {
        let id = record.instance_id.as_str();
        self.instances.remove(id)?;
        self.by_created.remove((record.created_time.0, id))?;
        self.by_status
            .remove((record.runtime_status.code(), record.created_time.0, id))?;
        self.history.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
        self.inbox.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
        let mut timers = Vec::new();
        for row in self
            .timers_by_instance
            .range((id, i64::MIN, 0)..=(id, i64::MAX, u64::MAX))?
        {
            let (key, _) = row?;
            let (_, fire_at, key) = key.value();
            timers.push(TimerKey {
                fire_at: Timestamp(fire_at),
                key,
            });
        }
        for key in timers {
            self.remove_timer(id, key)?;
        }
        Ok(())
    }

    fn insert_timer(&mut self, key: TimerKey, timer: &TimerItem) -> Result<(), StoreError> {
        let encoded = serde_json::to_vec(timer).expect("timers serialize");
        self.timers.insert((key.fire_at.0, key.key), encoded.as_slice())?;
        self.timers_by_instance
            .insert((timer.instance_id.as_str(), key.fire_at.0, key.key), ())?;
        Ok(())
    }

    /// Removes a timer; false if it was already gone (fired or purged).
    fn remove_timer(&mut self, instance_id: &str, key: TimerKey) -> Result<bool, StoreError> {
        self.timers_by_instance.remove((instance_id, key.fire_at.0, key.key))?;
        Ok(self.timers.remove((key.fire_at.0, key.key))?.is_some())
    }
}

#[async_trait]
impl TaskStore for RedbStore {
    fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        RedbStore::subscribe_commits(self)
    }

    fn allocate_id(&self) -> u64 {
        RedbStore::allocate_id(self)
    }

    // redb's calls block for at most one fsync; the engine runs the committer on a thread
    // of its own, and reads are short, so they run inline rather than on a blocking pool.
    async fn apply(&self, writes: &[Write]) -> Result<(Vec<WriteResult>, Notices), StoreError> {
        RedbStore::apply(self, writes)
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        RedbStore::instance(self, instance_id)
    }

    async fn history(&self, instance_id: &str) -> Result<Vec<HistoryEvent>, StoreError> {
        RedbStore::history(self, instance_id)
    }

    async fn instance_and_inbox(&self, instance_id: &str, limit: usize) -> Result<InstanceAndInbox, StoreError> {
        RedbStore::instance_and_inbox(self, instance_id, limit)
    }

    async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<(Vec<InstanceRecord>, Option<ListCursor>), StoreError> {
        RedbStore::list(self, filter, after, limit)
    }

    async fn entity(&self, entity_key: &str) -> Result<Option<EntityRecord>, StoreError> {
        RedbStore::entity(self, entity_key)
    }

    async fn entity_and_inbox(&self, entity_key: &str, limit: usize) -> Result<EntityAndInbox, StoreError> {
        RedbStore::entity_and_inbox(self, entity_key, limit)
    }

    async fn list_entities(
        &self,
        name: Option<&str>,
        after: Option<&str>,
        limit: usize,
        filter: &(dyn for<'r> Fn(&'r EntityRecord) -> bool + Send + Sync),
    ) -> Result<(Vec<EntityRecord>, Option<String>), StoreError> {
        RedbStore::list_entities(self, name, after, limit, filter)
    }

    async fn recover(&self) -> Result<Recovery, StoreError> {
        RedbStore::recover(self)
    }

    async fn instance_count(&self) -> Result<u64, StoreError> {
        RedbStore::instance_count(self)
    }
}

#[cfg(test)]
mod tests {
    //! The conformance suite against redb, each case in a fresh directory removed after it.

    use std::sync::Arc;

    use super::RedbStore;
    use crate::conformance::{self, Backend};

    struct Redb(tempfile::TempDir);

    #[async_trait::async_trait]
    impl Backend for Redb {
        async fn open(&self) -> Arc<dyn crate::TaskStore> {
            Arc::new(RedbStore::open(&self.0.path().join("store.redb")).expect("the store opens"))
        }
    }

    fn backend() -> Redb {
        Redb(tempfile::tempdir().expect("a temporary directory"))
    }

    conformance::suite!(backend);

    fn set_schema_version(path: &std::path::Path, version: Option<u64>) {
        let db = redb::Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(super::META).unwrap();
            match version {
                Some(version) => meta.insert(super::SCHEMA_VERSION_KEY, version).unwrap(),
                None => meta.remove(super::SCHEMA_VERSION_KEY).unwrap(),
            };
        }
        txn.commit().unwrap();
    }

    fn schema_version(path: &std::path::Path) -> Option<u64> {
        use redb::ReadableDatabase;
        let db = redb::Database::create(path).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(super::META).unwrap();
        meta.get(super::SCHEMA_VERSION_KEY).unwrap().map(|value| value.value())
    }

    #[test]
    fn a_store_written_by_a_newer_host_is_refused_with_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        drop(RedbStore::open(&path).unwrap());
        assert_eq!(schema_version(&path), Some(super::SCHEMA_VERSION));
        set_schema_version(&path, Some(super::SCHEMA_VERSION + 1));
        let Err(error) = RedbStore::open(&path) else {
            panic!("a newer store must be refused");
        };
        assert!(matches!(error, crate::StoreError::SchemaTooNew { found, known }
            if found == super::SCHEMA_VERSION + 1 && known == super::SCHEMA_VERSION));
        assert!(error.to_string().contains("newer"), "{error}");
        assert_eq!(
            schema_version(&path),
            Some(super::SCHEMA_VERSION + 1),
            "a refused store is left as it was"
        );
    }

    #[test]
    fn a_store_from_before_schema_versions_opens_and_is_marked_version_1() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let signal = crate::Write::Signal {
            entity_key: "@counter@c".into(),
            message: durable_core::step::entity_operation(
                "add".into(),
                None,
                None,
                None,
                durable_core::history::Timestamp(1),
            ),
        };
        {
            let store = RedbStore::open(&path).unwrap();
            store.apply(&[signal]).unwrap();
        }
        set_schema_version(&path, None);
        let store = RedbStore::open(&path).unwrap();
        let (_, inbox) = store.entity_and_inbox("@counter@c", 10).unwrap();
        assert_eq!(inbox.len(), 1, "the data is kept");
        drop(store);
        assert_eq!(schema_version(&path), Some(1));
    }
}
