//! The orchestration client (reference/durable-orchestration-client.txt): one API over an
//! embedded task hub or a remote host's HTTP API. The HTTP layer and the CLI call only this.

mod embedded;
mod remote;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

pub use embedded::{HostConfig, HubPolicy, StartRate, TaskHub, api_history};
pub use remote::RemoteHub;

use crate::dispatch::CommitError;
use durable_core::history::{EntityId, EntityRecord, InstanceRecord, RuntimeStatus, Timestamp, json_or_null};
use durable_store::StoreError;

/// The longest instance id accepted.
pub const MAX_INSTANCE_ID_LEN: usize = 256;

/// Errors of client calls; each maps to one HTTP status. Exhaustive on purpose: the HTTP
/// layer matches every variant, so a new one cannot reach a client unmapped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The instance id is empty, too long, or has a forbidden character.
    #[error(
        "invalid instance id {0:?}: ids are 1 to 256 characters, do not start with '@' (entities), and have no '/', '\\', '#', '?' or control characters"
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
    /// A payload (or reason) nests arrays and objects deeper than the host accepts.
    #[error("{what} is JSON nested deeper than {limit} levels, the most the host accepts")]
    TooDeep {
        /// Which payload.
        what: &'static str,
        /// The limit, [`durable_core::json_depth::MAX_JSON_DEPTH`].
        limit: usize,
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
    /// No loaded app exports this entity.
    #[error("the entity '{0}' does not exist")]
    UnknownEntity(String),
    /// A query parameter or continuation token is malformed.
    #[error("{0}")]
    InvalidQuery(String),
    /// A payload is over the hub's payload limit.
    #[error("{what} is {size} bytes, over the payload limit of {limit} bytes")]
    PayloadTooLarge {
        /// Which payload.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The hub's start rate limit is reached; try again shortly.
    #[error("more than {0} orchestration starts per second: try again in a moment")]
    TooManyStarts(u32),
    /// A remote host could not be reached or answered unexpectedly.
    #[error("remote host: {0}")]
    Remote(String),
    /// A remote host refused the call with this status and message.
    #[error("remote host answered {status}: {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The host's message.
        message: String,
    },
}

impl ClientError {
    /// Whether the store was out of reach (a lost database, a host shutting down): nothing
    /// was changed, and the same request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ClientError::Store(error) => error.is_unavailable(),
            ClientError::Commit(error) => error.0.is_unavailable(),
            _ => false,
        }
    }
}

/// The status of an instance, as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct OrchestrationStatus {
    /// The orchestrator's name.
    pub name: String,
    /// The instance id.
    pub instance_id: String,
    /// The runtime status.
    pub runtime_status: RuntimeStatus,
    /// The input, or `null` when not asked for.
    pub input: Value,
    /// The custom status, or `null`.
    pub custom_status: Value,
    /// The output; for failed instances the error message, for terminated ones the reason.
    pub output: Value,
    /// When the instance was created.
    pub created_time: Timestamp,
    /// When it last changed.
    pub last_updated_time: Timestamp,
    /// The history (`historyEvents`), when asked for.
    pub history: Option<Vec<Value>>,
}

impl OrchestrationStatus {
    /// The status of a stored instance.
    pub fn from_record(record: &InstanceRecord, show_input: bool, history: Option<Vec<Value>>) -> Self {
        OrchestrationStatus {
            name: record.name.clone(),
            instance_id: record.instance_id.clone(),
            runtime_status: record.runtime_status,
            input: if show_input {
                json_or_null(record.input.as_deref())
            } else {
                Value::Null
            },
            custom_status: json_or_null(record.custom_status.as_deref()),
            output: record.api_output(),
            created_time: record.created_time,
            last_updated_time: record.last_updated_time,
            history,
        }
    }

    /// The status as the HTTP API's JSON object (camelCase, ISO-8601 times).
    pub fn to_json(&self) -> Value {
        let mut object = json!({
            "name": self.name,
            "instanceId": self.instance_id,
            "runtimeStatus": self.runtime_status.as_str(),
            "input": self.input,
            "customStatus": self.custom_status,
            "output": self.output,
            "createdTime": self.created_time.to_iso8601(),
            "lastUpdatedTime": self.last_updated_time.to_iso8601(),
        });
        if let Some(history) = &self.history {
            object["historyEvents"] = Value::Array(history.clone());
        }
        object
    }

