//! History events, actions and instance status: the data every other module speaks.
//!
//! Pure data and its encodings. These types mirror the WIT package (`wit/durable.wit`) but
//! belong to the host, so the store's format does not change when the WIT gains a version.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Microseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time. Only the runtime calls this; replay never does.
    pub fn now() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since_epoch.as_micros() as i64)
    }

    /// Microseconds since the epoch.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// ISO-8601 in UTC with microseconds, e.g. `2026-11-25T10:00:00.123456Z`.
    pub fn to_iso8601(self) -> String {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let second_of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )
    }

    /// Parses ISO-8601 date-times as clients send them: `2026-11-25`, `2026-11-25T10:00:00Z`,
    /// with any number of fractional digits, and with `Z`, `+hh:mm` or no offset (UTC).
    pub fn parse_iso8601(text: &str) -> Option<Self> {
        let text = text.trim();
        let (date, rest) = match text.find(['T', 't', ' ']) {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        let mut date_parts = date.splitn(3, '-');
        let year: i64 = date_parts.next()?.parse().ok()?;
        let month: u32 = date_parts.next()?.parse().ok()?;
        let day: u32 = date_parts.next()?.parse().ok()?;
        // Years past 9999 (DateTime.MaxValue) would overflow the arithmetic below.
        if !(0..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let (time, offset_secs) = split_offset(rest)?;
        let mut micros_of_day: i64 = 0;
        if !time.is_empty() {
            let (hms, fraction) = match time.split_once('.') {
                Some((hms, fraction)) => (hms, fraction),
                None => (time, ""),
            };
            let mut hms_parts = hms.splitn(3, ':');
            let hour: i64 = hms_parts.next()?.parse().ok()?;
            let minute: i64 = hms_parts.next()?.parse().ok()?;
            let second: i64 = hms_parts.next().unwrap_or("0").parse().ok()?;
            if hour > 23 || minute > 59 || second > 60 {
                return None;
            }
            if !fraction.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let mut digits: String = fraction.chars().take(6).collect();
            while digits.len() < 6 {
                digits.push('0');
            }
            micros_of_day = (hour * 3600 + minute * 60 + second) * 1_000_000 + digits.parse::<i64>().ok()?;
        }
        let days = days_from_civil(year, month, day);
        let micros = (days * 86_400 * 1_000_000 + micros_of_day).checked_sub(offset_secs.checked_mul(1_000_000)?)?;
        Some(Timestamp(micros))
    }

    /// This time plus `micros` microseconds.
    pub fn plus_micros(self, micros: i64) -> Self {
        Timestamp(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso8601())
    }
}

fn split_offset(rest: &str) -> Option<(&str, i64)> {
    if let Some(time) = rest.strip_suffix(['Z', 'z']) {
        return Some((time, 0));
    }
    if let Some(i) = rest.rfind(['+', '-']) {
        let (time, offset) = rest.split_at(i);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':').unwrap_or((&offset[1..], "0"));
        let secs = h
            .parse::<i64>()
            .ok()?
            .checked_mul(3600)?
            .checked_add(m.parse::<i64>().ok()?.checked_mul(60)?)?;
        return Some((time, sign * secs));
    }
    Some((rest, 0))
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Why a task or an orchestration failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureDetails {
    /// The kind of error, as the guest named it.
    pub error_type: String,
    /// A human-readable message.
    pub message: String,
    /// A stack trace, an inner error, or other detail.
    pub details: Option<String>,
}

impl FailureDetails {
    /// A failure raised by the host itself rather than by guest code.
    pub fn host(error_type: &str, message: impl Into<String>) -> Self {
        FailureDetails {
            error_type: error_type.to_owned(),
            message: message.into(),
            details: None,
        }
    }
}

/// Where a sub-orchestration reports its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentInstance {
    /// The parent's instance id.
    pub instance_id: String,
    /// The parent's orchestrator name.
    pub name: String,
    /// The parent's execution, so a result never reaches a later execution of the same id.
    pub execution_id: u64,
    /// The sequence number of the parent's call-sub-orchestration action.
    pub task_scheduled_id: i32,
}

