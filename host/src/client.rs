//! The orchestration client (reference/durable-orchestration-client.txt) over an embedded
//! task hub. The HTTP layer and the CLI call only this.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::dispatch::{CommitError, DispatchConfig, Dispatcher};
use crate::history::{EventKind, HistoryEvent, InstanceRecord, Message, RuntimeStatus, Timestamp, json_or_null};
use crate::runtime::{Apps, new_instance};
use crate::store::{Rejection, Store, StoreError, Write};
use crate::wasm::{FunctionKind, LoadError, WasmRuntime};

/// The longest instance id accepted.
pub const MAX_INSTANCE_ID_LEN: usize = 256;

/// Errors of client calls; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The instance id is empty, too long, or has a forbidden character.
    #[error(
        "invalid instance id {0:?}: ids are 1 to 256 characters, without '/', '\\', '#', '?' or control characters"
    )]
    InvalidInstanceId(String),
    /// No loaded app exports this orchestrator.
    #[error("the orchestrator function '{0}' does not exist")]
    UnknownOrchestrator(String),
    /// A payload is not valid JSON.
    #[error("{what} is not valid JSON: {detail}")]
    InvalidJson {
        /// Which payload.
        what: &'static str,
        /// The parser's message.
        detail: String,
    },
    /// A name (event, reason) is not acceptable.
    #[error("{0}")]
    InvalidArgument(String),
    /// No such instance.
    #[error("no instance with id '{0}' was found")]
    NotFound(String),
    /// The instance has finished.
    #[error("instance '{id}' is {status} and cannot accept this operation", status = .status.as_str())]
    Gone {
        /// The instance.
        id: String,
        /// Its status.
        status: RuntimeStatus,
    },
    /// An instance with the id is still running.
    #[error("an instance with id '{id}' is already {status}; terminate it or wait for it to finish before reusing the id", status = .status.as_str())]
    AlreadyExists {
        /// The instance.
        id: String,
        /// Its status.
        status: RuntimeStatus,
    },
    /// The store failed.
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    /// The commit failed.
    #[error("storage failure: {0}")]
    Commit(#[from] CommitError),
}

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

/// The status of an instance, as `get_status` returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct OrchestrationStatus {
    /// The stored row.
    pub record: InstanceRecord,
    /// Whether `input` is shown.
    pub show_input: bool,
    /// The history in the API's shape, when asked for.
    pub history: Option<Vec<Value>>,
}

impl OrchestrationStatus {
    /// The status as the HTTP API's JSON object (camelCase, ISO-8601 times).
    pub fn to_json(&self) -> Value {
        let record = &self.record;
        let mut object = json!({
            "name": record.name,
            "instanceId": record.instance_id,
            "runtimeStatus": record.runtime_status.as_str(),
            "input": if self.show_input { json_or_null(record.input.as_deref()) } else { Value::Null },
            "customStatus": json_or_null(record.custom_status.as_deref()),
            "output": record.api_output(),
            "createdTime": record.created_time.to_iso8601(),
            "lastUpdatedTime": record.last_updated_time.to_iso8601(),
        });
        if let Some(history) = &self.history {
            object["historyEvents"] = Value::Array(history.clone());
        }
        object
    }
}

/// The management URLs of one instance (`create_http_management_payload`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagementUrls {
    /// The instance id.
    pub id: String,
    /// GET status.
    pub status_query_get_uri: String,
    /// POST raise event (`{eventName}` is a placeholder).
    pub send_event_post_uri: String,
    /// POST terminate.
    pub terminate_post_uri: String,
    /// DELETE history.
    pub purge_history_delete_uri: String,
    /// POST rewind.
    pub rewind_post_uri: String,
    /// POST suspend.
    pub suspend_post_uri: String,
    /// POST resume.
    pub resume_post_uri: String,
}

