//! Runs one step of one orchestration, or one activity, against the store and the wasm
//! layer. A step's result is a single [`StepCommit`]: the dispatcher commits it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use durable_core::history::{
    EntityCaller, EntityId, EpisodeResult, EventKind, FailureDetails, HistoryEvent, InstanceRecord, Message, Timestamp,
};
use durable_core::replay::{self, Disposition, EpisodeOutcome, ExecutionState, ReplayStop};
use durable_core::step::{self, PendingOperation, StepLimits};
use durable_store::{ActivityWorkItem, EntityCommit, InstanceAndInbox, StepCommit, StoreError, TaskStore};
use durable_wasm::{App, EntityHost, FunctionKind, GuestTrap, IdleCharge, IdleMemory, OrchestrationGuest, WasmRuntime};

/// How many inbox messages one step takes at most.
const INBOX_BATCH: usize = 1_000;

/// The apps of a task hub: the deployed version of each, the function names they export,
/// and the older versions still kept because unfinished orchestrations started on them.
///
/// Deployment changes it while the hub runs, so every lookup returns an `Arc<App>` the
/// caller keeps for the length of its call.
pub struct Apps {
    catalog: std::sync::RwLock<Catalog>,
    changes: std::sync::atomic::AtomicU64,
    /// The hub's budget of idle instance memory.
    idle: Arc<IdleMemory>,
}

/// One deployed app.
#[derive(Clone)]
pub struct Deployment {
    /// The app's name in its hub.
    pub name: String,
    /// Its current version.
    pub app: Arc<App>,
    /// Payload and history limits of its orchestrations.
    pub limits: crate::config::Limits,
}

#[derive(Default)]
struct Catalog {
    current: Vec<Deployment>,
    /// Every version in memory by content hash: the current ones and those kept for
    /// orchestrations started on them.
    versions: HashMap<String, (Arc<App>, crate::config::Limits)>,
    functions: HashMap<String, (Arc<App>, FunctionKind)>,
    /// Entities by lowercased name: entity names are case-insensitive.
    entities: HashMap<String, Arc<App>>,
}

impl Catalog {
    fn reindex(&mut self) {
        self.functions.clear();
        self.entities.clear();
        for deployment in &self.current {
            let app = &deployment.app;
            for (name, kind) in &app.functions {
                if *kind == FunctionKind::Entity {
                    self.entities.entry(name.to_lowercase()).or_insert_with(|| app.clone());
                } else {
                    self.functions
                        .entry(name.clone())
                        .or_insert_with(|| (app.clone(), *kind));
                }
            }
            self.versions
                .insert(app.hash.clone(), (app.clone(), deployment.limits.clone()));
        }
    }
}

impl Apps {
    /// Apps named by their file stems, with default limits; a name exported twice resolves
    /// to the first app.
    pub fn new(apps: Vec<App>) -> Self {
        Apps::deployed(
            apps.into_iter()
                .map(|app| Deployment {
                    name: crate::config::app_name_of(&app.path),
                    app: Arc::new(app),
                    limits: crate::config::Limits::default(),
                })
                .collect(),
        )
    }

    /// The given deployments, in resolution order.
    pub fn deployed(current: Vec<Deployment>) -> Self {
        let mut catalog = Catalog {
            current,
            ..Catalog::default()
        };
        catalog.reindex();
        Apps {
            catalog: std::sync::RwLock::new(catalog),
            changes: std::sync::atomic::AtomicU64::new(0),
            idle: IdleMemory::new(crate::config::Limits::default().idle_memory_bytes),
        }
    }

    /// Sets the hub's budget of idle instance memory (pooled activity instances and live
    /// orchestrations of all its apps).
    pub fn with_idle_memory_bytes(mut self, limit: usize) -> Self {
        self.idle = IdleMemory::new(limit);
        self
    }