/// A durable entity: its name (lowercase; names are case-insensitive) and key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityId {
    /// The entity's name, lowercased.
    pub name: String,
    /// The entity's key.
    pub key: String,
}

impl EntityId {
    /// An entity id; the name is lowercased.
    pub fn new(name: &str, key: &str) -> Self {
        EntityId {
            name: name.to_lowercase(),
            key: key.to_owned(),
        }
    }

    /// The id under which the entity's inbox and row are stored: `@name@key`, as Durable
    /// Functions names entity instances. Orchestration ids cannot start with `@`.
    pub fn storage_key(&self) -> String {
        format!("@{}@{}", self.name, self.key)
    }

    /// Parses a storage key made by [`EntityId::storage_key`].
    pub fn from_storage_key(key: &str) -> Option<Self> {
        let (name, key) = key.strip_prefix('@')?.split_once('@')?;
        Some(EntityId {
            name: name.to_owned(),
            key: key.to_owned(),
        })
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.key)
    }
}

/// The orchestration waiting for an entity's answer (a call or a lock).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityCaller {
    /// The orchestration instance.
    pub instance_id: String,
    /// Its execution.
    pub execution_id: u64,
    /// The sequence number of its call-entity or lock-entities action.
    pub task_id: i32,
}

/// How an execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompletionStatus {
    /// The orchestrator returned a value.
    Completed,
    /// The orchestrator raised an unhandled error, or the host failed it.
    Failed,
    /// A client terminated it.
    Terminated,
    /// It restarted itself with a new input.
    ContinuedAsNew,
}

/// What happened, in the Durable Task model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // The fields mirror the WIT records, documented there.
pub enum EventKind {
    ExecutionStarted {
        name: String,
        instance_id: String,
        input: Option<String>,
        parent: Option<ParentInstance>,
    },
    OrchestratorStarted,
    OrchestratorCompleted,
    TaskScheduled {
        name: String,
        input: Option<String>,
    },
    TaskCompleted {
        task_scheduled_id: i32,
        result: Option<String>,
    },
    TaskFailed {
        task_scheduled_id: i32,
        failure: FailureDetails,
    },
    TimerCreated {
        fire_at: Timestamp,
    },
    TimerFired {
        timer_id: i32,
        fire_at: Timestamp,
    },
    EventRaised {
        name: String,
        input: Option<String>,
    },
    EventSent {
        instance_id: String,
        name: String,
        input: Option<String>,
    },
    SubOrchestrationInstanceCreated {
        name: String,
        instance_id: String,
        input: Option<String>,
    },
    SubOrchestrationInstanceCompleted {
        task_scheduled_id: i32,
        result: Option<String>,
    },
    SubOrchestrationInstanceFailed {
        task_scheduled_id: i32,
        failure: FailureDetails,
    },
    ContinueAsNew {
        input: Option<String>,
    },
    ExecutionSuspended {
        reason: Option<String>,
    },
    ExecutionResumed {
        reason: Option<String>,
    },
    ExecutionTerminated {
        reason: Option<String>,
    },
    ExecutionCompleted {
        status: CompletionStatus,
        result: Option<String>,
        failure: Option<FailureDetails>,
    },
    EntityOperationCalled {
        entity: EntityId,
        operation: String,
        input: Option<String>,
    },
    EntityOperationSignaled {
        entity: EntityId,
        operation: String,
        input: Option<String>,
        scheduled_time: Option<Timestamp>,
    },
    EntityLockRequested {
        entities: Vec<EntityId>,
    },
    EntityLockGranted {
        task_scheduled_id: i32,
    },
    EntityUnlockSent {
        entities: Vec<EntityId>,
    },
    EntityOperationCompleted {
        task_scheduled_id: i32,
        result: Option<String>,
    },
    EntityOperationFailed {
        task_scheduled_id: i32,
        failure: FailureDetails,
    },
    /// Host-only, in an entity's inbox: run an operation; `caller` waits for the result,
    /// `sender` is the orchestration that sent it (for locks).
    EntityOperation {
        operation: String,
        input: Option<String>,
        caller: Option<EntityCaller>,
        sender: Option<String>,
    },
    /// Host-only, in an entity's inbox: lock it for `owner`, then pass the request on to the
    /// next of `entities` (sorted), or grant the lock when this is the last.
    EntityLockRequest {
        owner: EntityCaller,
        entities: Vec<EntityId>,
        position: usize,
    },
    /// Host-only, in an entity's inbox: `owner` releases its lock.
    EntityUnlock {
        owner: String,
    },
}

