//! The storage contract: what every backend stores and how the engine talks to it.
//!
//! The engine speaks only [`TaskStore`] and the types here; a backend (redb today,
//! PostgreSQL next) implements the trait and passes the conformance suite
//! ([`crate::conformance`]). The rules a backend must keep are the invariants in the
//! crate documentation.

use async_trait::async_trait;

use durable_core::history::{EntityRecord, HistoryEvent, InstanceRecord, Message, RuntimeStatus, Timestamp};
// The commits of a step are decided by the core; the contract carries them as they are.
pub use durable_core::step::{ActivityWorkItem, ChildStart, EntityCommit, StepCommit, TimerItem, is_entity_key};

/// Errors of the storage layer. Neutral: no backend's types appear in it, so the crates
/// above handle every backend's failures alike.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store is open in another process (redb allows one).
    #[error("the store is in use by another process")]
    InUse,
    /// The store is being shut down; the write was not attempted.
    #[error("the host is shutting down")]
    Closed,
    /// The store was written by a newer host: its layout may mean something this host does
    /// not know, so it is not opened (and not changed).
    #[error(
        "the store's schema version is {found}, newer than this host knows ({known}): \
         serve it with a durable at least as new as the one that wrote it"
    )]
    SchemaTooNew {
        /// The version the store records.
        found: u64,
        /// The newest version this host knows.
        known: u64,
    },
    /// The backend cannot be reached now (a lost or refused database connection): the
    /// write was not committed, and the same call may succeed once the database is back.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The backend failed: I/O, a damaged file, a malformed statement, ...
    #[error("storage error: {0}")]
    Backend(String),
    /// A stored row could not be decoded.
    #[error("corrupt {table} row: {source}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The decoding error.
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Whether the store is out of reach for now (a lost database, a host shutting down):
    /// nothing was written, and the same call may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Closed)
    }
}

/// The store key of a timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    /// When it fires.
    pub fire_at: Timestamp,
    /// Unique key.
    pub key: u64,
}

/// One write; [`TaskStore::apply`] commits many in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Create an instance (a client's start). Replaces a finished instance with the same id.
    Start {
        /// The new row, `Pending`.
        record: Box<InstanceRecord>,
        /// Its `ExecutionStarted` message.
        started: Message,
    },
    /// Put a message in an existing, unfinished instance's inbox (raise event, terminate,
    /// suspend, resume).
    Deliver {
        /// The target.
        instance_id: String,
        /// The message.
        message: Message,
    },
    /// Commit an orchestration step.
    Step(Box<StepCommit>),
    /// Commit a batch of entity operations.
    Entity(Box<EntityCommit>),
    /// Put a message in an entity's inbox (entities exist implicitly).
    Signal {
        /// The entity's storage key.
        entity_key: String,
        /// The message.
        message: Message,
    },
    /// Delete instances: row, history, inbox and timers. Affects as many as existed.
    Purge {
        /// The instances.
        instance_ids: Vec<String>,
    },
    /// Deliver an activity's result and remove its work item.
    ActivityDone {
        /// The work item's key.
        key: u64,
        /// The orchestration to deliver to.
        instance_id: String,
        /// `TaskCompleted` or `TaskFailed`.
        message: Message,
    },
    /// Deliver due timers' `TimerFired` (or their scheduled message) and remove them. Timers
    /// fall due in crowds, so they go in batches.
    TimersFired {
        /// The timers, with their keys.
        timers: Vec<(TimerKey, TimerItem)>,
    },
}

impl Write {
    /// How much of a transaction's budget this write takes: one per row it changes, roughly.
    pub fn weight(&self) -> usize {
        match self {
            Write::TimersFired { timers } => timers.len().max(1),
            _ => 1,
        }
    }
}

/// Why a write was not applied (the rest of its transaction still commits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// No such instance.
    NotFound,
    /// The instance has finished.
    Gone(RuntimeStatus),
    /// An instance with this id is still running.
    AlreadyExists(RuntimeStatus),
    /// The step's execution is no longer the instance's current one.
    Stale,
    /// This host no longer owns the instance's partition (its lease was taken over by
    /// another host): the step was run on a view that may be out of date, and writes
    /// nothing.
    Fenced,
}

/// The outcome of one write: how many instances it affected, or why it was not applied.
pub type WriteResult = Result<u64, Rejection>;