impl ManagementUrls {
    /// Builds the URLs under `base` (e.g. `http://127.0.0.1:7071/runtime/webhooks/durabletask`).
    pub fn new(base: &str, instance_id: &str, query: &str) -> Self {
        let instance = format!("{base}/instances/{}", percent_encode(instance_id));
        ManagementUrls {
            id: instance_id.to_owned(),
            status_query_get_uri: format!("{instance}?{query}"),
            send_event_post_uri: format!("{instance}/raiseEvent/{{eventName}}?{query}"),
            terminate_post_uri: format!("{instance}/terminate?reason={{text}}&{query}"),
            purge_history_delete_uri: format!("{instance}?{query}"),
            rewind_post_uri: format!("{instance}/rewind?reason={{text}}&{query}"),
            suspend_post_uri: format!("{instance}/suspend?reason={{text}}&{query}"),
            resume_post_uri: format!("{instance}/resume?reason={{text}}&{query}"),
        }
    }

    /// The JSON payload of a 202 start response.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "statusQueryGetUri": self.status_query_get_uri,
            "sendEventPostUri": self.send_event_post_uri,
            "terminatePostUri": self.terminate_post_uri,
            "purgeHistoryDeleteUri": self.purge_history_delete_uri,
            "rewindPostUri": self.rewind_post_uri,
            "suspendPostUri": self.suspend_post_uri,
            "resumePostUri": self.resume_post_uri,
        })
    }
}

/// Percent-encodes a path segment.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~:@!$&'()*+,;=".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Checks an instance id.
pub fn validate_instance_id(id: &str) -> Result<(), ClientError> {
    let valid = !id.trim().is_empty()
        && id.chars().count() <= MAX_INSTANCE_ID_LEN
        && !id
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\' | '#' | '?'));
    if valid {
        Ok(())
    } else {
        Err(ClientError::InvalidInstanceId(id.to_owned()))
    }
}

fn validate_json(what: &'static str, text: Option<String>) -> Result<Option<String>, ClientError> {
    match text {
        Some(text) if !text.trim().is_empty() => {
            serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|error| ClientError::InvalidJson {
                what,
                detail: error.to_string(),
            })?;
            Ok(Some(text))
        }
        _ => Ok(None),
    }
}

/// A running task hub: store, apps, loops.
pub struct TaskHub {
    store: Arc<Store>,
    apps: Arc<Apps>,
    dispatcher: Dispatcher,
}

impl TaskHub {
    /// Opens the store, loads the apps and starts the loops. Apps that fail to load are
    /// returned with their errors; the hub serves the others.
    pub async fn start(config: HostConfig) -> anyhow::Result<(Self, Vec<LoadError>)> {
        let store = Arc::new(Store::open(&config.store_path)?);
        let wasm = Arc::new(WasmRuntime::new(config.component_cache.clone())?);
        let mut apps = Vec::new();
        let mut errors = Vec::new();
        for path in &config.apps {
            match wasm.load(path).await {
                Ok(app) => apps.push(app),
                Err(error) => errors.push(error),
            }
        }
        let apps = Arc::new(Apps::new(apps));
        let dispatcher = Dispatcher::start(store.clone(), wasm, apps.clone(), config.dispatch)?;
        Ok((
            TaskHub {
                store,
                apps,
                dispatcher,
            },
            errors,
        ))
    }

    /// The loaded apps.
    pub fn apps(&self) -> &Apps {
        &self.apps
    }

    /// A client of this hub.
    pub fn client(self: &Arc<Self>) -> DurableOrchestrationClient {
        DurableOrchestrationClient { hub: self.clone() }
    }

    /// Stops the loops once every submitted write is committed.
    pub async fn shutdown(self) {
        self.dispatcher.shutdown().await;
    }
}

/// Starts, queries and signals orchestration instances.
#[derive(Clone)]
pub struct DurableOrchestrationClient {
    hub: Arc<TaskHub>,
}