impl EventKind {
    /// The event type's name as Durable Functions spells it (`TaskScheduled`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::ExecutionStarted { .. } => "ExecutionStarted",
            EventKind::OrchestratorStarted => "OrchestratorStarted",
            EventKind::OrchestratorCompleted => "OrchestratorCompleted",
            EventKind::TaskScheduled { .. } => "TaskScheduled",
            EventKind::TaskCompleted { .. } => "TaskCompleted",
            EventKind::TaskFailed { .. } => "TaskFailed",
            EventKind::TimerCreated { .. } => "TimerCreated",
            EventKind::TimerFired { .. } => "TimerFired",
            EventKind::EventRaised { .. } => "EventRaised",
            EventKind::EventSent { .. } => "EventSent",
            EventKind::SubOrchestrationInstanceCreated { .. } => "SubOrchestrationInstanceCreated",
            EventKind::SubOrchestrationInstanceCompleted { .. } => "SubOrchestrationInstanceCompleted",
            EventKind::SubOrchestrationInstanceFailed { .. } => "SubOrchestrationInstanceFailed",
            EventKind::ContinueAsNew { .. } => "ContinueAsNew",
            EventKind::ExecutionSuspended { .. } => "ExecutionSuspended",
            EventKind::ExecutionResumed { .. } => "ExecutionResumed",
            EventKind::ExecutionTerminated { .. } => "ExecutionTerminated",
            EventKind::ExecutionCompleted { .. } => "ExecutionCompleted",
            EventKind::EntityOperationCalled { .. } => "EntityOperationCalled",
            EventKind::EntityOperationSignaled { .. } => "EntityOperationSignaled",
            EventKind::EntityLockRequested { .. } => "EntityLockRequested",
            EventKind::EntityLockGranted { .. } => "EntityLockGranted",
            EventKind::EntityUnlockSent { .. } => "EntityUnlockSent",
            EventKind::EntityOperationCompleted { .. } => "EntityOperationCompleted",
            EventKind::EntityOperationFailed { .. } => "EntityOperationFailed",
            EventKind::EntityOperation { .. } => "EntityOperation",
            EventKind::EntityLockRequest { .. } => "EntityLockRequest",
            EventKind::EntityUnlock { .. } => "EntityUnlock",
        }
    }
}

/// One entry of an orchestration's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// The sequence number of the action that created this event, or -1.
    pub event_id: i32,
    /// When the host recorded it.
    pub timestamp: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

impl HistoryEvent {
    /// An event that no action created (event id -1).
    pub fn new(timestamp: Timestamp, kind: EventKind) -> Self {
        HistoryEvent {
            event_id: -1,
            timestamp,
            kind,
        }
    }

