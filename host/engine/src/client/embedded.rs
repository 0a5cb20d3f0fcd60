//! The client's in-process backend: a task hub running in this process.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::{
    ClientError, Control, DurableOrchestrationClient, EntityPage, EntityQuery, EntityState, InstancePage,
    InstanceQuery, OrchestrationStatus, PurgeFilter, PurgeHistoryResult, check_depth, validate_instance_id,
    validate_json,
};
use crate::dispatch::{DispatchConfig, Dispatcher};
use crate::hubs::StartError;
use crate::runtime::Apps;
use durable_core::history::{EntityId, EntityRecord, EventKind, HistoryEvent, Message, RuntimeStatus, Timestamp};
use durable_core::replay::{self, RewindError};
use durable_core::step;
use durable_store::{ListCursor, ListFilter, Rejection, StoreLocation, TaskStore, Write};
use durable_wasm::{FunctionKind, LoadError, WasmRuntime};

/// How to run a task hub.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// The redb file.
    pub store_path: PathBuf,
    /// The `.wasm` apps to load.
    pub apps: Vec<PathBuf>,
    /// Where compiled components are cached; `None` compiles at every start.
    pub component_cache: Option<PathBuf>,
    /// Loop tuning.
    pub dispatch: DispatchConfig,
}

/// A running task hub: store, apps, loops.
pub struct TaskHub {
    store: Arc<dyn TaskStore>,
    apps: Arc<Apps>,
    dispatcher: Dispatcher,
    policy: HubPolicy,
}

/// What a hub's client API enforces before anything reaches the store.
#[derive(Clone, Debug)]
pub struct HubPolicy {
    /// Largest input, event payload or signal input accepted.
    pub payload_bytes: usize,
    /// Start rate limit shared by the hub's connections; `None` for unlimited.
    pub starts: Option<Arc<StartRate>>,
}

impl Default for HubPolicy {
    fn default() -> Self {
        HubPolicy {
            payload_bytes: crate::config::Limits::default().payload_bytes,
            starts: None,
        }
    }
}

/// A token bucket of orchestration starts: `per_second` a second, bursts up to one second's
/// worth.
#[derive(Debug)]
pub struct StartRate {
    per_second: u32,
    bucket: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl StartRate {
    /// A full bucket; `None` when `per_second` is 0 (unlimited).
    pub fn new(per_second: u32) -> Option<Arc<StartRate>> {
        (per_second > 0).then(|| {
            Arc::new(StartRate {
                per_second,
                bucket: std::sync::Mutex::new((f64::from(per_second), std::time::Instant::now())),
            })
        })
    }

    /// Takes one start; false when the bucket is empty.
    pub fn try_take(&self) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, refilled) = &mut *bucket;
        let now = std::time::Instant::now();
        let capacity = f64::from(self.per_second);
        *tokens = (*tokens + now.duration_since(*refilled).as_secs_f64() * capacity).min(capacity);
        *refilled = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Sub-orchestrations nested deeper than this are not rewound (a guard against cycles).
const MAX_REWIND_DEPTH: usize = 32;

impl TaskHub {
    /// Opens the store, loads the apps and starts the loops. Apps that fail to load are
    /// returned with their errors; the hub serves the others.
    pub async fn start(config: HostConfig) -> Result<(Self, Vec<LoadError>), StartError> {
        let wasm = Arc::new(WasmRuntime::new(config.component_cache.clone())?);
        let mut apps = Vec::new();
        let mut errors = Vec::new();
        for path in &config.apps {
            match wasm.load(path, durable_wasm::Sandbox::default()).await {
                Ok(app) => apps.push(app),
                Err(error) => errors.push(error),
            }
        }
        let apps = Arc::new(Apps::new(apps));
        let store = StoreLocation::Redb(config.store_path.clone());
        let hub = TaskHub::open(&store, wasm, apps, config.dispatch, HubPolicy::default()).await?;
        Ok((hub, errors))
    }

    /// Opens the store at `location` and starts the loops over `apps`, which the caller
    /// may share with other task hubs and change while they run.
    pub async fn open(
        location: &StoreLocation,
        wasm: Arc<WasmRuntime>,
        apps: Arc<Apps>,
        dispatch: DispatchConfig,
        policy: HubPolicy,
    ) -> Result<TaskHub, StartError> {
        let store_error = |source| StartError::Store {
            location: location.to_string(),
            source,
        };
        let store = durable_store::open(location).await.map_err(store_error)?;
        TaskHub::on_store(store, wasm, apps, dispatch, policy)
            .await
            .map_err(store_error)
    }

