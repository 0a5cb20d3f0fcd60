//! The rules of a step, as functions of data: what an orchestration step or an entity batch
//! commits, given what was read and what the guest returned.
//!
//! The engine reads, runs the guest and hands the results here; a storage backend writes the
//! [`StepCommit`] or [`EntityCommit`] it gets, asking [`start_blocked_by`] and
//! [`timer_message`] the two questions a transaction must answer with the rows it holds.
//! So a second backend copies no domain rule, and every rule is tested without wasm or disk.
//!
//! Ids come from the caller (`next_id`: execution ids from the store's counter), and time
//! is the `now` passed in.

use serde::{Deserialize, Serialize};

use crate::history::{
    EntityAction, EntityBatch, EntityCaller, EntityId, EntityRecord, EventKind, FailureDetails, HistoryEvent,
    InstanceRecord, Message, ParentInstance, RuntimeStatus, Timestamp,
};
use crate::json_depth;
use crate::replay::{Effect, EpisodeOutcome, ExecutionState, RewindPlan};

/// An activity waiting to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityWorkItem {
    /// The orchestration that scheduled it.
    pub instance_id: String,
    /// That orchestration's execution.
    pub execution_id: u64,
    /// The task's sequence number.
    pub task_id: i32,
    /// The activity's name.
    pub name: String,
    /// Its input (JSON).
    pub input: Option<String>,
    /// The app version of the orchestration that scheduled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
}

/// A durable timer waiting to fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerItem {
    /// The orchestration (or entity) that created it.
    pub instance_id: String,
    /// That orchestration's execution.
    pub execution_id: u64,
    /// The timer's sequence number.
    pub timer_id: i32,
    /// When it fires.
    pub fire_at: Timestamp,
    /// Deliver this message instead of `TimerFired` (a scheduled entity signal).
    #[serde(default)]
    pub message: Option<Message>,
}

/// Whether a storage id names an entity (`@name@key`) rather than an orchestration.
pub fn is_entity_key(id: &str) -> bool {
    id.starts_with('@')
}

/// A sub-orchestration to create as part of its parent's step.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildStart {
    /// The child's row, `Pending`.
    pub record: InstanceRecord,
    /// Its `ExecutionStarted` message.
    pub started: Message,
    /// Sent to the parent instead, if an instance with the child's id is still running.
    pub conflict: Message,
}

/// All effects of one orchestration step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepCommit {
    /// The instance.
    pub instance_id: String,
    /// The execution the step ran; the commit is stale if the row has another.
    pub execution_id: u64,
    /// If set, the commit is also stale unless the row has this status (a rewind requires
    /// the instance to be still Failed).
    pub require_status: Option<RuntimeStatus>,
    /// Inbox keys the step consumed (accepted or dropped).
    pub consumed: Vec<u64>,
    /// Delete the whole history before appending (continue-as-new).
    pub reset_history: bool,
    /// Position of the first appended event.
    pub history_start: u64,
    /// Events to append.
    pub append: Vec<HistoryEvent>,
    /// The new instance row.
    pub record: InstanceRecord,
    /// Activities to queue.
    pub activities: Vec<ActivityWorkItem>,
    /// Timers to register.
    pub timers: Vec<TimerItem>,
    /// Messages to instances (itself included); a message to an instance that does not
    /// exist is dropped.
    pub messages: Vec<(String, Message)>,
    /// Sub-orchestrations to create.
    pub children: Vec<ChildStart>,
}

/// All effects of one batch of entity operations.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityCommit {
    /// The entity's storage key.
    pub entity_key: String,
    /// Inbox keys the batch consumed.
    pub consumed: Vec<u64>,
    /// The entity's new row; `None` deletes it (no state, no lock).
    pub record: Option<EntityRecord>,
    /// Messages to orchestrations (answers, lock grants) and entities (signals, lock
    /// requests); a message to a missing orchestration is dropped.
    pub messages: Vec<(String, Message)>,
    /// Scheduled signals.
    pub timers: Vec<TimerItem>,
    /// Orchestrations the operations started (skipped if the id is running).
    pub starts: Vec<(InstanceRecord, Message)>,
}