impl DurableOrchestrationClient {
    /// Starts a new instance of orchestrator `name` and returns its id. With an id, a
    /// finished instance of that id is replaced; a running one is an error.
    pub async fn start_new(
        &self,
        name: &str,
        instance_id: Option<String>,
        input: Option<String>,
    ) -> Result<String, ClientError> {
        let instance_id = instance_id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        validate_instance_id(&instance_id)?;
        if self.hub.apps.find(name, FunctionKind::Orchestrator).is_none() {
            return Err(ClientError::UnknownOrchestrator(name.to_owned()));
        }
        let input = validate_json("the orchestrator input", input)?;
        let (record, started) = new_instance(&self.hub.store, &instance_id, name, input, None, Timestamp::now());
        match self
            .hub
            .dispatcher
            .committer()
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

    /// The status of an instance; `None` if there is no such instance.
    pub async fn get_status(
        &self,
        instance_id: &str,
        show_history: bool,
        show_history_output: bool,
        show_input: bool,
    ) -> Result<Option<OrchestrationStatus>, ClientError> {
        let Some(record) = self.hub.store.instance(instance_id)? else {
            return Ok(None);
        };
        let history = if show_history {
            let events = self.hub.store.history(instance_id)?;
            Some(api_history(&events, show_history_output))
        } else {
            None
        };
        Ok(Some(OrchestrationStatus {
            record,
            show_input,
            history,
        }))
    }

    /// Sends an event to an instance. Events for an instance that is not waiting yet are
    /// kept until it waits.
    pub async fn raise_event(
        &self,
        instance_id: &str,
        event_name: &str,
        data: Option<String>,
    ) -> Result<(), ClientError> {
        if event_name.is_empty() {
            return Err(ClientError::InvalidArgument("the event name must not be empty".into()));
        }
        let input = validate_json("the event data", data)?;
        let event = EventKind::EventRaised {
            name: event_name.to_owned(),
            input,
        };
        self.deliver(instance_id, None, event).await
    }

    /// Terminates a running instance.
    pub async fn terminate(&self, instance_id: &str, reason: Option<String>) -> Result<(), ClientError> {
        self.deliver(instance_id, None, EventKind::ExecutionTerminated { reason })
            .await
    }

    /// Suspends a running instance; events raised meanwhile are kept.
    pub async fn suspend(&self, instance_id: &str, reason: Option<String>) -> Result<(), ClientError> {
        self.deliver(instance_id, None, EventKind::ExecutionSuspended { reason })
            .await
    }

    /// Resumes a suspended instance.
    pub async fn resume(&self, instance_id: &str, reason: Option<String>) -> Result<(), ClientError> {
        self.deliver(instance_id, None, EventKind::ExecutionResumed { reason })
            .await
    }

    async fn deliver(&self, instance_id: &str, execution_id: Option<u64>, event: EventKind) -> Result<(), ClientError> {
        validate_instance_id(instance_id)?;
        let message = Message {
            execution_id,
            event: HistoryEvent::new(Timestamp::now(), event),
        };
        let write = Write::Deliver {
            instance_id: instance_id.to_owned(),
            message,
        };
        match self.hub.dispatcher.committer().commit(write).await? {
            Ok(_) => Ok(()),
            Err(Rejection::NotFound) => Err(ClientError::NotFound(instance_id.to_owned())),
            Err(Rejection::Gone(status)) => Err(ClientError::Gone {
                id: instance_id.to_owned(),
                status,
            }),
            Err(other) => unreachable!("a delivery is never rejected as {other:?}"),
        }
    }

    /// Polls until the instance reaches a terminal status or `timeout` passes; returns the
    /// last status seen.
    pub async fn wait_for_completion(
        &self,
        instance_id: &str,
        timeout: Duration,
        interval: Duration,
    ) -> Result<Option<OrchestrationStatus>, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.get_status(instance_id, false, false, true).await?;
            let finished = status
                .as_ref()
                .is_some_and(|status| status.record.runtime_status.is_terminal());
            if finished || tokio::time::Instant::now() + interval > deadline {
                return Ok(status);
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// The management URLs of an instance (`create_http_management_payload`).
    pub fn create_http_management_payload(&self, base_url: &str, instance_id: &str, query: &str) -> ManagementUrls {
        ManagementUrls::new(base_url, instance_id, query)
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