    /// Parses the HTTP API's JSON object.
    pub fn from_json(value: &Value) -> Result<Self, ClientError> {
        let text = |key: &str| value[key].as_str().map(str::to_owned);
        let time = |key: &str| {
            text(key)
                .and_then(|time| Timestamp::parse_iso8601(&time))
                .ok_or_else(|| ClientError::Remote(format!("status without a valid {key}: {value}")))
        };
        let runtime_status = text("runtimeStatus")
            .and_then(|status| RuntimeStatus::parse(&status))
            .ok_or_else(|| ClientError::Remote(format!("status without a valid runtimeStatus: {value}")))?;
        Ok(OrchestrationStatus {
            name: text("name").unwrap_or_default(),
            instance_id: text("instanceId").unwrap_or_default(),
            runtime_status,
            input: value["input"].clone(),
            custom_status: value["customStatus"].clone(),
            output: value["output"].clone(),
            created_time: time("createdTime")?,
            last_updated_time: time("lastUpdatedTime")?,
            history: value["historyEvents"].as_array().cloned(),
        })
    }
}

/// Which instances to list, and which page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceQuery {
    /// Created at or after.
    pub created_time_from: Option<Timestamp>,
    /// Created at or before.
    pub created_time_to: Option<Timestamp>,
    /// Any of these statuses; empty means all.
    pub runtime_status: Vec<RuntimeStatus>,
    /// Ids starting with this.
    pub instance_id_prefix: Option<String>,
    /// Include inputs.
    pub show_input: bool,
    /// Page size; `None` returns every match in one page.
    pub top: Option<usize>,
    /// Where the previous page ended.
    pub continuation_token: Option<String>,
}

impl Default for InstanceQuery {
    fn default() -> Self {
        InstanceQuery {
            created_time_from: None,
            created_time_to: None,
            runtime_status: Vec::new(),
            instance_id_prefix: None,
            show_input: true,
            top: None,
            continuation_token: None,
        }
    }
}

/// One page of instances.
#[derive(Clone, Debug, PartialEq)]
pub struct InstancePage {
    /// The instances.
    pub instances: Vec<OrchestrationStatus>,
    /// Pass it back for the next page; `None` on the last page.
    pub continuation_token: Option<String>,
}

/// Which instances to purge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PurgeFilter {
    /// Created at or after.
    pub created_time_from: Option<Timestamp>,
    /// Created at or before.
    pub created_time_to: Option<Timestamp>,
    /// Any of these statuses; empty means all.
    pub runtime_status: Vec<RuntimeStatus>,
}

/// What a purge deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgeHistoryResult {
    /// How many instances.
    pub instances_deleted: u64,
}

/// An entity's state, as `read_entity_state` and the list return it.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityState {
    /// The entity.
    pub id: EntityId,
    /// When it last ran an operation.
    pub last_operation_time: Timestamp,
    /// Its state (`null` when not fetched).
    pub state: Value,
}

impl EntityState {
    fn from_record(record: &EntityRecord, fetch_state: bool) -> Self {
        EntityState {
            id: record.id.clone(),
            last_operation_time: record.last_operation_time,
            state: if fetch_state {
                json_or_null(record.state.as_deref())
            } else {
                Value::Null
            },
        }
    }

    /// The list entry of the HTTP API: `entityId`, `lastOperationTime`, and `state` if fetched.
    pub fn to_json(&self, with_state: bool) -> Value {
        let mut object = json!({
            "entityId": { "name": self.id.name, "key": self.id.key },
            "lastOperationTime": self.last_operation_time.to_iso8601(),
        });
        if with_state {
            object["state"] = self.state.clone();
        }
        object
    }

    /// Parses a list entry.
    pub fn from_json(value: &Value) -> Result<Self, ClientError> {
        let id = EntityId::new(
            value["entityId"]["name"].as_str().unwrap_or_default(),
            value["entityId"]["key"].as_str().unwrap_or_default(),
        );
        let last_operation_time = value["lastOperationTime"]
            .as_str()
            .and_then(Timestamp::parse_iso8601)
            .ok_or_else(|| ClientError::Remote(format!("entity without a valid lastOperationTime: {value}")))?;
        Ok(EntityState {
            id,
            last_operation_time,
            state: value["state"].clone(),
        })
    }
}