    /// Encodes the event for the store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("history events always serialize")
    }

    /// Decodes an event written by [`HistoryEvent::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The event as the HTTP API shows it in `historyEvents` (Durable Functions' shape).
    /// `schedule` names the event that scheduled a completion, for its `FunctionName` and
    /// `ScheduledTime`.
    pub fn to_api_json(&self, show_output: bool, schedule: Option<&HistoryEvent>) -> Value {
        let mut object = serde_json::Map::new();
        object.insert("EventType".into(), json!(self.kind.type_name()));
        if self.event_id >= 0 {
            object.insert("EventId".into(), json!(self.event_id));
        }
        let scheduled_name = schedule.and_then(|event| match &event.kind {
            EventKind::TaskScheduled { name, .. } | EventKind::SubOrchestrationInstanceCreated { name, .. } => {
                Some(name.clone())
            }
            _ => None,
        });
        let mut put = |key: &str, value: Value| {
            object.insert(key.to_owned(), value);
        };
        match &self.kind {
            EventKind::ExecutionStarted { name, input, .. } => {
                put("FunctionName", json!(name));
                if show_output {
                    put("Input", json_or_null(input.as_deref()));
                }
            }
            EventKind::TaskScheduled { name, .. } => put("FunctionName", json!(name)),
            EventKind::SubOrchestrationInstanceCreated { name, instance_id, .. } => {
                put("FunctionName", json!(name));
                put("InstanceId", json!(instance_id));
            }
            EventKind::TaskCompleted {
                task_scheduled_id,
                result,
            }
            | EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id,
                result,
            } => {
                put("TaskScheduledId", json!(task_scheduled_id));
                if let Some(name) = scheduled_name {
                    put("FunctionName", json!(name));
                }
                if show_output {
                    put("Result", json_or_null(result.as_deref()));
                }
            }
            EventKind::TaskFailed {
                task_scheduled_id,
                failure,
            }
            | EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id,
                failure,
            } => {
                put("TaskScheduledId", json!(task_scheduled_id));
                if let Some(name) = scheduled_name {
                    put("FunctionName", json!(name));
                }
                put("Reason", json!(failure.message));
                if show_output {
                    put("Details", json!(failure.details));
                }
            }
            EventKind::TimerCreated { fire_at } => put("FireAt", json!(fire_at.to_iso8601())),
            EventKind::TimerFired { timer_id, fire_at } => {
                put("TimerId", json!(timer_id));
                put("FireAt", json!(fire_at.to_iso8601()));
            }
            EventKind::EventRaised { name, input } => {
                put("Name", json!(name));
                if show_output {
                    put("Input", json_or_null(input.as_deref()));
                }
            }
            EventKind::EventSent {
                instance_id,
                name,
                input,
            } => {
                put("InstanceId", json!(instance_id));
                put("Name", json!(name));
                if show_output {
                    put("Input", json_or_null(input.as_deref()));
                }
            }
            EventKind::ContinueAsNew { input } => {
                if show_output {
                    put("Input", json_or_null(input.as_deref()));
                }
            }
            EventKind::ExecutionSuspended { reason } | EventKind::ExecutionResumed { reason } => {
                put("Reason", json!(reason));
            }
            EventKind::ExecutionTerminated { reason } => put("Input", json!(reason)),
            EventKind::ExecutionCompleted {
                status,
                result,
                failure,
            } => {
                put("OrchestrationStatus", json!(RuntimeStatus::from(*status).as_str()));
                if show_output {
                    let result = match failure {
                        Some(failure) => json!(failure.message),
                        None => json_or_null(result.as_deref()),
                    };
                    put("Result", result);
                }
            }
            EventKind::EntityOperationCalled {
                entity,
                operation,
                input,
            }
            | EventKind::EntityOperationSignaled {
                entity,
                operation,
                input,
                ..
            } => {
                put("EntityName", json!(entity.name));
                put("EntityKey", json!(entity.key));
                put("Operation", json!(operation));
                if show_output {
                    put("Input", json_or_null(input.as_deref()));
                }
            }
            EventKind::EntityLockRequested { entities } | EventKind::EntityUnlockSent { entities } => {
                put(
                    "Entities",
                    json!(entities.iter().map(EntityId::to_string).collect::<Vec<_>>()),
                );
            }
            EventKind::EntityLockGranted { task_scheduled_id } => put("TaskScheduledId", json!(task_scheduled_id)),
            EventKind::EntityOperationCompleted {
                task_scheduled_id,
                result,
            } => {
                put("TaskScheduledId", json!(task_scheduled_id));
                if show_output {
                    put("Result", json_or_null(result.as_deref()));
                }
            }
            EventKind::EntityOperationFailed {
                task_scheduled_id,
                failure,
            } => {
                put("TaskScheduledId", json!(task_scheduled_id));
                put("Reason", json!(failure.message));
            }
            EventKind::OrchestratorStarted
            | EventKind::OrchestratorCompleted
            | EventKind::EntityOperation { .. }
            | EventKind::EntityLockRequest { .. }
            | EventKind::EntityUnlock { .. } => {}
        }
        if let Some(schedule) = schedule {
            object.insert("ScheduledTime".into(), json!(schedule.timestamp.to_iso8601()));
        }
        object.insert("Timestamp".into(), json!(self.timestamp.to_iso8601()));
        Value::Object(object)
    }
}