/// The limits a step's commit is held to (the app's `history_events` and `payload_bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepLimits {
    /// Events one execution's history may hold.
    pub history_events: usize,
    /// Bytes one payload (input, output, custom status, message, state) may hold.
    pub payload_bytes: usize,
}

// ---------------------------------------------------------------------------------------
// Questions a storage transaction answers with the rows it holds.

/// Whether a start may take the id `existing` holds: `Some(status)` while that instance is
/// still running (the start is refused, or a child start answers its parent with the
/// conflict); `None` when the id is free or its instance has finished, which the start
/// replaces, deleting the old row, history and inbox.
pub fn start_blocked_by(existing: Option<&InstanceRecord>) -> Option<RuntimeStatus> {
    existing
        .map(|record| record.runtime_status)
        .filter(|status| !status.is_terminal())
}

/// The message a due timer delivers when it fires at `now`: its scheduled entity signal as
/// sent, or `TimerFired` to its orchestration's execution. Either goes only to an entity or
/// an instance that still exists.
pub fn timer_message(timer: &TimerItem, now: Timestamp) -> Message {
    match &timer.message {
        Some(message) => message.clone(),
        None => Message {
            execution_id: Some(timer.execution_id),
            event: HistoryEvent::new(
                now,
                EventKind::TimerFired {
                    timer_id: timer.timer_id,
                    fire_at: timer.fire_at,
                },
            ),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Orchestration steps.

/// A new `Pending` instance row and its `ExecutionStarted` message.
pub fn new_instance(
    execution_id: u64,
    instance_id: &str,
    name: &str,
    input: Option<String>,
    parent: Option<ParentInstance>,
    now: Timestamp,
) -> (InstanceRecord, Message) {
    let record = InstanceRecord {
        instance_id: instance_id.to_owned(),
        name: name.to_owned(),
        execution_id,
        runtime_status: RuntimeStatus::Pending,
        input: input.clone(),
        output: None,
        custom_status: None,
        failure: None,
        created_time: now,
        last_updated_time: now,
        parent: parent.clone(),
        app_version: None,
    };
    let started = Message {
        execution_id: Some(execution_id),
        event: HistoryEvent::new(
            now,
            EventKind::ExecutionStarted {
                name: name.to_owned(),
                instance_id: instance_id.to_owned(),
                input,
                parent,
            },
        ),
    };
    (record, started)
}

/// A step that only consumes inbox messages (late, stale or duplicate ones) and changes
/// nothing else.
pub fn unchanged_commit(record: &InstanceRecord, consumed: Vec<u64>, history_len: u64) -> StepCommit {
    StepCommit {
        instance_id: record.instance_id.clone(),
        execution_id: record.execution_id,
        require_status: None,
        consumed,
        reset_history: false,
        history_start: history_len,
        append: Vec::new(),
        record: record.clone(),
        activities: Vec::new(),
        timers: Vec::new(),
        messages: Vec::new(),
        children: Vec::new(),
    }
}

/// The orchestrator named by the `ExecutionStarted` among `events`, if there is one.
pub fn started_name(events: &[HistoryEvent]) -> Option<String> {
    events.iter().find_map(|event| match &event.kind {
        EventKind::ExecutionStarted { name, .. } => Some(name.clone()),
        _ => None,
    })
}

/// Turns an episode's outcome into the commit of its step: the new row, the history to
/// append, and one write per effect (work items, timers, messages, children, the next
/// execution of a continue-as-new, whose execution id comes from `next_id`).
pub fn build_commit(
    record: &InstanceRecord,
    state: &ExecutionState,
    consumed: Vec<u64>,
    outcome: EpisodeOutcome,
    now: Timestamp,
    next_id: &mut dyn FnMut() -> u64,
) -> StepCommit {
    let instance_id = record.instance_id.clone();
    let execution_id = record.execution_id;
    let mut next = record.clone();
    next.last_updated_time = now;
    next.runtime_status = outcome.status;
    if outcome.custom_status.is_some() {
        next.custom_status = outcome.custom_status;
    }
    if outcome.status.is_terminal() {
        next.output = outcome.output;
        next.failure = outcome.failure;
    }
    let mut commit = StepCommit {
        instance_id: instance_id.clone(),
        execution_id,
        require_status: None,
        consumed,
        reset_history: false,
        history_start: state.history_len as u64,
        append: outcome.new_history,
        record: next,
        activities: Vec::new(),
        timers: Vec::new(),
        messages: Vec::new(),
        children: Vec::new(),
    };
    let name = if state.started {
        state.name.clone()
    } else {
        started_name(&commit.append).unwrap_or_default()
    };
    let message = |execution_id: Option<u64>, kind: EventKind| Message {
        execution_id,
        event: HistoryEvent::new(now, kind),
    };
    for effect in outcome.effects {
        match effect {
            Effect::CallEntity {
                task_id,
                entity,
                operation,
                input,
            } => {
                let caller = EntityCaller {
                    instance_id: instance_id.clone(),
                    execution_id,
                    task_id,
                };
                let operation = entity_operation(operation, input, Some(caller), Some(instance_id.clone()), now);
                commit.messages.push((entity.storage_key(), operation));
            }
            Effect::SignalEntity {
                entity,
                operation,
                input,
                scheduled_time,
            } => {
                let operation = entity_operation(operation, input, None, Some(instance_id.clone()), now);
                push_signal(
                    &mut commit.messages,
                    &mut commit.timers,
                    &entity,
                    operation,
                    scheduled_time,
                    now,
                );
            }
            Effect::LockEntities { task_id, entities } => {
                let owner = EntityCaller {
                    instance_id: instance_id.clone(),
                    execution_id,
                    task_id,
                };
                let first = entities[0].storage_key();
                let request = EventKind::EntityLockRequest {
                    owner,
                    entities,
                    position: 0,
                };
                commit.messages.push((first, message(None, request)));
            }
            Effect::UnlockEntities { entities } => {
                for entity in entities {
                    let unlock = EventKind::EntityUnlock {
                        owner: instance_id.clone(),
                    };
                    commit.messages.push((entity.storage_key(), message(None, unlock)));
                }
            }
            Effect::ScheduleActivity { task_id, name, input } => commit.activities.push(ActivityWorkItem {
                instance_id: instance_id.clone(),
                execution_id,
                task_id,
                name,
                input,
                app_version: None,
            }),
            Effect::CreateTimer { timer_id, fire_at } => commit.timers.push(TimerItem {
                instance_id: instance_id.clone(),
                execution_id,
                timer_id,
                fire_at,
                message: None,
            }),
            Effect::StartSubOrchestration {
                task_id,
                name: child_name,
                instance_id: child_id,
                input,
            } => {
                let parent = ParentInstance {
                    instance_id: instance_id.clone(),
                    name: name.clone(),
                    execution_id,
                    task_scheduled_id: task_id,
                };
                let failed = EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id: task_id,
                    failure: FailureDetails::host(
                        "InstanceAlreadyRunning",
                        format!("cannot start sub-orchestration: instance '{child_id}' is already running"),
                    ),
                };
                let (record, started) = new_instance(next_id(), &child_id, &child_name, input, Some(parent), now);
                commit.children.push(ChildStart {
                    record,
                    started,
                    conflict: message(Some(execution_id), failed),
                });
            }
            Effect::SendEvent {
                instance_id: target,
                name,
                input,
            } => commit
                .messages
                .push((target, message(None, EventKind::EventRaised { name, input }))),
            Effect::NotifyParent { parent, event } => commit
                .messages
                .push((parent.instance_id.clone(), message(Some(parent.execution_id), event))),
            Effect::ContinueAsNew { input, carried_events } => {
                let next_execution = next_id();
                commit.reset_history = true;
                commit.history_start = 0;
                commit.append.clear();
                commit.record.execution_id = next_execution;
                commit.record.runtime_status = RuntimeStatus::Running;
                commit.record.input = input.clone();
                commit.record.output = None;
                commit.record.failure = None;
                let started = EventKind::ExecutionStarted {
                    name: name.clone(),
                    instance_id: instance_id.clone(),
                    input,
                    parent: state.parent.clone(),
                };
                let carried = carried_events.into_iter().map(|event| EventKind::EventRaised {
                    name: event.name,
                    input: event.input,
                });
                for kind in std::iter::once(started).chain(carried) {
                    commit
                        .messages
                        .push((instance_id.clone(), message(Some(next_execution), kind)));
                }
            }
        }
    }
    commit
}

/// The commit that rewinds a Failed execution by `plan`: the history without its failure,
/// the instance Running again, its unfinished activities and timers issued again, and for
/// each unfinished child (with its row, if it still exists) the report it owes: a child
/// that completed or was terminated while its parent was Failed reported to nobody, so it
/// reports again. Returns the commit (valid only while the instance is still Failed) and
/// the ids of the children that failed themselves, which the caller rewinds in turn.
pub fn rewind_commit(
    record: &InstanceRecord,
    plan: RewindPlan,
    children: Vec<(i32, Option<InstanceRecord>)>,
    now: Timestamp,
) -> (StepCommit, Vec<String>) {
    let instance_id = record.instance_id.clone();
    let execution_id = record.execution_id;
    let mut next = record.clone();
    next.runtime_status = RuntimeStatus::Running;
    next.output = None;
    next.failure = None;
    next.last_updated_time = now;
    let mut commit = StepCommit {
        require_status: Some(RuntimeStatus::Failed),
        reset_history: true,
        history_start: 0,
        append: plan.history,
        record: next,
        ..unchanged_commit(record, Vec::new(), 0)
    };
    commit.activities = plan
        .activities
        .into_iter()
        .map(|(task_id, name, input)| ActivityWorkItem {
            instance_id: instance_id.clone(),
            execution_id,
            task_id,
            name,
            input,
            app_version: record.app_version.clone(),
        })
        .collect();
    commit.timers = plan
        .timers
        .into_iter()
        .map(|(timer_id, fire_at)| TimerItem {
            instance_id: instance_id.clone(),
            execution_id,
            timer_id,
            fire_at,
            message: None,
        })
        .collect();
    let mut failed_children = Vec::new();
    for (task_scheduled_id, child) in children {
        let Some(child) = child else { continue };
        let event = match child.runtime_status {
            RuntimeStatus::Completed => EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id,
                result: child.output,
            },
            RuntimeStatus::Failed => {
                failed_children.push(child.instance_id);
                continue;
            }
            RuntimeStatus::Terminated | RuntimeStatus::Canceled => EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id,
                failure: FailureDetails::host("Terminated", "the sub-orchestration was terminated"),
            },
            _ => continue,
        };
        let report = Message {
            execution_id: Some(execution_id),
            event: HistoryEvent::new(now, event),
        };
        commit.messages.push((instance_id.clone(), report));
    }
    (commit, failed_children)
}