/// What a committed transaction asks the dispatcher to pick up.
#[derive(Debug, Default)]
pub struct Notices {
    /// Instances with new inbox messages.
    pub ready: Vec<String>,
    /// New activity work items.
    pub activities: Vec<(u64, ActivityWorkItem)>,
    /// New timers.
    pub timers: Vec<(TimerKey, TimerItem)>,
}

/// Everything pending after a restart.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Instances with inbox messages.
    pub ready: Vec<String>,
    /// Work items not yet done.
    pub activities: Vec<(u64, ActivityWorkItem)>,
    /// Timers not yet fired.
    pub timers: Vec<(TimerKey, TimerItem)>,
}

/// Work a shared backend found for this host outside its own commits.
#[derive(Debug)]
pub enum StoreEvent {
    /// Another host's commit put messages in the inboxes of these instances or entities,
    /// which this host owns.
    Ready(Vec<String>),
    /// This host took over partitions: what is pending in them. The engine must also forget
    /// what it cached of instances it may have owned before (another host may have stepped
    /// them meanwhile).
    Gained(Recovery),
}

/// The deployed apps of a hub whose store several hosts share: kept in the store so that
/// every host runs the same versions, and an orchestration pinned to a version finds it on
/// whichever host steps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppCatalog {
    /// App name -> content hash of its current version (`None`: the app was removed).
    pub current: std::collections::BTreeMap<String, Option<String>>,
    /// Content hash -> app name, for every version kept.
    pub versions: std::collections::BTreeMap<String, String>,
    /// Counts the catalog's changes: a host that mirrored the catalog at this count
    /// reports it ([`TaskStore::apps_loaded`]).
    pub version: u64,
}

/// Which instances [`TaskStore::list`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Created at or after.
    pub created_from: Option<Timestamp>,
    /// Created at or before.
    pub created_to: Option<Timestamp>,
    /// Any of these statuses; empty means all.
    pub statuses: Vec<RuntimeStatus>,
    /// Instance ids starting with this.
    pub id_prefix: Option<String>,
}

/// A position in the listing order: (created time, instance id).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListCursor {
    /// Created time, microseconds.
    pub created: i64,
    /// Instance id.
    pub instance_id: String,
}

impl ListCursor {
    /// An opaque token for the `x-ms-continuation-token` header (visible ASCII).
    pub fn to_token(&self) -> String {
        let bytes = format!("{}|{}", self.created, self.instance_id);
        bytes.as_bytes().iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Parses a token made by [`ListCursor::to_token`]; `None` for anything else.
    pub fn from_token(token: &str) -> Option<Self> {
        let token = token.trim();
        if !token.len().is_multiple_of(2) || !token.is_ascii() {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&token[i..i + 2], 16).ok())
            .collect();
        let text = String::from_utf8(bytes?).ok()?;
        let (created, instance_id) = text.split_once('|')?;
        Some(ListCursor {
            created: created.parse().ok()?,
            instance_id: instance_id.to_owned(),
        })
    }
}

/// An entity's row (if any) and its oldest inbox messages with their keys.
pub type EntityAndInbox = (Option<EntityRecord>, Vec<(u64, Message)>);

/// An instance's row (if any) and its oldest inbox messages with their keys.
pub type InstanceAndInbox = (Option<InstanceRecord>, Vec<(u64, Message)>);