/// Which entities to list, and which page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntityQuery {
    /// Only entities of this name (any case).
    pub name: Option<String>,
    /// Last operation at or after.
    pub last_operation_time_from: Option<Timestamp>,
    /// Last operation at or before.
    pub last_operation_time_to: Option<Timestamp>,
    /// Include each entity's state.
    pub fetch_state: bool,
    /// Page size; `None` returns every match.
    pub top: Option<usize>,
    /// Where the previous page ended.
    pub continuation_token: Option<String>,
}

/// One page of entities.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityPage {
    /// The entities.
    pub entities: Vec<EntityState>,
    /// Pass it back for the next page; `None` on the last page.
    pub continuation_token: Option<String>,
}

/// Checks an entity key: 1 to 256 characters, no control characters.
pub fn validate_entity_key(key: &str) -> Result<(), ClientError> {
    if key.is_empty() || key.chars().count() > MAX_INSTANCE_ID_LEN || key.chars().any(char::is_control) {
        return Err(ClientError::InvalidArgument(format!(
            "invalid entity key {key:?}: keys are 1 to 256 characters without control characters"
        )));
    }
    Ok(())
}

/// An HTTP response a function would return to its caller (`create_check_status_response`).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckStatusResponse {
    /// The status code.
    pub status: u16,
    /// Headers (`Location`, `Retry-After`, `Content-Type`).
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
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
    /// POST restart.
    pub restart_post_uri: String,
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
            restart_post_uri: format!("{instance}/restart?restartWithNewInstanceId={{boolean}}&{query}"),
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
            "restartPostUri": self.restart_post_uri,
            "suspendPostUri": self.suspend_post_uri,
            "resumePostUri": self.resume_post_uri,
        })
    }
}

/// Percent-encodes a path segment or query value: everything but unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
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
        && !id.starts_with('@')
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

/// Refuses `text` if it nests deeper than [`durable_core::json_depth::MAX_JSON_DEPTH`].
fn check_depth(what: &'static str, text: Option<&str>) -> Result<(), ClientError> {
    match text {
        Some(text) if durable_core::json_depth::too_deep(text) => Err(ClientError::TooDeep {
            what,
            limit: durable_core::json_depth::MAX_JSON_DEPTH,
        }),
        _ => Ok(()),
    }
}

fn validate_json(what: &'static str, text: Option<String>) -> Result<Option<String>, ClientError> {
    match text {
        Some(text) if !text.trim().is_empty() => {
            // Depth first: the syntax check below skips values without a depth limit, so it
            // would pass text too deep to parse when it is shown or handed to a guest.
            check_depth(what, Some(&text))?;
            serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|error| ClientError::InvalidJson {
                what,
                detail: error.to_string(),
            })?;
            Ok(Some(text))
        }
        _ => Ok(None),
    }
}

#[derive(Clone)]
enum Backend {
    Embedded(Arc<TaskHub>),
    Remote(Arc<RemoteHub>),
}

/// Starts, queries and controls orchestration instances, in-process or on a remote host.
#[derive(Clone)]
pub struct DurableOrchestrationClient {
    backend: Backend,
    /// Base of the management URLs it hands out, e.g.
    /// `http://127.0.0.1:7071/runtime/webhooks/durabletask`.
    base_url: String,
    /// Query string appended to those URLs (`taskHub=...&connection=...`).
    url_query: String,
}

/// The default base of management URLs.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:7071/runtime/webhooks/durabletask";

impl DurableOrchestrationClient {
    /// A client of an in-process task hub.
    pub fn embedded(hub: Arc<TaskHub>) -> Self {
        DurableOrchestrationClient {
            backend: Backend::Embedded(hub),
            base_url: DEFAULT_BASE_URL.to_owned(),
            url_query: "taskHub=default&connection=Storage".to_owned(),
        }
    }

    /// A client of a host reached over HTTP at `url` (e.g. `http://127.0.0.1:7071`), for task
    /// hub `task_hub`, with system key `key`.
    pub fn remote(url: &str, task_hub: Option<&str>, key: Option<&str>) -> Result<Self, ClientError> {
        let remote = RemoteHub::new(url, task_hub, key)?;
        Ok(DurableOrchestrationClient {
            base_url: remote.api_base(),
            url_query: remote.url_query(),
            backend: Backend::Remote(Arc::new(remote)),
        })
    }