    /// The hub's budget of idle instance memory.
    pub fn idle_memory(&self) -> &Arc<IdleMemory> {
        &self.idle
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Deploys `deployment`, replacing the app of the same name (whose version stays
    /// available to the orchestrations started on it). New apps resolve after older ones.
    pub fn deploy(&self, deployment: Deployment) {
        let mut catalog = self.write();
        match catalog
            .current
            .iter_mut()
            .find(|current| current.name == deployment.name)
        {
            Some(current) => *current = deployment,
            None => catalog.current.push(deployment),
        }
        catalog.reindex();
        self.changes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Removes app `name`; its version stays available to orchestrations started on it
    /// until [`Apps::retain_versions`] drops it. False if there is no such app.
    pub fn remove(&self, name: &str) -> bool {
        let mut catalog = self.write();
        let before = catalog.current.len();
        catalog.current.retain(|current| current.name != name);
        let removed = catalog.current.len() != before;
        catalog.reindex();
        self.changes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        removed
    }

    /// Drops every version that is neither current, nor in `in_use`, nor held by a live
    /// orchestration or a running call (an instance whose first step is under way is pinned
    /// only when that step commits; its live entry holds the version until then). Returns
    /// the hashes of the versions dropped.
    pub fn retain_versions(&self, in_use: &std::collections::HashSet<String>) -> Vec<String> {
        let mut catalog = self.write();
        let current: std::collections::HashSet<String> = catalog
            .current
            .iter()
            .map(|deployment| deployment.app.hash.clone())
            .collect();
        let dropped: Vec<String> = catalog
            .versions
            .iter()
            .filter(|(hash, (app, _))| {
                !current.contains(*hash) && !in_use.contains(*hash) && Arc::strong_count(app) == 1
            })
            .map(|(hash, _)| hash.clone())
            .collect();
        for hash in &dropped {
            catalog.versions.remove(hash);
        }
        if !dropped.is_empty() {
            self.changes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        dropped
    }

    /// Keeps an older version available (after a restart, for the orchestrations that
    /// started on it).
    pub fn keep_version(&self, app: Arc<App>, limits: crate::config::Limits) {
        let mut catalog = self.write();
        catalog.versions.entry(app.hash.clone()).or_insert((app, limits));
    }

    /// Counts changes, so holders of per-version state know when to look for dropped ones.
    pub fn change_count(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The current app exporting function `name` of `kind`.
    pub fn find(&self, name: &str, kind: FunctionKind) -> Option<Arc<App>> {
        match self.read().functions.get(name) {
            Some((app, found)) if *found == kind => Some(app.clone()),
            _ => None,
        }
    }

    /// The current app exporting entity `name` (any case).
    pub fn find_entity(&self, name: &str) -> Option<Arc<App>> {
        self.read().entities.get(&name.to_lowercase()).cloned()
    }

    /// The version with content hash `hash`, if still kept.
    pub fn version(&self, hash: &str) -> Option<Arc<App>> {
        self.read().versions.get(hash).map(|(app, _)| app.clone())
    }

    /// The limits that apply to orchestrations of version `hash` (the defaults if unknown).
    pub fn limits_of(&self, hash: &str) -> crate::config::Limits {
        self.read()
            .versions
            .get(hash)
            .map(|(_, limits)| limits.clone())
            .unwrap_or_default()
    }

    /// The current deployments, in resolution order.
    pub fn deployments(&self) -> Vec<Deployment> {
        self.read().current.clone()
    }

    /// The hashes of every version kept.
    pub fn version_hashes(&self) -> Vec<String> {
        self.read().versions.keys().cloned().collect()
    }

    /// Every current app.
    pub fn all(&self) -> Vec<Arc<App>> {
        self.read()
            .current
            .iter()
            .map(|deployment| deployment.app.clone())
            .collect()
    }
}

/// A live orchestration: its guest (a wasm instance of its own) plus what replay knows of
/// its history.
struct Live {
    app: Arc<App>,
    guest: OrchestrationGuest,
    execution_id: u64,
    state: ExecutionState,
    last_used: u64,
    /// Its instance's memory, held against the idle budgets while it stays live.
    charge: Option<IdleCharge>,
}

/// Runs the steps of a task hub: orchestration steps, keeping live orchestrations in a
/// bounded cache so a new event costs one guest call instead of a replay, and entity
/// batches, in one wasm instance per app version.
pub struct StepRunner {
    wasm: Arc<WasmRuntime>,
    apps: Arc<Apps>,
    store: Arc<dyn TaskStore>,
    /// The wasm instance running each app version's entities, by content hash.
    entity_hosts: HashMap<String, EntityHost>,
    /// `apps.change_count()` when `entity_hosts` was last swept of dropped versions.
    swept_at: u64,
    live: HashMap<String, Live>,
    recency: BTreeMap<u64, String>,
    tick: u64,
    capacity: usize,
}

impl StepRunner {
    /// Creates the runner; at most `capacity` orchestrations stay live.
    pub fn new(wasm: Arc<WasmRuntime>, apps: Arc<Apps>, store: Arc<dyn TaskStore>, capacity: usize) -> Self {
        StepRunner {
            wasm,
            apps,
            store,
            entity_hosts: HashMap::new(),
            swept_at: 0,
            live: HashMap::new(),
            recency: BTreeMap::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// Number of live orchestrations.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Forgets a live orchestration (its step did not commit, so the guest is ahead of the
    /// store).
    pub fn evict(&mut self, instance_id: &str) {
        if let Some(live) = self.live.remove(instance_id) {
            self.recency.remove(&live.last_used);
        }
    }

    /// Forgets every live orchestration (their next events replay them from the store).
    pub fn forget_live(&mut self) {
        self.live.clear();
        self.recency.clear();
    }

    /// Whether this host steps `instance_id` now (a shared store splits the work).
    pub fn owns(&self, instance_id: &str) -> bool {
        self.store.owns(instance_id)
    }

    /// Reads the rows and inboxes of `instance_ids` together (one round trip on a database),
    /// for [`StepRunner::step_on`].
    pub fn read_many(
        &self,
        instance_ids: &[String],
    ) -> impl Future<Output = Result<Vec<InstanceAndInbox>, StoreError>> + Send + use<> {
        let store = self.store.clone();
        let instance_ids = instance_ids.to_vec();
        async move { store.instances_and_inboxes(&instance_ids, INBOX_BATCH).await }
    }

    /// Runs one step of `instance_id` over `read`, its row and oldest inbox messages read
    /// since its previous step committed. `None` when there is nothing to do.
    pub async fn step_on(
        &mut self,
        instance_id: &str,
        read: InstanceAndInbox,
    ) -> Result<Option<StepCommit>, StoreError> {
        let (record, messages) = read;
        let Some(record) = record else { return Ok(None) };
        if messages.is_empty() {
            return Ok(None);
        }
        let keys: Vec<u64> = messages.iter().map(|(key, _)| *key).collect();
        let messages: Vec<Message> = messages.into_iter().map(|(_, message)| message).collect();

        if record.runtime_status.is_terminal() {
            // A finished execution takes nothing more: drop what arrived late.
            self.evict(instance_id);
            return Ok(Some(step::unchanged_commit(&record, keys, 0)));
        }

        let cached = self
            .live
            .get(instance_id)
            .is_some_and(|live| live.execution_id == record.execution_id);
        if !cached {
            self.evict(instance_id);
        }
        let cached_state = self
            .live
            .get(instance_id)
            .filter(|_| cached)
            .map(|live| live.state.clone());
        let (state, history) = match cached_state {
            Some(state) => (state, None),
            // A Pending instance has no committed episode, so no history: no need to read it.
            None if record.runtime_status == durable_core::history::RuntimeStatus::Pending => {
                (ExecutionState::from_history(&[]), Some(Vec::new()))
            }
            None => {
                let history = self.store.history(instance_id).await?;
                (ExecutionState::from_history(&history), Some(history))
            }
        };

        let triage = replay::triage(&state, record.execution_id, &messages);
        let consumed: Vec<u64> = keys
            .iter()
            .zip(&triage.dispositions)
            .filter(|(_, disposition)| **disposition != Disposition::Defer)
            .map(|(key, _)| *key)
            .collect();
        if triage.is_noop() {
            if consumed.is_empty() {
                return Ok(None);
            }
            return Ok(Some(step::unchanged_commit(
                &record,
                consumed,
                state.history_len as u64,
            )));
        }

        let now = Timestamp::now().max(record.last_updated_time);
        let outcome = if let Some(reason) = triage.terminate.clone() {
            self.evict(instance_id);
            replay::end_episode(&state, now, Vec::new(), reason, None)
        } else if !triage.run_orchestrator {
            replay::finish_episode(instance_id, &state, now, triage.accepted.clone(), None)
                .expect("an episode without actions is always valid")
        } else {
            let name = if state.started {
                state.name.clone()
            } else {
                step::started_name(&triage.accepted).unwrap_or_default()
            };
            match self
                .run_orchestrator(
                    instance_id,
                    &name,
                    &record,
                    state.clone(),
                    history,
                    &triage.accepted,
                    now,
                )
                .await
            {
                Ok(result) => {
                    match replay::finish_episode(instance_id, &state, now, triage.accepted.clone(), Some(result)) {
                        Ok(outcome) => outcome,
                        Err(invalid) => {
                            self.evict(instance_id);
                            let failure = FailureDetails::host("InvalidAction", invalid.to_string());
                            replay::end_episode(&state, now, triage.accepted.clone(), None, Some(failure))
                        }
                    }
                }
                Err(failure) => {
                    self.evict(instance_id);
                    replay::end_episode(&state, now, triage.accepted.clone(), None, Some(failure))
                }
            }
        };

        let mut commit = self.build_commit(
            &record,
            &state.including_start(&triage.accepted),
            consumed,
            outcome,
            now,
        );
        let version = self.live.get(instance_id).map(|live| live.app.hash.clone());
        let limits = self
            .apps
            .limits_of(version.as_deref().or(record.app_version.as_deref()).unwrap_or_default());
        let step_limits = StepLimits {
            history_events: limits.history_events,
            payload_bytes: limits.payload_bytes,
        };
        if let Some(excess) = step::over_limits(&commit, &step_limits) {
            self.evict(instance_id);
            let failure = FailureDetails::host("LimitExceeded", excess);
            let outcome = replay::end_episode(&state, now, triage.accepted.clone(), None, Some(failure));
            let consumed = std::mem::take(&mut commit.consumed);
            commit = self.build_commit(
                &record,
                &state.including_start(&triage.accepted),
                consumed,
                outcome,
                now,
            );
        }
        if commit.reset_history {
            // A new execution starts on the newest version of its app.
            commit.record.app_version = None;
        } else if let Some(version) = version {
            commit.record.app_version = Some(version);
        }
        for activity in &mut commit.activities {
            activity.app_version = commit.record.app_version.clone();
        }
        if let Some(live) = self.live.get_mut(instance_id) {
            for event in &commit.append {
                live.state.observe(event);
            }
        }
        if commit.reset_history || commit.record.runtime_status.is_terminal() {
            self.evict(instance_id);
        } else {
            self.charge_idle_memory(instance_id);
        }
        Ok(Some(commit))
    }

    /// Keeps `instance_id` live only while its instance's memory fits the idle bounds: at
    /// most `idle_instance_bytes`, and within the hub's and the host's budgets, for which
    /// the least recently used orchestrations make room. Otherwise it is evicted, and its
    /// next event replays it into a fresh instance.
    fn charge_idle_memory(&mut self, instance_id: &str) {
        let Some(live) = self.live.get_mut(instance_id) else {
            return;
        };
        let bytes = live.guest.memory_bytes();
        // Most steps leave the instance's memory as it was: its charge stands.
        if live.charge.as_ref().is_some_and(|charge| charge.bytes() == bytes) {
            return;
        }
        live.charge = None;
        if bytes > live.app.sandbox.limits.idle_instance_bytes {
            self.evict(instance_id);
            return;
        }
        loop {
            if let Some(charge) = IdleCharge::take(self.apps.idle_memory(), self.wasm.idle_memory(), bytes) {
                if let Some(live) = self.live.get_mut(instance_id) {
                    live.charge = Some(charge);
                }
                return;
            }
            let oldest = self.recency.values().find(|id| *id != instance_id).cloned();
            match oldest {
                Some(oldest) => self.evict(&oldest),
                None => {
                    self.evict(instance_id);
                    return;
                }
            }
        }
    }

    /// Runs one batch of an entity's inbox: operations one at a time in arrival order, with
    /// lock requests and releases applied on the way. `None` when nothing can run now (the
    /// entity is locked by an orchestration that has not sent anything yet).
    pub async fn entity_step(&mut self, entity_key: &str) -> Result<Option<EntityCommit>, StoreError> {
        let Some(entity) = EntityId::from_storage_key(entity_key) else {
            return Ok(None);
        };
        let (record, messages) = self.store.entity_and_inbox(entity_key, INBOX_BATCH).await?;
        if messages.is_empty() {
            return Ok(None);
        }
        let now = Timestamp::now();
        let mut running = Vec::new();
        for owner in step::lock_requesters(&messages) {
            if is_running(self.store.as_ref(), &owner).await? {
                running.push(owner);
            }
        }
        let lock_owner = record.as_ref().and_then(|record| record.lock_owner.clone());
        let triage = step::triage_entity_inbox(lock_owner, messages, |owner| running.contains(owner), now);
        if triage.consumed.is_empty() {
            return Ok(None);
        }
        let ran = if triage.operations.is_empty() {
            None
        } else {
            Some(
                self.run_entity_batch(
                    &entity,
                    record.as_ref().and_then(|record| record.state.as_ref()),
                    &triage.operations,
                )
                .await,
            )
        };
        let store = &self.store;
        Ok(Some(step::entity_commit(
            entity,
            record.as_ref(),
            triage,
            ran,
            now,
            &mut || store.allocate_id(),
            &mut || uuid::Uuid::new_v4().simple().to_string(),
        )))
    }

    async fn run_entity_batch(
        &mut self,
        entity: &EntityId,
        state: Option<&String>,
        operations: &[PendingOperation],
    ) -> Result<durable_core::history::EntityBatch, FailureDetails> {
        let Some(app) = self.apps.find_entity(&entity.name) else {
            return Err(FailureDetails::host(
                "EntityNotFound",
                format!("no loaded app exports an entity named '{}'", entity.name),
            ));
        };
        let limit = self.apps.limits_of(&app.hash).payload_bytes;
        let batch: Vec<(String, Option<String>)> = operations
            .iter()
            .map(|pending| (pending.operation.clone(), pending.input.clone()))
            .collect();
        let host = self.entity_host(&app).await?;
        let mut ran = match host.run_entity(entity, state, &batch).await {
            Ok(ran) => ran,
            Err(trap) => {
                // The instance is poisoned; the next batch gets a new one.
                self.entity_hosts.remove(&app.hash);
                return Err(FailureDetails::host("OrchestratorTrapped", trap.message));
            }
        };
        step::check_entity_batch(&mut ran, entity, operations, limit)?;
        Ok(ran)
    }

    /// The wasm instance running version `app`'s entities, created if needed.
    async fn entity_host(&mut self, app: &Arc<App>) -> Result<&mut EntityHost, FailureDetails> {
        self.sweep_dropped_versions();
        if !self.entity_hosts.contains_key(&app.hash) {
            let host = self
                .wasm
                .entity_host(app)
                .await
                .map_err(|trap| FailureDetails::host("OrchestratorTrapped", trap.message))?;
            self.entity_hosts.insert(app.hash.clone(), host);
        }
        Ok(self.entity_hosts.get_mut(&app.hash).expect("inserted above"))
    }

    /// Frees the entity instances of versions the hub no longer keeps.
    fn sweep_dropped_versions(&mut self) {
        let changes = self.apps.change_count();
        if changes == self.swept_at {
            return;
        }
        self.swept_at = changes;
        let kept: std::collections::HashSet<String> = self.apps.version_hashes().into_iter().collect();
        self.entity_hosts.retain(|hash, _| kept.contains(hash));
    }

    /// The version an orchestration runs on: the one it started on, or for a new execution
    /// the current app exporting `name`.
    fn version_for(&self, record: &InstanceRecord, name: &str) -> Result<Arc<App>, FailureDetails> {
        if let Some(hash) = &record.app_version {
            return self.apps.version(hash).ok_or_else(|| {
                FailureDetails::host(
                    "OrchestratorVersionMissing",
                    format!(
                        "the app version {} this orchestration started on is no longer available",
                        &hash[..hash.len().min(12)]
                    ),
                )
            });
        }
        self.apps.find(name, FunctionKind::Orchestrator).ok_or_else(|| {
            FailureDetails::host(
                "OrchestratorNotFound",
                format!("no loaded app exports an orchestrator named '{name}'"),
            )
        })
    }

    /// Runs the orchestrator for one new episode, first rebuilding it by replay if it is
    /// not live. An `Err` is why the instance must fail.
    #[allow(clippy::too_many_arguments)]
    async fn run_orchestrator(
        &mut self,
        instance_id: &str,
        name: &str,
        record: &InstanceRecord,
        state: ExecutionState,
        history: Option<Vec<HistoryEvent>>,
        accepted: &[HistoryEvent],
        now: Timestamp,
    ) -> Result<EpisodeResult, FailureDetails> {
        if !self.live.contains_key(instance_id) {
            let app = self.version_for(record, name)?;
            let history = history.unwrap_or_default();
            let live = self
                .revive(app, instance_id, name, record.execution_id, state, &history)
                .await?;
            self.insert_live(instance_id, live);
        }
        self.touch(instance_id);
        let live = self.live.get_mut(instance_id).expect("inserted above");
        let mut events = Vec::with_capacity(accepted.len() + 1);
        events.push(HistoryEvent::new(now, EventKind::OrchestratorStarted));
        events.extend_from_slice(accepted);
        // On a trap the caller evicts the orchestration, and with it its poisoned instance.
        live.guest
            .apply(&events, false, now)
            .await
            .map_err(|trap| FailureDetails::host("OrchestratorTrapped", trap.message))
    }

    /// Creates the orchestration in a new wasm instance and replays every recorded episode
    /// into it.
    async fn revive(
        &mut self,
        app: Arc<App>,
        instance_id: &str,
        name: &str,
        execution_id: u64,
        state: ExecutionState,
        history: &[HistoryEvent],
    ) -> Result<Live, FailureDetails> {
        let trapped = |trap: GuestTrap| FailureDetails::host("OrchestratorTrapped", trap.message);
        let mut guest = self
            .wasm
            .orchestration(&app, name, instance_id, execution_id)
            .await
            .map_err(trapped)?;
        replay::replay_history(&mut guest, history)
            .await
            .map_err(|stop| match stop {
                ReplayStop::Guest { error, .. } => trapped(error),
                ReplayStop::Diverged(divergence) => {
                    FailureDetails::host(divergence.error_type(), divergence.to_string())
                }
            })?;
        Ok(Live {
            app,
            guest,
            execution_id,
            state,
            last_used: 0,
            charge: None,
        })
    }

    fn insert_live(&mut self, instance_id: &str, live: Live) {
        while self.live.len() >= self.capacity {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            self.evict(&oldest);
        }
        self.live.insert(instance_id.to_owned(), live);
    }

    fn touch(&mut self, instance_id: &str) {
        self.tick += 1;
        if let Some(live) = self.live.get_mut(instance_id) {
            self.recency.remove(&live.last_used);
            live.last_used = self.tick;
            self.recency.insert(self.tick, instance_id.to_owned());
        }
    }

    fn build_commit(
        &self,
        record: &InstanceRecord,
        state: &ExecutionState,
        consumed: Vec<u64>,
        outcome: EpisodeOutcome,
        now: Timestamp,
    ) -> StepCommit {
        step::build_commit(record, state, consumed, outcome, now, &mut || self.store.allocate_id())
    }

    /// Runs one activity work item; returns the message to deliver to its orchestration.
    pub async fn run_activity(wasm: &WasmRuntime, apps: &Apps, item: &ActivityWorkItem) -> Message {
        let task_scheduled_id = item.task_id;
        let failed = |failure: FailureDetails| EventKind::TaskFailed {
            task_scheduled_id,
            failure,
        };
        // An activity runs on the version of the orchestration that scheduled it when that
        // version has it, so both halves of a deployment change together.
        let pinned = item
            .app_version
            .as_deref()
            .and_then(|hash| apps.version(hash))
            .filter(|app| {
                app.functions
                    .iter()
                    .any(|(name, kind)| *name == item.name && *kind == FunctionKind::Activity)
            });
        let kind = match pinned.or_else(|| apps.find(&item.name, FunctionKind::Activity)) {
            None => failed(FailureDetails::host(
                "ActivityNotFound",
                format!("no loaded app exports an activity named '{}'", item.name),
            )),
            Some(app) => {
                let payload_limit = apps.limits_of(&app.hash).payload_bytes;
                match wasm
                    .run_activity(
                        &app,
                        apps.idle_memory(),
                        &item.name,
                        item.input.as_ref(),
                        &item.instance_id,
                        item.task_id,
                    )
                    .await
                {
                    Ok(Ok(Some(result))) if result.len() > payload_limit => failed(FailureDetails::host(
                        "LimitExceeded",
                        format!(
                            "activity '{}' returned {} bytes, over the payload limit of {payload_limit} bytes",
                            item.name,
                            result.len()
                        ),
                    )),
                    Ok(Ok(Some(result))) if durable_core::json_depth::too_deep(&result) => {
                        failed(FailureDetails::host(
                            "LimitExceeded",
                            step::too_deep_reason(&format!("the result of activity '{}'", item.name)),
                        ))
                    }
                    Ok(Ok(result)) => match result.as_deref().map(serde_json::from_str::<serde::de::IgnoredAny>) {
                        Some(Err(error)) => failed(FailureDetails::host(
                            "InvalidOutput",
                            format!("activity '{}' returned invalid JSON: {error}", item.name),
                        )),
                        _ => EventKind::TaskCompleted {
                            task_scheduled_id,
                            result,
                        },
                    },
                    Ok(Err(failure)) => failed(failure),
                    Err(trap) => failed(FailureDetails::host("ActivityTrapped", trap.message)),
                }
            }
        };
        Message {
            execution_id: Some(item.execution_id),
            event: HistoryEvent::new(Timestamp::now(), kind),
        }
    }
}

/// Whether `owner`'s execution is still running (a lock for one that has ended would never
/// be released).
async fn is_running(store: &dyn TaskStore, owner: &EntityCaller) -> Result<bool, StoreError> {
    Ok(store
        .instance(&owner.instance_id)
        .await?
        .is_some_and(|record| record.execution_id == owner.execution_id && !record.runtime_status.is_terminal()))
}