    /// Starts the loops over `apps` on a store the caller opened.
    pub async fn on_store(
        store: Arc<dyn TaskStore>,
        wasm: Arc<WasmRuntime>,
        apps: Arc<Apps>,
        dispatch: DispatchConfig,
        policy: HubPolicy,
    ) -> Result<TaskHub, durable_store::StoreError> {
        let dispatcher = Dispatcher::start(store.clone(), wasm, apps.clone(), dispatch).await?;
        Ok(TaskHub {
            store,
            apps,
            dispatcher,
            policy,
        })
    }

    /// The loaded apps.
    pub fn apps(&self) -> &Apps {
        &self.apps
    }

    /// Closes the store without waiting for the loops: a shared store hands this host's
    /// work to the others; writes still queued fail, unacknowledged.
    pub async fn close_store(&self) {
        self.store.close().await;
    }

    /// The hub's store.
    pub fn store(&self) -> &dyn TaskStore {
        self.store.as_ref()
    }

    fn check_payload(&self, what: &'static str, payload: &Option<String>) -> Result<(), ClientError> {
        match payload {
            Some(payload) if payload.len() > self.policy.payload_bytes => Err(ClientError::PayloadTooLarge {
                what,
                size: payload.len(),
                limit: self.policy.payload_bytes,
            }),
            _ => Ok(()),
        }
    }

    /// A client of this hub.
    pub fn client(self: &Arc<Self>) -> DurableOrchestrationClient {
        DurableOrchestrationClient::embedded(self.clone())
    }

    /// Stops the loops once every submitted write is committed.
    pub async fn shutdown(self) {
        self.dispatcher.shutdown().await;
        self.store.close().await;
    }

    async fn commit(&self, write: Write) -> Result<Result<u64, Rejection>, ClientError> {
        Ok(self.dispatcher.committer().commit(write).await?)
    }

    pub(super) async fn start_new(
        &self,
        name: &str,
        instance_id: Option<String>,
        input: Option<String>,
    ) -> Result<String, ClientError> {
        let instance_id = instance_id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        validate_instance_id(&instance_id)?;
        if self.apps.find(name, FunctionKind::Orchestrator).is_none() {
            return Err(ClientError::UnknownOrchestrator(name.to_owned()));
        }
        self.check_payload("the orchestrator input", &input)?;
        let input = validate_json("the orchestrator input", input)?;
        if let Some(rate) = &self.policy.starts
            && !rate.try_take()
        {
            return Err(ClientError::TooManyStarts(rate.per_second));
        }
        let (record, started) = step::new_instance(
            self.store.allocate_id(),
            &instance_id,
            name,
            input,
            None,
            Timestamp::now(),
        );
        match self
            .commit(Write::Start {
                record: Box::new(record),
                started,
            })
            .await?
        {
            Ok(_) => Ok(instance_id),
            Err(Rejection::AlreadyExists(status)) => Err(ClientError::AlreadyExists {
                id: instance_id,
                status,
            }),
            Err(other) => unreachable!("a start is never rejected as {other:?}"),
        }
    }

    pub(super) async fn get_status(
        &self,
        instance_id: &str,
        show_history: bool,
        show_history_output: bool,
        show_input: bool,
    ) -> Result<Option<OrchestrationStatus>, ClientError> {
        let Some(record) = self.store.instance(instance_id).await? else {
            return Ok(None);
        };
        let history = if show_history {
            Some(api_history(
                &self.store.history(instance_id).await?,
                show_history_output,
            ))
        } else {
            None
        };
        Ok(Some(OrchestrationStatus::from_record(&record, show_input, history)))
    }

    pub(super) async fn list_instances(&self, query: &InstanceQuery) -> Result<InstancePage, ClientError> {
        let after = match &query.continuation_token {
            Some(token) if !token.trim().is_empty() => Some(
                ListCursor::from_token(token)
                    .ok_or_else(|| ClientError::InvalidQuery(format!("invalid continuation token {token:?}")))?,
            ),
            _ => None,
        };
        let filter = ListFilter {
            created_from: query.created_time_from,
            created_to: query.created_time_to,
            statuses: query.runtime_status.clone(),
            id_prefix: query.instance_id_prefix.clone(),
        };
        let (records, next) = self
            .store
            .list(&filter, after.as_ref(), query.top.unwrap_or(usize::MAX))
            .await?;
        Ok(InstancePage {
            instances: records
                .iter()
                .map(|record| OrchestrationStatus::from_record(record, query.show_input, None))
                .collect(),
            continuation_token: next.map(|cursor| cursor.to_token()),
        })
    }

    pub(super) async fn purge(&self, instance_id: &str) -> Result<PurgeHistoryResult, ClientError> {
        validate_instance_id(instance_id)?;
        match self
            .commit(Write::Purge {
                instance_ids: vec![instance_id.to_owned()],
            })
            .await?
        {
            Ok(deleted) => Ok(PurgeHistoryResult {
                instances_deleted: deleted,
            }),
            Err(_) => Err(ClientError::NotFound(instance_id.to_owned())),
        }
    }