/// The failure reason for a guest payload nested deeper than the host accepts.
pub fn too_deep_reason(what: &str) -> String {
    format!(
        "{what} is JSON nested deeper than {} levels, the most the host accepts",
        json_depth::MAX_JSON_DEPTH
    )
}

/// Why `payload` (named `what` in the reason) breaks the payload size or nesting limit.
fn payload_excess(what: &str, payload: Option<&str>, limit: usize) -> Option<String> {
    let payload = payload?;
    if payload.len() > limit {
        return Some(format!(
            "{what} is {} bytes, over the payload limit of {limit} bytes",
            payload.len()
        ));
    }
    json_depth::too_deep(payload).then(|| too_deep_reason(what))
}

/// Why a step's commit breaks the history, payload or nesting limits, if it does; the
/// instance then fails with `LimitExceeded` and this reason instead.
pub fn over_limits(commit: &StepCommit, limits: &StepLimits) -> Option<String> {
    let history = commit.history_start as usize + commit.append.len();
    if history > limits.history_events {
        return Some(format!(
            "the history would grow to {history} events, over the limit of {} events per execution",
            limits.history_events
        ));
    }
    let too_big = |what: &str, payload: &Option<String>| payload_excess(what, payload.as_deref(), limits.payload_bytes);
    if let Some(excess) = too_big("the orchestration's output", &commit.record.output)
        .or_else(|| too_big("the custom status", &commit.record.custom_status))
    {
        return Some(excess);
    }
    for activity in &commit.activities {
        if let Some(excess) = too_big(&format!("the input of activity '{}'", activity.name), &activity.input) {
            return Some(excess);
        }
    }
    for child in &commit.children {
        let what = format!("the input of sub-orchestration '{}'", child.record.name);
        if let Some(excess) = too_big(&what, &child.record.input) {
            return Some(excess);
        }
    }
    let messages = commit
        .messages
        .iter()
        .map(|(target, message)| (target, &message.event))
        .chain(commit.timers.iter().filter_map(|timer| {
            let message = timer.message.as_ref()?;
            Some((&timer.instance_id, &message.event))
        }));
    for (target, event) in messages {
        let payload = match &event.kind {
            EventKind::EventRaised { input, .. }
            | EventKind::EntityOperation { input, .. }
            | EventKind::ExecutionStarted { input, .. } => input,
            _ => continue,
        };
        if let Some(excess) = too_big(&format!("a message to '{target}'"), payload) {
            return Some(excess);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Entities.

/// An operation for an entity's inbox; `caller` waits for the result, `sender` is the
/// orchestration that sent it (an entity's lock lets only its owner's operations through).
pub fn entity_operation(
    operation: String,
    input: Option<String>,
    caller: Option<EntityCaller>,
    sender: Option<String>,
    now: Timestamp,
) -> Message {
    let event = EventKind::EntityOperation {
        operation,
        input,
        caller,
        sender,
    };
    Message {
        execution_id: None,
        event: HistoryEvent::new(now, event),
    }
}

/// Queues a signal to an entity now, or as a timer when it is scheduled for later.
pub fn push_signal(
    messages: &mut Vec<(String, Message)>,
    timers: &mut Vec<TimerItem>,
    entity: &EntityId,
    message: Message,
    scheduled_time: Option<Timestamp>,
    now: Timestamp,
) {
    match scheduled_time {
        Some(fire_at) if fire_at > now => timers.push(TimerItem {
            instance_id: entity.storage_key(),
            execution_id: 0,
            timer_id: -1,
            fire_at,
            message: Some(message),
        }),
        _ => messages.push((entity.storage_key(), message)),
    }
}

/// The message that moves a lock request on: to the next entity in sorted order, or, after
/// the last, the grant to the orchestration.
pub fn pass_lock_on(
    owner: &EntityCaller,
    entities: Vec<EntityId>,
    position: usize,
    now: Timestamp,
) -> (String, Message) {
    match entities.get(position + 1) {
        Some(next) => {
            let event = EventKind::EntityLockRequest {
                owner: owner.clone(),
                entities: entities.clone(),
                position: position + 1,
            };
            (
                next.storage_key(),
                Message {
                    execution_id: None,
                    event: HistoryEvent::new(now, event),
                },
            )
        }
        None => {
            let event = EventKind::EntityLockGranted {
                task_scheduled_id: owner.task_id,
            };
            (
                owner.instance_id.clone(),
                Message {
                    execution_id: Some(owner.execution_id),
                    event: HistoryEvent::new(now, event),
                },
            )
        }
    }
}

/// One operation a batch runs, with the orchestration waiting for its result.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingOperation {
    /// The operation's name.
    pub operation: String,
    /// Its input (JSON).
    pub input: Option<String>,
    /// Who waits for the result; `None` for a signal.
    pub caller: Option<EntityCaller>,
}

/// What an entity's inbox lets run now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntityTriage {
    /// Inbox keys consumed by this batch; the rest wait.
    pub consumed: Vec<u64>,
    /// The operations to run, in arrival order.
    pub operations: Vec<PendingOperation>,
    /// The lock holder after the batch.
    pub lock_owner: Option<EntityCaller>,
    /// Lock requests passed on (to the next entity, or the grant to the owner).
    pub messages: Vec<(String, Message)>,
}

/// The orchestrations whose lock requests are in `messages`: the triage must know whether
/// each still runs, since a lock for one that has ended would never be released.
pub fn lock_requesters(messages: &[(u64, Message)]) -> Vec<EntityCaller> {
    messages
        .iter()
        .filter_map(|(_, message)| match &message.event.kind {
            EventKind::EntityLockRequest { owner, .. } => Some(owner.clone()),
            _ => None,
        })
        .collect()
}

/// Decides which of an entity's inbox messages run in this batch. While the entity is
/// locked, only its owner's operations run and the rest wait; a release stops the batch
/// when something waited for it, so that what waited goes first in the next batch (per
/// sender order holds). `is_running` answers for the owners of [`lock_requesters`].
pub fn triage_entity_inbox(
    lock_owner: Option<EntityCaller>,
    messages: Vec<(u64, Message)>,
    is_running: impl Fn(&EntityCaller) -> bool,
    now: Timestamp,
) -> EntityTriage {
    let mut triage = EntityTriage {
        lock_owner,
        ..EntityTriage::default()
    };
    let mut deferred = false;
    for (key, message) in messages {
        match message.event.kind {
            EventKind::EntityOperation {
                operation,
                input,
                caller,
                sender,
            } => {
                if let Some(owner) = &triage.lock_owner
                    && sender.as_deref() != Some(owner.instance_id.as_str())
                {
                    deferred = true;
                    continue;
                }
                triage.consumed.push(key);
                triage.operations.push(PendingOperation {
                    operation,
                    input,
                    caller,
                });
            }
            EventKind::EntityLockRequest {
                owner,
                entities,
                position,
            } => match &triage.lock_owner {
                Some(current) if *current != owner => deferred = true,
                Some(_) => triage.consumed.push(key),
                None => {
                    triage.consumed.push(key);
                    if is_running(&owner) {
                        triage.messages.push(pass_lock_on(&owner, entities, position, now));
                        triage.lock_owner = Some(owner);
                    }
                }
            },
            EventKind::EntityUnlock { owner } => {
                triage.consumed.push(key);
                if triage
                    .lock_owner
                    .as_ref()
                    .is_some_and(|current| current.instance_id == owner)
                {
                    triage.lock_owner = None;
                    if deferred {
                        break;
                    }
                }
            }
            _ => triage.consumed.push(key),
        }
    }
    triage
}

/// Holds what an entity returned for a batch to the payload limits: a state or a sent input
/// over them fails the whole batch (the previous state stays); a result over them fails
/// only its operation.
pub fn check_entity_batch(
    batch: &mut EntityBatch,
    entity: &EntityId,
    operations: &[PendingOperation],
    payload_bytes: usize,
) -> Result<(), FailureDetails> {
    let limit_exceeded = |reason: String| FailureDetails::host("LimitExceeded", reason);
    if let Some(excess) = payload_excess(
        &format!("the state of entity {entity}"),
        batch.state.as_deref(),
        payload_bytes,
    ) {
        return Err(limit_exceeded(excess));
    }
    let mut sent = batch.actions.iter().filter_map(|action| match action {
        EntityAction::Signal { input, .. } | EntityAction::StartOrchestration { input, .. } => input.as_deref(),
    });
    if sent.any(json_depth::too_deep) {
        return Err(limit_exceeded(too_deep_reason(&format!(
            "an input that entity {entity} sends"
        ))));
    }
    for (result, pending) in batch.results.iter_mut().zip(operations) {
        if let Ok(Some(value)) = result
            && let Some(excess) = payload_excess(
                &format!("the result of '{}'", pending.operation),
                Some(value),
                payload_bytes,
            )
        {
            *result = Err(limit_exceeded(excess));
        }
    }
    Ok(())
}

/// Assembles the commit of an entity batch: the answers to callers, the signals and starts
/// of the operations, the new row (or none: no state and no lock deletes the entity).
/// `ran` is what the guest returned for `triage.operations` (or why the whole batch
/// failed); `None` when the batch ran no operation. New instances get their execution id
/// from `next_id` and, when the entity named none, their instance id from `new_instance_id`.
pub fn entity_commit(
    entity: EntityId,
    record: Option<&EntityRecord>,
    triage: EntityTriage,
    ran: Option<Result<EntityBatch, FailureDetails>>,
    now: Timestamp,
    next_id: &mut dyn FnMut() -> u64,
    new_instance_id: &mut dyn FnMut() -> String,
) -> EntityCommit {
    let EntityTriage {
        consumed,
        operations,
        lock_owner,
        mut messages,
    } = triage;
    let mut state = record.and_then(|record| record.state.clone());
    let mut last_operation_time = record.map_or(now, |record| record.last_operation_time);
    let mut timers = Vec::new();
    let mut starts = Vec::new();
    if let Some(ran) = ran {
        last_operation_time = now;
        let results = match ran {
            Ok(batch) => {
                state = batch.state;
                for action in batch.actions {
                    match action {
                        EntityAction::Signal {
                            entity: target,
                            operation,
                            input,
                            scheduled_time,
                        } => {
                            let signal = entity_operation(operation, input, None, None, now);
                            push_signal(&mut messages, &mut timers, &target, signal, scheduled_time, now);
                        }
                        EntityAction::StartOrchestration {
                            name,
                            instance_id,
                            input,
                        } => {
                            let id = instance_id.unwrap_or_else(&mut *new_instance_id);
                            starts.push(new_instance(next_id(), &id, &name, input, None, now));
                        }
                    }
                }
                batch.results
            }
            Err(failure) => vec![Err(failure); operations.len()],
        };
        let mut results = results.into_iter();
        for pending in operations {
            let result = results.next().unwrap_or_else(|| {
                Err(FailureDetails::host(
                    "EntityError",
                    format!("the entity returned no result for '{}'", pending.operation),
                ))
            });
            let Some(caller) = pending.caller else { continue };
            let task_scheduled_id = caller.task_id;
            let event = match result {
                Ok(result) => EventKind::EntityOperationCompleted {
                    task_scheduled_id,
                    result,
                },
                Err(failure) => EventKind::EntityOperationFailed {
                    task_scheduled_id,
                    failure,
                },
            };
            let answer = Message {
                execution_id: Some(caller.execution_id),
                event: HistoryEvent::new(now, event),
            };
            messages.push((caller.instance_id, answer));
        }
    }
    let entity_key = entity.storage_key();
    let record = if state.is_none() && lock_owner.is_none() {
        None
    } else {
        Some(EntityRecord {
            id: entity,
            state,
            last_operation_time,
            lock_owner,
        })
    };
    EntityCommit {
        entity_key,
        consumed,
        record,
        messages,
        timers,
        starts,
    }
}

#[cfg(test)]
mod tests;