/// The durable store of one task hub, as the engine sees it.
///
/// Reads see only committed transactions. [`TaskStore::apply`] is the only write: one call
/// is one durable transaction, acknowledged only once committed.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Changes after every committed [`TaskStore::apply`]: wait on it, then read what you
    /// need.
    fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64>;

    /// A fresh id, never handed out before (also across restarts and, for a shared
    /// backend, across hosts). Execution ids and store keys come from it.
    fn allocate_id(&self) -> u64;

    /// Applies `writes` in one durable write transaction. Returns one result per write,
    /// and what the dispatcher must pick up once the transaction is durable. Each result
    /// counts the instances the write affected (1, or for a purge, how many it deleted).
    async fn apply(&self, writes: &[Write]) -> Result<(Vec<WriteResult>, Notices), StoreError>;

    /// The instance's row.
    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError>;

    /// The current execution's history, in order.
    async fn history(&self, instance_id: &str) -> Result<Vec<HistoryEvent>, StoreError>;

    /// The instance's row and up to `limit` of its oldest inbox messages, read together.
    async fn instance_and_inbox(&self, instance_id: &str, limit: usize) -> Result<InstanceAndInbox, StoreError>;

    /// [`TaskStore::instance_and_inbox`] of several instances, in the order given; a
    /// database backend reads them in one round trip.
    async fn instances_and_inboxes(
        &self,
        instance_ids: &[String],
        limit: usize,
    ) -> Result<Vec<InstanceAndInbox>, StoreError> {
        let mut read = Vec::with_capacity(instance_ids.len());
        for instance_id in instance_ids {
            read.push(self.instance_and_inbox(instance_id, limit).await?);
        }
        Ok(read)
    }

    /// Lists instances matching `filter` in (created time, instance id) order, starting
    /// after `after`. Returns at most `limit` rows and, if more may follow, the cursor of the
    /// last one. Instances created meanwhile sort after every existing cursor (their created
    /// time is later), so paging neither skips nor repeats an instance.
    async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<(Vec<InstanceRecord>, Option<ListCursor>), StoreError>;

    /// An entity's row.
    async fn entity(&self, entity_key: &str) -> Result<Option<EntityRecord>, StoreError>;

    /// An entity's row and up to `limit` of its oldest inbox messages, read together.
    async fn entity_and_inbox(&self, entity_key: &str, limit: usize) -> Result<EntityAndInbox, StoreError>;

    /// Lists entities in storage-key order after `after`, optionally of one name (lowercase),
    /// filtered by `filter` on the row. Returns at most `limit` rows and, if more may follow,
    /// the key of the last one.
    async fn list_entities(
        &self,
        name: Option<&str>,
        after: Option<&str>,
        limit: usize,
        filter: &(dyn for<'r> Fn(&'r EntityRecord) -> bool + Send + Sync),
    ) -> Result<(Vec<EntityRecord>, Option<String>), StoreError>;

    /// Everything that was pending when the store was last closed (or the host killed).
    async fn recover(&self) -> Result<Recovery, StoreError>;

    /// Number of instances in the store.
    async fn instance_count(&self) -> Result<u64, StoreError>;

    /// How many [`TaskStore::apply`] calls the engine may have in flight at once: one for a
    /// store that serializes its write transactions anyway (redb), more for a database.
    /// Writes that depend on each other are never in flight together (the engine waits for
    /// a step's acknowledgement before the next step of that instance).
    fn commit_concurrency(&self) -> usize {
        1
    }

    /// Whether this host steps `key` (an instance id or entity key) now. A backend that one
    /// host owns answers true; a shared one, whether this host holds the key's partition.
    fn owns(&self, _key: &str) -> bool {
        true
    }

    /// The stream of [`StoreEvent`]s, taken once by the engine; `None` for a backend whose
    /// only writer is this host.
    fn take_events(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<StoreEvent>> {
        None
    }

    /// Whether the store keeps the hub's apps ([`AppCatalog`]) for several hosts. A store
    /// with one host leaves them to the host's apps directory.
    fn shares_apps(&self) -> bool {
        false
    }

    /// The hub's deployed apps, for a store that [shares them](TaskStore::shares_apps).
    async fn app_catalog(&self) -> Result<AppCatalog, StoreError> {
        Ok(AppCatalog::default())
    }

    /// The component of a version in the [`AppCatalog`].
    async fn app_version(&self, _hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    /// Keeps version `hash` of app `name` (if not kept already) and makes it the app's
    /// current one; with `only_if_new`, only when the catalog has no entry for the app yet (a
    /// host starting with a declared app does not undo a deployment). Returns the catalog's
    /// new version.
    async fn deploy_app(&self, _name: &str, _hash: &str, _bytes: &[u8], _only_if_new: bool) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Marks app `name` removed; its versions stay until dropped. Returns the catalog's new
    /// version, as [`TaskStore::deploy_app`] does.
    async fn remove_app(&self, _name: &str) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Forgets versions no host needs any more.
    async fn drop_app_versions(&self, _hashes: &[String]) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Records that this host runs the catalog as of `version`.
    async fn apps_loaded(&self, _version: u64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Waits until every live host runs the catalog as of `version` (a deployment returns
    /// once every host serves it), at most `timeout`. Returns the hosts still behind.
    async fn await_apps_loaded(&self, _version: u64, _timeout: std::time::Duration) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Changes whenever another host changed the [`AppCatalog`].
    fn subscribe_apps(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Hands this host's share of the work to the others at once (a graceful stop); the
    /// store takes no more writes of steps afterwards.
    async fn close(&self) {}
}