    pub(super) async fn purge_by(&self, filter: &PurgeFilter) -> Result<PurgeHistoryResult, ClientError> {
        let filter = ListFilter {
            created_from: filter.created_time_from,
            created_to: filter.created_time_to,
            statuses: filter.runtime_status.clone(),
            id_prefix: None,
        };
        let mut instances_deleted = 0;
        let mut after: Option<ListCursor> = None;
        loop {
            let (records, next) = self.store.list(&filter, after.as_ref(), 1000).await?;
            // A filter never deletes an instance that is still running: only an explicit
            // purge by id may do that.
            let instance_ids: Vec<String> = records
                .into_iter()
                .filter(|record| record.runtime_status.is_terminal())
                .map(|record| record.instance_id)
                .collect();
            if !instance_ids.is_empty()
                && let Ok(deleted) = self.commit(Write::Purge { instance_ids }).await?
            {
                instances_deleted += deleted;
            }
            match next {
                Some(cursor) => after = Some(cursor),
                None => return Ok(PurgeHistoryResult { instances_deleted }),
            }
        }
    }

    pub(super) async fn raise_event(
        &self,
        instance_id: &str,
        event_name: &str,
        data: Option<String>,
    ) -> Result<(), ClientError> {
        if event_name.is_empty() {
            return Err(ClientError::InvalidArgument("the event name must not be empty".into()));
        }
        self.check_payload("the event data", &data)?;
        let input = validate_json("the event data", data)?;
        self.deliver(
            instance_id,
            EventKind::EventRaised {
                name: event_name.to_owned(),
                input,
            },
        )
        .await
    }

    pub(super) async fn control(
        &self,
        instance_id: &str,
        control: Control,
        reason: Option<String>,
    ) -> Result<(), ClientError> {
        self.check_payload("the reason", &reason)?;
        // A reason is text, but it is shown as JSON when it parses as JSON (a terminated
        // instance's output), so it may not nest deeper than any other payload.
        check_depth("the reason", reason.as_deref())?;
        match control {
            Control::Terminate => {
                self.deliver(instance_id, EventKind::ExecutionTerminated { reason })
                    .await
            }
            Control::Suspend => {
                self.deliver(instance_id, EventKind::ExecutionSuspended { reason })
                    .await
            }
            Control::Resume => self.deliver(instance_id, EventKind::ExecutionResumed { reason }).await,
            Control::Rewind => self.rewind(instance_id, 0).await,
        }
    }

    async fn deliver(&self, instance_id: &str, event: EventKind) -> Result<(), ClientError> {
        validate_instance_id(instance_id)?;
        let message = Message {
            execution_id: None,
            event: HistoryEvent::new(Timestamp::now(), event),
        };
        match self
            .commit(Write::Deliver {
                instance_id: instance_id.to_owned(),
                message,
            })
            .await?
        {
            Ok(_) => Ok(()),
            Err(Rejection::NotFound) => Err(ClientError::NotFound(instance_id.to_owned())),
            Err(Rejection::Gone(status)) => Err(ClientError::Gone {
                id: instance_id.to_owned(),
                status,
            }),
            Err(other) => unreachable!("a delivery is never rejected as {other:?}"),
        }
    }

    /// Rewinds a Failed instance in one transaction, then its Failed children.
    fn rewind<'a>(
        &'a self,
        instance_id: &'a str,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ClientError>> + Send + 'a>> {
        Box::pin(async move {
            validate_instance_id(instance_id)?;
            let Some(record) = self.store.instance(instance_id).await? else {
                return Err(ClientError::NotFound(instance_id.to_owned()));
            };
            if record.runtime_status != RuntimeStatus::Failed {
                return Err(ClientError::Gone {
                    id: instance_id.to_owned(),
                    status: record.runtime_status,
                });
            }
            let plan = match replay::rewind(&self.store.history(instance_id).await?) {
                Ok(plan) => plan,
                Err(RewindError::NotFailed) => {
                    return Err(ClientError::Gone {
                        id: instance_id.to_owned(),
                        status: record.runtime_status,
                    });
                }
                Err(error) => return Err(ClientError::InvalidArgument(error.to_string())),
            };
            let mut children = Vec::with_capacity(plan.children.len());
            for (task_scheduled_id, child_id) in &plan.children {
                children.push((*task_scheduled_id, self.store.instance(child_id).await?));
            }
            let (commit, failed_children) = step::rewind_commit(&record, plan, children, Timestamp::now());
            match self.commit(Write::Step(Box::new(commit))).await? {
                Ok(_) => {}
                Err(_) => {
                    return Err(ClientError::InvalidArgument(format!(
                        "instance '{instance_id}' changed while it was being rewound; try again"
                    )));
                }
            }
            if depth < MAX_REWIND_DEPTH {
                for child_id in failed_children {
                    // A child that cannot be rewound leaves the parent waiting; say so, but the
                    // parent's own rewind stands.
                    if let Err(error) = self.rewind(&child_id, depth + 1).await {
                        eprintln!("warning: rewinding sub-orchestration '{child_id}' of '{instance_id}': {error}");
                    }
                }
            }
            Ok(())
        })
    }