    /// The same client, handing out management URLs under `base_url` with `url_query`.
    pub fn with_urls(&self, base_url: String, url_query: String) -> Self {
        DurableOrchestrationClient {
            backend: self.backend.clone(),
            base_url,
            url_query,
        }
    }

    /// Starts a new instance of orchestrator `name` and returns its id. With an id, a
    /// finished instance of that id is replaced; a running one is an error.
    pub async fn start_new(
        &self,
        name: &str,
        instance_id: Option<String>,
        input: Option<String>,
    ) -> Result<String, ClientError> {
        match &self.backend {
            Backend::Embedded(hub) => hub.start_new(name, instance_id, input).await,
            Backend::Remote(remote) => remote.start_new(name, instance_id, input).await,
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
        match &self.backend {
            Backend::Embedded(hub) => {
                hub.get_status(instance_id, show_history, show_history_output, show_input)
                    .await
            }
            Backend::Remote(remote) => {
                remote
                    .get_status(instance_id, show_history, show_history_output, show_input)
                    .await
            }
        }
    }

    /// One page of instances matching `query`.
    pub async fn list_instances(&self, query: &InstanceQuery) -> Result<InstancePage, ClientError> {
        match &self.backend {
            Backend::Embedded(hub) => hub.list_instances(query).await,
            Backend::Remote(remote) => remote.list_instances(query).await,
        }
    }

    /// The status of every instance.
    pub async fn get_status_all(&self) -> Result<Vec<OrchestrationStatus>, ClientError> {
        self.get_status_by(None, None, Vec::new()).await
    }

    /// The status of every instance created in the range with one of the statuses (an
    /// empty list means any).
    pub async fn get_status_by(
        &self,
        created_time_from: Option<Timestamp>,
        created_time_to: Option<Timestamp>,
        runtime_status: Vec<RuntimeStatus>,
    ) -> Result<Vec<OrchestrationStatus>, ClientError> {
        let mut query = InstanceQuery {
            created_time_from,
            created_time_to,
            runtime_status,
            top: Some(1000),
            ..InstanceQuery::default()
        };
        let mut all = Vec::new();
        loop {
            let page = self.list_instances(&query).await?;
            all.extend(page.instances);
            match page.continuation_token {
                Some(token) => query.continuation_token = Some(token),
                None => return Ok(all),
            }
        }
    }

    /// Deletes an instance's history, inbox, timers and status.
    pub async fn purge_instance_history(&self, instance_id: &str) -> Result<PurgeHistoryResult, ClientError> {
        match &self.backend {
            Backend::Embedded(hub) => hub.purge(instance_id).await,
            Backend::Remote(remote) => remote.purge(instance_id).await,
        }
    }

    /// Deletes every finished (Completed, Failed, Terminated) instance matching `filter`;
    /// `instances_deleted` is 0 when none did. Running instances are never purged by a filter.
    pub async fn purge_instance_history_by(&self, filter: &PurgeFilter) -> Result<PurgeHistoryResult, ClientError> {
        match &self.backend {
            Backend::Embedded(hub) => hub.purge_by(filter).await,
            Backend::Remote(remote) => remote.purge_by(filter).await,
        }
    }

    /// Sends an event to an instance. Events for an instance that is not waiting yet are
    /// kept until it waits.
    pub async fn raise_event(
        &self,
        instance_id: &str,
        event_name: &str,
        data: Option<String>,
    ) -> Result<(), ClientError> {
        match &self.backend {
            Backend::Embedded(hub) => hub.raise_event(instance_id, event_name, data).await,
            Backend::Remote(remote) => remote.raise_event(instance_id, event_name, data).await,
        }
    }

    /// Terminates a running instance.
    pub async fn terminate(&self, instance_id: &str, reason: Option<String>) -> Result<(), ClientError> {
        self.control(instance_id, Control::Terminate, reason).await
    }

    /// Suspends a running instance; events raised meanwhile are kept.
    pub async fn suspend(&self, instance_id: &str, reason: Option<String>) -> Result<(), ClientError> {
        self.control(instance_id, Control::Suspend, reason).await
    }

    /// Resumes a suspended instance.
    pub async fn resume(&self, instance_id: &str, reason: Option<String>) -> Result<(), ClientError> {
        self.control(instance_id, Control::Resume, reason).await
    }

    /// Rewinds a Failed instance: the failed activities and sub-orchestrations of its last
    /// episode run again, and it continues from there.
    pub async fn rewind(&self, instance_id: &str, reason: Option<String>) -> Result<(), ClientError> {
        self.control(instance_id, Control::Rewind, reason).await
    }

    async fn control(&self, instance_id: &str, control: Control, reason: Option<String>) -> Result<(), ClientError> {
        match &self.backend {
            Backend::Embedded(hub) => hub.control(instance_id, control, reason).await,
            Backend::Remote(remote) => remote.control(instance_id, control, reason).await,
        }
    }

    /// Starts the instance's orchestrator again with the same input, under the same id (it
    /// must have finished) or a new one; returns the id.
    pub async fn restart(&self, instance_id: &str, with_new_instance_id: bool) -> Result<String, ClientError> {
        match &self.backend {
            Backend::Embedded(hub) => hub.restart(instance_id, with_new_instance_id).await,
            Backend::Remote(remote) => remote.restart(instance_id, with_new_instance_id).await,
        }
    }

    /// Sends a one-way operation to an entity, creating it if needed.
    pub async fn signal_entity(
        &self,
        entity: &EntityId,
        operation: &str,
        input: Option<String>,
    ) -> Result<(), ClientError> {
        validate_entity_key(&entity.key)?;
        match &self.backend {
            Backend::Embedded(hub) => hub.signal_entity(entity, operation, input).await,
            Backend::Remote(remote) => remote.signal_entity(entity, operation, input).await,
        }
    }

    /// An entity's state; `None` if it does not exist (or has no state).
    pub async fn read_entity_state(&self, entity: &EntityId) -> Result<Option<EntityState>, ClientError> {
        match &self.backend {
            Backend::Embedded(hub) => hub.read_entity_state(entity).await,
            Backend::Remote(remote) => remote.read_entity_state(entity).await,
        }
    }

    /// One page of entities matching `query`.
    pub async fn list_entities(&self, query: &EntityQuery) -> Result<EntityPage, ClientError> {
        match &self.backend {
            Backend::Embedded(hub) => hub.list_entities(query).await,
            Backend::Remote(remote) => remote.list_entities(query).await,
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
                .is_some_and(|status| status.runtime_status.is_terminal());
            if finished || tokio::time::Instant::now() + interval > deadline {
                return Ok(status);
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// The management URLs of an instance.
    pub fn create_http_management_payload(&self, instance_id: &str) -> ManagementUrls {
        ManagementUrls::new(&self.base_url, instance_id, &self.url_query)
    }

    /// The management URLs of an instance (the Python client's name for
    /// [`create_http_management_payload`](Self::create_http_management_payload)).
    pub fn get_client_response_links(&self, instance_id: &str) -> ManagementUrls {
        self.create_http_management_payload(instance_id)
    }

    /// A 202 response pointing the caller at the instance's status URL.
    pub fn create_check_status_response(&self, instance_id: &str) -> CheckStatusResponse {
        let urls = self.create_http_management_payload(instance_id);
        CheckStatusResponse {
            status: 202,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Location".into(), urls.status_query_get_uri.clone()),
                ("Retry-After".into(), "10".into()),
            ],
            body: urls.to_json(),
        }
    }

    /// Waits up to `timeout` for the instance: a completed one answers 200 with its output,
    /// a failed or terminated one 500 with its status; otherwise the check-status response.
    pub async fn wait_for_completion_or_create_check_status_response(
        &self,
        instance_id: &str,
        timeout: Duration,
        interval: Duration,
    ) -> Result<CheckStatusResponse, ClientError> {
        let status = self.wait_for_completion(instance_id, timeout, interval).await?;
        let json_headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        Ok(match status {
            Some(status) if status.runtime_status == RuntimeStatus::Completed => CheckStatusResponse {
                status: 200,
                headers: json_headers,
                body: status.output,
            },
            Some(status) if status.runtime_status.is_terminal() => CheckStatusResponse {
                status: 500,
                headers: json_headers,
                body: status.to_json(),
            },
            _ => self.create_check_status_response(instance_id),
        })
    }
}

/// A one-way control message to an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    Terminate,
    Suspend,
    Resume,
    Rewind,
}

impl Control {
    fn path_segment(self) -> &'static str {
        match self {
            Control::Terminate => "terminate",
            Control::Suspend => "suspend",
            Control::Resume => "resume",
            Control::Rewind => "rewind",
        }
    }
}