/// Parses stored JSON text for an API response; text that is not JSON (a plain terminate
/// reason, say) is shown as a string. Payloads are at most [`MAX_JSON_DEPTH`] levels deep
/// (refused deeper when they come in), and parse here however close to it they nest.
///
/// [`MAX_JSON_DEPTH`]: crate::json_depth::MAX_JSON_DEPTH
pub fn json_or_null(text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(text) => crate::json_depth::parse(text.as_bytes(), crate::json_depth::MAX_JSON_DEPTH)
            .unwrap_or_else(|_| Value::String(text.to_owned())),
    }
}

/// An external event that continue-as-new hands to the next execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedEvent {
    /// The event's name.
    pub name: String,
    /// Its payload.
    pub input: Option<String>,
}

/// What an orchestration asked for in one episode.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // The fields mirror the WIT records, documented there.
pub enum ActionKind {
    ScheduleTask {
        name: String,
        input: Option<String>,
    },
    CreateTimer {
        fire_at: Timestamp,
    },
    CallSubOrchestration {
        name: String,
        instance_id: Option<String>,
        input: Option<String>,
    },
    SendEvent {
        instance_id: String,
        name: String,
        input: Option<String>,
    },
    Complete {
        result: Option<String>,
    },
    Fail {
        failure: FailureDetails,
    },
    ContinueAsNew {
        input: Option<String>,
        carried_events: Vec<CarriedEvent>,
    },
    CallEntity {
        entity: EntityId,
        operation: String,
        input: Option<String>,
    },
    SignalEntity {
        entity: EntityId,
        operation: String,
        input: Option<String>,
        scheduled_time: Option<Timestamp>,
    },
    LockEntities {
        entities: Vec<EntityId>,
    },
    UnlockEntities {
        entities: Vec<EntityId>,
    },
}

/// A decision of the orchestration, with its sequence number (-1 for terminal actions).
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// The action's sequence number, or -1 for complete, fail and continue-as-new.
    pub id: i32,
    /// What it asks for.
    pub kind: ActionKind,
}

impl Action {
    /// A short description for error messages: `ScheduleTask 'E1_SayHello'`.
    pub fn describe(&self) -> String {
        match &self.kind {
            ActionKind::ScheduleTask { name, .. } => format!("ScheduleTask '{name}'"),
            ActionKind::CreateTimer { fire_at } => format!("CreateTimer at {fire_at}"),
            ActionKind::CallSubOrchestration { name, .. } => format!("CallSubOrchestration '{name}'"),
            ActionKind::SendEvent { instance_id, name, .. } => format!("SendEvent '{name}' to '{instance_id}'"),
            ActionKind::Complete { .. } => "CompleteOrchestration".to_owned(),
            ActionKind::Fail { .. } => "FailOrchestration".to_owned(),
            ActionKind::ContinueAsNew { .. } => "ContinueAsNew".to_owned(),
            ActionKind::CallEntity { entity, operation, .. } => format!("CallEntity '{operation}' on {entity}"),
            ActionKind::SignalEntity { entity, operation, .. } => format!("SignalEntity '{operation}' to {entity}"),
            ActionKind::LockEntities { entities } => format!("LockEntities {}", list_entities(entities)),
            ActionKind::UnlockEntities { entities } => format!("UnlockEntities {}", list_entities(entities)),
        }
    }
}