    pub(super) async fn signal_entity(
        &self,
        entity: &EntityId,
        operation: &str,
        input: Option<String>,
    ) -> Result<(), ClientError> {
        if self.apps.find_entity(&entity.name).is_none() {
            return Err(ClientError::UnknownEntity(entity.name.clone()));
        }
        self.check_payload("the operation input", &input)?;
        let input = validate_json("the operation input", input)?;
        let message = step::entity_operation(operation.to_owned(), input, None, None, Timestamp::now());
        self.commit(Write::Signal {
            entity_key: entity.storage_key(),
            message,
        })
        .await?
        .map_err(|rejection| ClientError::InvalidArgument(format!("signal to {entity} rejected: {rejection:?}")))?;
        Ok(())
    }

    pub(super) async fn read_entity_state(&self, entity: &EntityId) -> Result<Option<EntityState>, ClientError> {
        Ok(self
            .store
            .entity(&entity.storage_key())
            .await?
            .filter(|record| record.state.is_some())
            .map(|record| EntityState::from_record(&record, true)))
    }

    pub(super) async fn list_entities(&self, query: &EntityQuery) -> Result<EntityPage, ClientError> {
        let after = query
            .continuation_token
            .as_deref()
            .filter(|token| !token.trim().is_empty());
        let after = match after {
            Some(token) => Some(
                ListCursor::from_token(token)
                    .map(|cursor| cursor.instance_id)
                    .ok_or_else(|| ClientError::InvalidQuery(format!("invalid continuation token {token:?}")))?,
            ),
            None => None,
        };
        let name = query.name.as_ref().map(|name| name.to_lowercase());
        let (from, to) = (query.last_operation_time_from, query.last_operation_time_to);
        let (records, next) = self
            .store
            .list_entities(
                name.as_deref(),
                after.as_deref(),
                query.top.unwrap_or(usize::MAX),
                &|record: &EntityRecord| {
                    record.state.is_some()
                        && from.is_none_or(|from| record.last_operation_time >= from)
                        && to.is_none_or(|to| record.last_operation_time <= to)
                },
            )
            .await?;
        Ok(EntityPage {
            entities: records
                .iter()
                .map(|record| EntityState::from_record(record, query.fetch_state))
                .collect(),
            continuation_token: next.map(|key| {
                ListCursor {
                    created: 0,
                    instance_id: key,
                }
                .to_token()
            }),
        })
    }

    pub(super) async fn restart(&self, instance_id: &str, with_new_instance_id: bool) -> Result<String, ClientError> {
        validate_instance_id(instance_id)?;
        let Some(record) = self.store.instance(instance_id).await? else {
            return Err(ClientError::NotFound(instance_id.to_owned()));
        };
        let id = if with_new_instance_id {
            None
        } else {
            Some(instance_id.to_owned())
        };
        self.start_new(&record.name, id, record.input).await
    }
}

/// The history in the API's `historyEvents` shape. Completions carry the name and time of
/// the event that scheduled them; scheduling and bookkeeping events are folded away, as
/// Durable Functions shows them.
pub fn api_history(events: &[HistoryEvent], show_output: bool) -> Vec<Value> {
    let mut scheduled: std::collections::HashMap<i32, &HistoryEvent> = std::collections::HashMap::new();
    let mut shown = Vec::new();
    for event in events {
        match &event.kind {
            EventKind::TaskScheduled { .. }
            | EventKind::SubOrchestrationInstanceCreated { .. }
            | EventKind::TimerCreated { .. } => {
                scheduled.insert(event.event_id, event);
                if matches!(event.kind, EventKind::TimerCreated { .. }) {
                    shown.push(event.to_api_json(show_output, None));
                }
            }
            EventKind::OrchestratorStarted | EventKind::OrchestratorCompleted => {}
            EventKind::TaskCompleted { task_scheduled_id, .. }
            | EventKind::TaskFailed { task_scheduled_id, .. }
            | EventKind::SubOrchestrationInstanceCompleted { task_scheduled_id, .. }
            | EventKind::SubOrchestrationInstanceFailed { task_scheduled_id, .. } => {
                shown.push(event.to_api_json(show_output, scheduled.get(task_scheduled_id).copied()));
            }
            _ => shown.push(event.to_api_json(show_output, None)),
        }
    }
    shown
}