/// `[a/1, b/2]`, for messages.
pub fn list_entities(entities: &[EntityId]) -> String {
    let names: Vec<String> = entities.iter().map(EntityId::to_string).collect();
    format!("[{}]", names.join(", "))
}

/// The stored row of one entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityRecord {
    /// The entity.
    pub id: EntityId,
    /// Its state (JSON); `None` once deleted.
    pub state: Option<String>,
    /// When it last ran an operation.
    pub last_operation_time: Timestamp,
    /// The orchestration holding its lock.
    pub lock_owner: Option<EntityCaller>,
}

impl EntityRecord {
    /// Encodes the record for the store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("entity records always serialize")
    }

    /// Decodes a record written by [`EntityRecord::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// What an entity operation asked for (sent only if the operation succeeded).
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // The fields mirror the WIT records, documented there.
pub enum EntityAction {
    Signal {
        entity: EntityId,
        operation: String,
        input: Option<String>,
        scheduled_time: Option<Timestamp>,
    },
    StartOrchestration {
        name: String,
        instance_id: Option<String>,
        input: Option<String>,
    },
}

/// What an entity returned for a batch of operations.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityBatch {
    /// One result per operation.
    pub results: Vec<Result<Option<String>, FailureDetails>>,
    /// The state after the batch; `None` deletes it.
    pub state: Option<String>,
    /// The actions of the successful operations.
    pub actions: Vec<EntityAction>,
}

/// What an orchestration returned for one episode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpisodeResult {
    /// New actions, in the order the orchestration issued them.
    pub actions: Vec<Action>,
    /// The custom status (JSON), if the orchestration ever set one.
    pub custom_status: Option<String>,
}

/// The runtime status of an instance, as the HTTP API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RuntimeStatus {
    /// Started but its first episode has not run.
    Pending,
    /// Running (possibly waiting for a timer, an activity or an event).
    Running,
    /// Finished with an output.
    Completed,
    /// Finished with an unhandled error.
    Failed,
    /// Stopped by a client.
    Terminated,
    /// Paused by a client; events are kept until it resumes.
    Suspended,
    /// Never produced by this host; listed because clients filter on it.
    Canceled,
    /// Transient state of an instance restarting itself; never stored by this host.
    ContinuedAsNew,
}

impl RuntimeStatus {
    /// The API name (`Running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeStatus::Pending => "Pending",
            RuntimeStatus::Running => "Running",
            RuntimeStatus::Completed => "Completed",
            RuntimeStatus::Failed => "Failed",
            RuntimeStatus::Terminated => "Terminated",
            RuntimeStatus::Suspended => "Suspended",
            RuntimeStatus::Canceled => "Canceled",
            RuntimeStatus::ContinuedAsNew => "ContinuedAsNew",
        }
    }

    /// Parses an API name, ignoring case.
    pub fn parse(text: &str) -> Option<Self> {
        [
            RuntimeStatus::Pending,
            RuntimeStatus::Running,
            RuntimeStatus::Completed,
            RuntimeStatus::Failed,
            RuntimeStatus::Terminated,
            RuntimeStatus::Suspended,
            RuntimeStatus::Canceled,
            RuntimeStatus::ContinuedAsNew,
        ]
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// A stable one-byte code for store indexes.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// True once the instance can no longer change by itself.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RuntimeStatus::Completed | RuntimeStatus::Failed | RuntimeStatus::Terminated | RuntimeStatus::Canceled
        )
    }
}

impl From<CompletionStatus> for RuntimeStatus {
    fn from(status: CompletionStatus) -> Self {
        match status {
            CompletionStatus::Completed => RuntimeStatus::Completed,
            CompletionStatus::Failed => RuntimeStatus::Failed,
            CompletionStatus::Terminated => RuntimeStatus::Terminated,
            CompletionStatus::ContinuedAsNew => RuntimeStatus::ContinuedAsNew,
        }
    }
}

/// The stored row of one orchestration instance: what a status query returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// The instance id.
    pub instance_id: String,
    /// The orchestrator function's name.
    pub name: String,
    /// The current execution; every start and continue-as-new gets a new one.
    pub execution_id: u64,
    /// The runtime status.
    pub runtime_status: RuntimeStatus,
    /// The current execution's input (JSON).
    pub input: Option<String>,
    /// The output (JSON) once completed; for failed and terminated instances, see `failure`.
    pub output: Option<String>,
    /// The custom status (JSON), if the orchestrator set one.
    pub custom_status: Option<String>,
    /// Why it failed, or the termination reason.
    pub failure: Option<FailureDetails>,
    /// When the instance was created.
    pub created_time: Timestamp,
    /// When it last changed.
    pub last_updated_time: Timestamp,
    /// Set for sub-orchestrations.
    pub parent: Option<ParentInstance>,
    /// Content hash of the app version the current execution runs on, fixed at its first
    /// episode so a deployment never changes the code under a running orchestration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
}

impl InstanceRecord {
    /// Encodes the record for the store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("instance records always serialize")
    }

    /// Decodes a record written by [`InstanceRecord::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The `output` field of the HTTP API: the result, the failure message, or the
    /// termination reason.
    pub fn api_output(&self) -> Value {
        match (self.runtime_status, &self.failure) {
            (RuntimeStatus::Failed, Some(failure)) => json!(failure.message),
            _ => json_or_null(self.output.as_deref()),
        }
    }
}

/// A message waiting in an instance's inbox: an event to append to its history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The execution it belongs to; `None` for external events, which go to whatever
    /// execution is current. A message for another execution is dropped unread.
    pub execution_id: Option<u64>,
    /// The event.
    pub event: HistoryEvent,
}

impl Message {
    /// Encodes the message for the store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("messages always serialize")
    }

    /// Decodes a message written by [`Message::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_iso8601() {
        for micros in [0, 1, 1_764_064_800_123_456, 951_782_400_000_000, -1] {
            let timestamp = Timestamp(micros);
            assert_eq!(
                Timestamp::parse_iso8601(&timestamp.to_iso8601()),
                Some(timestamp),
                "{timestamp}"
            );
        }
    }

    #[test]
    fn iso8601_formats_a_known_date() {
        assert_eq!(
            Timestamp(951_782_400_000_000).to_iso8601(),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn iso8601_parsing_accepts_what_clients_send() {
        let expected = Timestamp::parse_iso8601("2018-02-28T05:18:49Z").unwrap();
        assert_eq!(Timestamp::parse_iso8601("2018-02-28T05:18:49.0000000Z"), Some(expected));
        assert_eq!(Timestamp::parse_iso8601("2018-02-28T07:18:49+02:00"), Some(expected));
        assert_eq!(Timestamp::parse_iso8601("2018-02-28T05:18:49"), Some(expected));
        assert_eq!(
            Timestamp::parse_iso8601("2018-02-28T05:18:49.345237Z"),
            Some(expected.plus_micros(345_237))
        );
        assert!(Timestamp::parse_iso8601("2018-02-28").is_some());
        assert_eq!(Timestamp::parse_iso8601("yesterday"), None);
        assert_eq!(Timestamp::parse_iso8601("2018-13-01"), None);
    }

    #[test]
    fn runtime_status_names_parse_ignoring_case() {
        assert_eq!(RuntimeStatus::parse("running"), Some(RuntimeStatus::Running));
        assert_eq!(RuntimeStatus::parse("Completed"), Some(RuntimeStatus::Completed));
        assert_eq!(RuntimeStatus::parse("bogus"), None);
    }
}
