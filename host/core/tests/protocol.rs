//! The host's side of the protocol corpus (`tests/protocol/*.json`; format in its README,
//! procedure in `tests/protocol/HOST.md`): every orchestration case's episodes, decoded into
//! history events and actions, run through the pure replay rules with no wasm. A case lists
//! the actions a correct guest returns, so the guest's side is already known.
//!
//! Live cases are recorded as the host records them (`finish_episode`) and must replay
//! cleanly; replay cases are stored histories whose replay must report exactly the case's
//! nondeterminism. Entity batch cases have no host-side replay and are skipped.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;

use durable_core::history::{
    Action, ActionKind, CarriedEvent, CompletionStatus, EntityId, EpisodeResult, EventKind, FailureDetails,
    HistoryEvent, ParentInstance, RuntimeStatus, Timestamp,
};
use durable_core::replay::{
    self, EpisodeGuest, ExecutionState, Nondeterminism, ReplayError, ReplayStop, is_action_event,
};
use serde_json::{Map, Value, json};

/// A case on which the host's replay rules and the corpus disagree. It stays listed (and
/// visible) until one side changes; a listed case must still fail with exactly `fails_with`,
/// so the list cannot go stale silently.
struct Disagreement {
    file: &'static str,
    case: &'static str,
    /// The case's failure today, after `file: case: `.
    fails_with: &'static str,
    /// Why the two sides differ.
    reason: &'static str,
}

const KNOWN_DISAGREEMENTS: &[Disagreement] = &[];

// ---- a strict reader of corpus objects ----

/// One JSON object of the corpus; `what` says where it is, for messages.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    what: String,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Value, what: impl Into<String>) -> Result<Self, String> {
        let what = what.into();
        match value.as_object() {
            Some(map) => Ok(Fields { map, what }),
            None => Err(format!("{what}: expected an object, found {value}")),
        }
    }

    /// Fails on a missing `required` member, or on a member in neither list.
    fn only(&self, required: &[&str], optional: &[&str]) -> Result<(), String> {
        if let Some(missing) = required.iter().find(|key| !self.map.contains_key(**key)) {
            return Err(format!("{}: missing field `{missing}`", self.what));
        }
        let known = |key: &String| required.contains(&key.as_str()) || optional.contains(&key.as_str());
        if let Some(unknown) = self.map.keys().find(|key| !known(key)) {
            return Err(format!("{}: unknown field `{unknown}`", self.what));
        }
        Ok(())
    }

    fn within(&self, what: impl std::fmt::Display) -> String {
        format!("{} {what}", self.what)
    }

    /// A member that is present and not null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    fn value(&self, key: &str) -> Result<&'a Value, String> {
        self.map
            .get(key)
            .ok_or_else(|| format!("{}: missing field `{key}`", self.what))
    }

    fn wrong(&self, key: &str, expected: &str) -> String {
        format!(
            "{}: field `{key}` should be {expected}, found {}",
            self.what, self.map[key]
        )
    }

    fn string(&self, key: &str) -> Result<String, String> {
        let value = self.value(key)?;
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.wrong(key, "a string"))
    }

    /// An `option<string>`: absent or null is none.
    fn opt_string(&self, key: &str) -> Result<Option<String>, String> {
        self.get(key)
            .map(|value| {
                value
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.wrong(key, "a string"))
            })
            .transpose()
    }

    fn int(&self, key: &str) -> Result<i64, String> {
        self.value(key)?.as_i64().ok_or_else(|| self.wrong(key, "an integer"))
    }

    fn opt_int(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key)
            .map(|value| value.as_i64().ok_or_else(|| self.wrong(key, "an integer")))
            .transpose()
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, String> {
        self.get(key)
            .map(|value| value.as_bool().ok_or_else(|| self.wrong(key, "true or false")))
            .transpose()
    }

    /// An `s32`: a sequence number.
    fn seq(&self, key: &str) -> Result<i32, String> {
        i32::try_from(self.int(key)?).map_err(|_| self.wrong(key, "an s32"))
    }

    fn timestamp(&self, key: &str) -> Result<Timestamp, String> {
        self.int(key).map(Timestamp)
    }

    /// A payload: absent is none, anything else (null included) its compact JSON text.
    fn payload(&self, key: &str) -> Option<String> {
        self.map.get(key).map(Value::to_string)
    }

    fn list(&self, key: &str) -> Result<&'a Vec<Value>, String> {
        self.value(key)?.as_array().ok_or_else(|| self.wrong(key, "a list"))
    }

    /// The first string of a `*-contains` list.
    fn first_string(&self, key: &str) -> Result<String, String> {
        self.list(key)?
            .first()
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| self.wrong(key, "a list of strings, not empty"))
    }
}

// ---- corpus JSON to host types ----

fn failure(value: &Value, what: String) -> Result<FailureDetails, String> {
    let f = Fields::new(value, what)?;
    f.only(&["error-type", "message"], &["details"])?;
    Ok(FailureDetails {
        error_type: f.string("error-type")?,
        message: f.string("message")?,
        details: f.opt_string("details")?,
    })
}

/// The failure of an expected `fail` action: its error type, its message (or the first
/// `message-contains` string) and its details (or the first `details-contains` string).
fn expected_failure(value: &Value, what: String) -> Result<FailureDetails, String> {
    let f = Fields::new(value, what)?;
    f.only(
        &["error-type"],
        &["message", "message-contains", "details", "details-contains"],
    )?;
    let message = match (f.map.contains_key("message"), f.map.contains_key("message-contains")) {
        (true, _) => f.string("message")?,
        (false, true) => f.first_string("message-contains")?,
        (false, false) => return Err(format!("{}: missing field `message`", f.what)),
    };
    let details = match (f.map.contains_key("details"), f.map.contains_key("details-contains")) {
        (false, true) => Some(f.first_string("details-contains")?),
        _ => f.opt_string("details")?,
    };
    Ok(FailureDetails {
        error_type: f.string("error-type")?,
        message,
        details,
    })
}

/// An entity id. Actions come from the guest, and the host lowercases their names as it
/// converts them from WIT (`EntityId::new`); events are the host's own, stored as they are.
fn entity(value: &Value, what: String, from_guest: bool) -> Result<EntityId, String> {
    let f = Fields::new(value, what)?;
    f.only(&["name", "key"], &[])?;
    let (name, key) = (f.string("name")?, f.string("key")?);
    Ok(if from_guest {
        EntityId::new(&name, &key)
    } else {
        EntityId { name, key }
    })
}

fn entities(f: &Fields, key: &str, from_guest: bool) -> Result<Vec<EntityId>, String> {
    f.list(key)?
        .iter()
        .enumerate()
        .map(|(index, value)| entity(value, f.within(format_args!("{key}[{index}]")), from_guest))
        .collect()
}

/// One event of an episode; `episode_time` is its `orchestrator-started`'s timestamp.
fn event(value: &Value, episode_time: Timestamp, what: String) -> Result<HistoryEvent, String> {
    let f = Fields::new(value, what)?;
    let name = f.string("kind")?;
    let f = Fields {
        what: format!("{} ({name})", f.what),
        ..f
    };
    let only = |required: &[&str], optional: &[&str]| {
        f.only(
            &[&["kind"], required].concat(),
            &[&["event-id", "timestamp"], optional].concat(),
        )
    };
    let failed = || failure(f.value("failure")?, f.within("failure"));
    let kind = match name.as_str() {
        "execution-started" => {
            only(&["name", "instance-id"], &["input", "parent"])?;
            let parent = match f.get("parent") {
                None => None,
                Some(parent) => {
                    let p = Fields::new(parent, f.within("parent"))?;
                    p.only(&["instance-id", "name", "task-scheduled-id"], &[])?;
                    Some(ParentInstance {
                        instance_id: p.string("instance-id")?,
                        name: p.string("name")?,
                        // The WIT record has no execution; only the host's store does.
                        execution_id: 0,
                        task_scheduled_id: p.seq("task-scheduled-id")?,
                    })
                }
            };
            EventKind::ExecutionStarted {
                name: f.string("name")?,
                instance_id: f.string("instance-id")?,
                input: f.payload("input"),
                parent,
            }
        }
        "orchestrator-started" => {
            only(&[], &[])?;
            EventKind::OrchestratorStarted
        }
        "orchestrator-completed" => {
            only(&[], &[])?;
            EventKind::OrchestratorCompleted
        }
        "task-scheduled" => {
            only(&["name"], &["input"])?;
            EventKind::TaskScheduled {
                name: f.string("name")?,
                input: f.payload("input"),
            }
        }
        "task-completed" => {
            only(&["task-scheduled-id"], &["result"])?;
            EventKind::TaskCompleted {
                task_scheduled_id: f.seq("task-scheduled-id")?,
                result: f.payload("result"),
            }
        }
        "task-failed" => {
            only(&["task-scheduled-id", "failure"], &[])?;
            EventKind::TaskFailed {
                task_scheduled_id: f.seq("task-scheduled-id")?,
                failure: failed()?,
            }
        }
        "timer-created" => {
            only(&["fire-at"], &[])?;
            EventKind::TimerCreated {
                fire_at: f.timestamp("fire-at")?,
            }
        }
        "timer-fired" => {
            only(&["timer-id", "fire-at"], &[])?;
            EventKind::TimerFired {
                timer_id: f.seq("timer-id")?,
                fire_at: f.timestamp("fire-at")?,
            }
        }
        "event-raised" => {
            only(&["name"], &["input"])?;
            EventKind::EventRaised {
                name: f.string("name")?,
                input: f.payload("input"),
            }
        }
        "event-sent" => {
            only(&["instance-id", "name"], &["input"])?;
            EventKind::EventSent {
                instance_id: f.string("instance-id")?,
                name: f.string("name")?,
                input: f.payload("input"),
            }
        }
        "sub-orchestration-instance-created" => {
            only(&["name", "instance-id"], &["input"])?;
            EventKind::SubOrchestrationInstanceCreated {
                name: f.string("name")?,
                instance_id: f.string("instance-id")?,
                input: f.payload("input"),
            }
        }
        "sub-orchestration-instance-completed" => {
            only(&["task-scheduled-id"], &["result"])?;
            EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id: f.seq("task-scheduled-id")?,
                result: f.payload("result"),
            }
        }
        "sub-orchestration-instance-failed" => {
            only(&["task-scheduled-id", "failure"], &[])?;
            EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id: f.seq("task-scheduled-id")?,
                failure: failed()?,
            }
        }
        "continue-as-new" => {
            only(&[], &["input"])?;
            EventKind::ContinueAsNew {
                input: f.payload("input"),
            }
        }
        "execution-suspended" => {
            only(&[], &["reason"])?;
            EventKind::ExecutionSuspended {
                reason: f.opt_string("reason")?,
            }
        }
        "execution-resumed" => {
            only(&[], &["reason"])?;
            EventKind::ExecutionResumed {
                reason: f.opt_string("reason")?,
            }
        }
        "execution-terminated" => {
            only(&[], &["reason"])?;
            EventKind::ExecutionTerminated {
                reason: f.payload("reason"),
            }
        }
        "execution-completed" => {
            only(&["status"], &["result", "failure"])?;
            let status = match f.string("status")?.as_str() {
                "completed" => CompletionStatus::Completed,
                "failed" => CompletionStatus::Failed,
                "terminated" => CompletionStatus::Terminated,
                "continued-as-new" => CompletionStatus::ContinuedAsNew,
                _ => return Err(f.wrong("status", "an orchestration-status")),
            };
            EventKind::ExecutionCompleted {
                status,
                result: f.payload("result"),
                failure: f.get("failure").map(|_| failed()).transpose()?,
            }
        }
        "entity-operation-called" => {
            only(&["entity", "operation"], &["input"])?;
            EventKind::EntityOperationCalled {
                entity: entity(f.value("entity")?, f.within("entity"), false)?,
                operation: f.string("operation")?,
                input: f.payload("input"),
            }
        }
        "entity-operation-signaled" => {
            only(&["entity", "operation"], &["input", "scheduled-time"])?;
            EventKind::EntityOperationSignaled {
                entity: entity(f.value("entity")?, f.within("entity"), false)?,
                operation: f.string("operation")?,
                input: f.payload("input"),
                scheduled_time: f.opt_int("scheduled-time")?.map(Timestamp),
            }
        }
        "entity-lock-requested" => {
            only(&["entities"], &[])?;
            EventKind::EntityLockRequested {
                entities: entities(&f, "entities", false)?,
            }
        }
        "entity-lock-granted" => {
            only(&["task-scheduled-id"], &[])?;
            EventKind::EntityLockGranted {
                task_scheduled_id: f.seq("task-scheduled-id")?,
            }
        }
        "entity-unlock-sent" => {
            only(&["entities"], &[])?;
            EventKind::EntityUnlockSent {
                entities: entities(&f, "entities", false)?,
            }
        }
        "entity-operation-completed" => {
            only(&["task-scheduled-id"], &["result"])?;
            EventKind::EntityOperationCompleted {
                task_scheduled_id: f.seq("task-scheduled-id")?,
                result: f.payload("result"),
            }
        }
        "entity-operation-failed" => {
            only(&["task-scheduled-id", "failure"], &[])?;
            EventKind::EntityOperationFailed {
                task_scheduled_id: f.seq("task-scheduled-id")?,
                failure: failed()?,
            }
        }
        other => return Err(format!("{}: unknown event kind `{other}`", f.what)),
    };
    let event_id = match f.opt_int("event-id")? {
        None => -1,
        Some(id) => i32::try_from(id).map_err(|_| f.wrong("event-id", "an s32"))?,
    };
    let timestamp = f.opt_int("timestamp")?.map_or(episode_time, Timestamp);
    Ok(HistoryEvent {
        event_id,
        timestamp,
        kind,
    })
}

/// One action a correct guest returns.
fn action(value: &Value, what: String) -> Result<Action, String> {
    let f = Fields::new(value, what)?;
    let name = f.string("kind")?;
    let f = Fields {
        what: format!("{} ({name})", f.what),
        ..f
    };
    let only = |required: &[&str], optional: &[&str]| f.only(&[&["id", "kind"], required].concat(), optional);
    let kind = match name.as_str() {
        "schedule-task" => {
            only(&["name"], &["input"])?;
            ActionKind::ScheduleTask {
                name: f.string("name")?,
                input: f.payload("input"),
            }
        }
        "create-timer" => {
            only(&["fire-at"], &[])?;
            ActionKind::CreateTimer {
                fire_at: f.timestamp("fire-at")?,
            }
        }
        "call-sub-orchestration" => {
            only(&["name"], &["instance-id", "input"])?;
            ActionKind::CallSubOrchestration {
                name: f.string("name")?,
                instance_id: f.opt_string("instance-id")?,
                input: f.payload("input"),
            }
        }
        "send-event" => {
            only(&["instance-id", "name"], &["input"])?;
            ActionKind::SendEvent {
                instance_id: f.string("instance-id")?,
                name: f.string("name")?,
                input: f.payload("input"),
            }
        }
        "complete" => {
            only(&[], &["output"])?;
            ActionKind::Complete {
                result: f.payload("output"),
            }
        }
        "fail" => {
            only(&["failure"], &[])?;
            ActionKind::Fail {
                failure: expected_failure(f.value("failure")?, f.within("failure"))?,
            }
        }
        "continue-as-new" => {
            only(&["carried-events"], &["input"])?;
            let carried_events = f
                .list("carried-events")?
                .iter()
                .enumerate()
                .map(|(index, carried)| {
                    let c = Fields::new(carried, f.within(format_args!("carried-events[{index}]")))?;
                    c.only(&["name"], &["input"])?;
                    Ok(CarriedEvent {
                        name: c.string("name")?,
                        input: c.payload("input"),
                    })
                })
                .collect::<Result<_, String>>()?;
            ActionKind::ContinueAsNew {
                input: f.payload("input"),
                carried_events,
            }
        }
        "call-entity" => {
            only(&["entity", "operation"], &["input"])?;
            ActionKind::CallEntity {
                entity: entity(f.value("entity")?, f.within("entity"), true)?,
                operation: f.string("operation")?,
                input: f.payload("input"),
            }
        }
        "signal-entity" => {
            only(&["entity", "operation"], &["input", "scheduled-time"])?;
            ActionKind::SignalEntity {
                entity: entity(f.value("entity")?, f.within("entity"), true)?,
                operation: f.string("operation")?,
                input: f.payload("input"),
                scheduled_time: f.opt_int("scheduled-time")?.map(Timestamp),
            }
        }
        "lock-entities" => {
            only(&["entities"], &[])?;
            ActionKind::LockEntities {
                entities: entities(&f, "entities", true)?,
            }
        }
        "unlock-entities" => {
            only(&["entities"], &[])?;
            ActionKind::UnlockEntities {
                entities: entities(&f, "entities", true)?,
            }
        }
        other => return Err(format!("{}: unknown action kind `{other}`", f.what)),
    };
    Ok(Action { id: f.seq("id")?, kind })
}

struct Episode {
    /// Its events, `orchestrator-started` first.
    events: Vec<HistoryEvent>,
    /// What the host stored for its actions (replay cases; optional in live cases).
    recorded: Option<Vec<HistoryEvent>>,
    /// The actions a correct guest returns.
    actions: Vec<Action>,
    custom_status: Option<String>,
}

enum Mode {
    Live,
    /// A stored history; the nondeterminism its replay reports, if any.
    Replay(Option<Nondeterminism>),
}

struct OrchestrationCase {
    instance_id: String,
    mode: Mode,
    episodes: Vec<Episode>,
}

fn events(f: &Fields, key: &str, time: Timestamp) -> Result<Vec<HistoryEvent>, String> {
    f.list(key)?
        .iter()
        .enumerate()
        .map(|(index, value)| event(value, time, f.within(format_args!("{key}[{index}]"))))
        .collect()
}

fn episode(value: &Value, index: usize, replay: bool) -> Result<Episode, String> {
    let f = Fields::new(value, format!("episode {index}"))?;
    if replay {
        f.only(&["events", "recorded", "actions"], &["replaying", "custom-status"])?;
    } else {
        f.only(&["events", "actions"], &["recorded", "replaying", "custom-status"])?;
    }
    f.opt_bool("replaying")?;
    // The episode's time: its first event's, which must be an orchestrator-started.
    let time = match f.list("events")?.first() {
        Some(first) if first.get("kind") == Some(&json!("orchestrator-started")) => {
            Fields::new(first, f.within("events[0]"))?.timestamp("timestamp")?
        }
        _ => return Err(format!("{}: events must open with orchestrator-started", f.what)),
    };
    let recorded = if f.map.contains_key("recorded") {
        Some(events(&f, "recorded", time)?)
    } else {
        None
    };
    let actions = f
        .list("actions")?
        .iter()
        .enumerate()
        .map(|(index, value)| action(value, f.within(format_args!("actions[{index}]"))))
        .collect::<Result<_, String>>()?;
    Ok(Episode {
        events: events(&f, "events", time)?,
        recorded,
        actions,
        custom_status: f.get("custom-status").map(Value::to_string),
    })
}

fn nondeterminism(value: &Value) -> Result<Option<Nondeterminism>, String> {
    if value.is_null() {
        return Ok(None);
    }
    let f = Fields::new(value, "nondeterminism")?;
    f.only(&["episode", "recorded", "returned"], &[])?;
    let episode = usize::try_from(f.int("episode")?).map_err(|_| f.wrong("episode", "an episode index"))?;
    Ok(Some(Nondeterminism {
        episode,
        recorded: f.opt_string("recorded")?,
        returned: f.opt_string("returned")?,
    }))
}

fn orchestration_case(case: &Fields) -> Result<OrchestrationCase, String> {
    let mode = case.opt_string("mode")?;
    let replay = match mode.as_deref() {
        None | Some("live") => false,
        Some("replay") => true,
        Some(_) => return Err(case.wrong("mode", "\"live\" or \"replay\"")),
    };
    let common = ["about", "instance-id", "mode", "replay-check"];
    if replay {
        case.only(&["name", "orchestrator", "episodes", "nondeterminism"], &common)?;
    } else {
        case.only(&["name", "orchestrator", "episodes"], &common)?;
    }
    case.string("orchestrator")?;
    case.opt_bool("replay-check")?;
    let episodes = case
        .list("episodes")?
        .iter()
        .enumerate()
        .map(|(index, value)| episode(value, index, replay))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(OrchestrationCase {
        instance_id: case
            .opt_string("instance-id")?
            .unwrap_or_else(|| "instance-1".to_owned()),
        mode: if replay {
            Mode::Replay(nondeterminism(case.value("nondeterminism")?)?)
        } else {
            Mode::Live
        },
        episodes,
    })
}

// ---- running cases ----

/// A guest that answers each episode with the case's actions, and checks that it is fed the
/// case's events, replaying, at the episode's time.
struct ScriptedGuest<'a> {
    episodes: Vec<&'a Episode>,
    fed: usize,
}

impl EpisodeGuest for ScriptedGuest<'_> {
    type Error = String;

    fn apply(
        &mut self,
        events: &[HistoryEvent],
        replaying: bool,
        time: Timestamp,
    ) -> impl Future<Output = Result<EpisodeResult, Self::Error>> + Send {
        let index = self.fed;
        self.fed += 1;
        let answer = match self.episodes.get(index) {
            None => Err(format!("replay fed an episode {index} the case does not have")),
            Some(_) if !replaying => Err(format!("replay fed episode {index} with replaying = false")),
            Some(episode) if events != episode.events => Err(format!(
                "replay fed episode {index} {events:?}, not the case's events {:?}",
                episode.events
            )),
            Some(episode) if time != episode.events[0].timestamp => Err(format!(
                "replay fed episode {index} at {}, not at its orchestrator-started's time",
                time.micros()
            )),
            Some(episode) => Ok(EpisodeResult {
                actions: episode.actions.clone(),
                custom_status: None,
            }),
        };
        std::future::ready(answer)
    }
}

/// Drives a future whose guest never waits, as the scripted one does.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a scripted guest never waits"),
    }
}

fn show(nondeterminism: &Nondeterminism) -> String {
    format!(
        "{{episode: {}, recorded: {:?}, returned: {:?}}}",
        nondeterminism.episode, nondeterminism.recorded, nondeterminism.returned
    )
}

/// Splits `history` with `recorded_episodes`, checks that it gives back the episodes' events
/// (and their recorded action events, where the case lists them), then replays it with the
/// one replay driver against a guest that returns the case's actions.
fn replay_stored(
    history: &[HistoryEvent],
    episodes: Vec<&Episode>,
) -> Result<Result<usize, ReplayStop<String>>, String> {
    let split = replay::recorded_episodes(history);
    if split.len() != episodes.len() {
        return Err(format!(
            "the stored history splits into {} episodes, the case has {}",
            split.len(),
            episodes.len()
        ));
    }
    for (index, (stored, episode)) in split.iter().zip(&episodes).enumerate() {
        if stored.inbound != episode.events {
            return Err(format!(
                "episode {index}: recorded_episodes gives back inbound {:?}, the case's events are {:?}",
                stored.inbound, episode.events
            ));
        }
        if let Some(recorded) = &episode.recorded
            && stored.actions != *recorded
        {
            return Err(format!(
                "episode {index}: recorded_episodes gives back actions {:?}, the case recorded {recorded:?}",
                stored.actions
            ));
        }
    }
    let mut guest = ScriptedGuest { episodes, fed: 0 };
    Ok(ready(replay::replay_history(&mut guest, history)))
}

/// A live case: the history recorded as the host records it must replay cleanly.
fn run_live(case: &OrchestrationCase) -> Result<(), String> {
    let mut state = ExecutionState::default();
    let mut history: Vec<HistoryEvent> = Vec::new();
    // The case's episodes in `history`, the current execution's.
    let mut stored: Vec<&Episode> = Vec::new();
    for (index, episode) in case.episodes.iter().enumerate() {
        if state.finished {
            // Triage drops every message of an ended execution: the host runs no episode.
            if !episode.actions.is_empty() {
                return Err(format!(
                    "episode {index}: the execution has ended, so the host runs no more episodes, \
                     but the case expects actions"
                ));
            }
            continue;
        }
        let now = episode.events[0].timestamp;
        let accepted = episode.events[1..].to_vec();
        let returned = EpisodeResult {
            actions: episode.actions.clone(),
            custom_status: episode.custom_status.clone(),
        };
        let outcome = replay::finish_episode(&case.instance_id, &state, now, accepted, Some(returned))
            .map_err(|error| format!("episode {index}: finish_episode refuses the case's actions: {error}"))?;
        if let Some(recorded) = &episode.recorded {
            let made: Vec<&HistoryEvent> = outcome
                .new_history
                .iter()
                .filter(|event| is_action_event(&event.kind))
                .collect();
            if made.iter().copied().ne(recorded.iter()) {
                return Err(format!(
                    "episode {index}: the host records {made:?}, the case lists {recorded:?}"
                ));
            }
        }
        if outcome.status == RuntimeStatus::ContinuedAsNew {
            // The step replaces the history with the next execution's (`reset_history`): this
            // episode is never stored, so never replayed.
            state = ExecutionState::default();
            history.clear();
            stored.clear();
            continue;
        }
        for event in &outcome.new_history {
            state.observe(event);
        }
        history.extend(outcome.new_history);
        stored.push(episode);
    }
    let expected = stored.len();
    match replay_stored(&history, stored)? {
        Ok(replayed) if replayed == expected => Ok(()),
        Ok(replayed) => Err(format!("replayed {replayed} of {expected} episodes")),
        Err(ReplayStop::Diverged(error)) => Err(format!("the recorded history does not replay cleanly: {error}")),
        Err(ReplayStop::Guest { episode, error }) => Err(format!("episode {episode}: {error}")),
    }
}

/// A replay case: the stored history is each episode's events, its recorded events and an
/// `orchestrator-completed`; its replay must report exactly the case's nondeterminism.
fn run_replay(case: &OrchestrationCase, expected: Option<&Nondeterminism>) -> Result<(), String> {
    let mut history = Vec::new();
    for episode in &case.episodes {
        history.extend(episode.events.iter().cloned());
        history.extend(episode.recorded.iter().flatten().cloned());
        history.push(HistoryEvent::new(
            episode.events[0].timestamp,
            EventKind::OrchestratorCompleted,
        ));
    }
    let episodes = case.episodes.len();
    match (replay_stored(&history, case.episodes.iter().collect())?, expected) {
        (Ok(replayed), None) if replayed == episodes => Ok(()),
        (Ok(replayed), None) => Err(format!("replayed {replayed} of {episodes} episodes")),
        (Ok(_), Some(expected)) => Err(format!(
            "the history replays cleanly, the case expects nondeterminism {}",
            show(expected)
        )),
        (Err(ReplayStop::Diverged(ReplayError::Nondeterminism(found))), Some(expected)) if found == *expected => Ok(()),
        (Err(ReplayStop::Diverged(ReplayError::Nondeterminism(found))), expected) => Err(format!(
            "the host reports nondeterminism {}, the case expects {}",
            show(&found),
            expected.map_or_else(|| "none".to_owned(), show)
        )),
        (Err(ReplayStop::Diverged(error)), _) => Err(format!("replay fails: {error}")),
        (Err(ReplayStop::Guest { episode, error }), _) => Err(format!("episode {episode}: {error}")),
    }
}

enum Verdict {
    Passed,
    /// An entity batch case: no host-side replay.
    Skipped,
}

fn run_case(case: &Fields) -> Result<Verdict, String> {
    if case.map.contains_key("entity") {
        case.only(&["name", "entity", "id", "operations", "expect"], &["about", "state"])?;
        return Ok(Verdict::Skipped);
    }
    let decoded = orchestration_case(case)?;
    match &decoded.mode {
        Mode::Live => run_live(&decoded)?,
        Mode::Replay(expected) => run_replay(&decoded, expected.as_ref())?,
    }
    Ok(Verdict::Passed)
}

/// Runs one case; a failure names the file and the case.
fn check(file: &str, index: usize, case: &Value) -> Result<Verdict, String> {
    let name = case
        .get("name")
        .and_then(Value::as_str)
        .map_or_else(|| format!("case {index}"), str::to_owned);
    Fields::new(case, "the case")
        .and_then(|fields| run_case(&fields))
        .map_err(|problem| format!("{file}: {name}: {problem}"))
}

/// Every `tests/protocol/*.json`, sorted by name: (file name, its cases).
fn corpus() -> Vec<(String, Vec<Value>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/protocol");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("a readable directory").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let file = path.file_name().expect("a file name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{file}: {error}"));
            let json: Value = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{file}: {error}"));
            let f = Fields::new(&json, file.clone()).unwrap_or_else(|problem| panic!("{problem}"));
            f.only(&["about", "cases"], &[])
                .unwrap_or_else(|problem| panic!("{problem}"));
            let cases = f.list("cases").unwrap_or_else(|problem| panic!("{problem}")).clone();
            (file, cases)
        })
        .collect()
}

#[test]
fn every_orchestration_case_replays_on_the_host_as_the_corpus_says() {
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    let mut known_seen = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut total_run = 0;
    for (file, cases) in corpus() {
        let (mut run, mut passed, mut known, mut skipped) = (0, 0, 0, 0);
        for (index, case) in cases.iter().enumerate() {
            if let Some(name) = case.get("name").and_then(Value::as_str)
                && let Some(other) = names.insert(name.to_owned(), file.clone())
            {
                failures.push(format!("{file}: {name}: the name is also used in {other}"));
            }
            match check(&file, index, case) {
                Ok(Verdict::Skipped) => skipped += 1,
                Ok(Verdict::Passed) => {
                    run += 1;
                    passed += 1;
                }
                Err(problem) => {
                    run += 1;
                    let listed = KNOWN_DISAGREEMENTS.iter().find(|known| {
                        known.file == file && Some(known.case) == case.get("name").and_then(Value::as_str)
                    });
                    match listed {
                        Some(disagreement)
                            if problem == format!("{file}: {}: {}", disagreement.case, disagreement.fails_with) =>
                        {
                            known += 1;
                            known_seen.push(disagreement.case);
                            summary.push(format!(
                                "  known disagreement: {problem}\n    because {}",
                                disagreement.reason
                            ));
                        }
                        _ => failures.push(problem),
                    }
                }
            }
        }
        total_run += run;
        summary.push(format!(
            "{file}: {run} orchestration cases run, {passed} pass, {known} known disagreements, \
             {skipped} entity batch cases skipped"
        ));
    }
    for disagreement in KNOWN_DISAGREEMENTS {
        if !known_seen.contains(&disagreement.case) {
            failures.push(format!(
                "{}: {}: listed in KNOWN_DISAGREEMENTS, but it no longer fails with: {}\n  update the list",
                disagreement.file, disagreement.case, disagreement.fails_with
            ));
        }
    }
    println!("{}", summary.join("\n"));
    assert!(total_run >= 50, "the corpus has only {total_run} orchestration cases");
    assert!(
        failures.is_empty(),
        "{} protocol cases fail on the host:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_missing_or_unknown_field_fails_naming_the_file_and_the_case() {
    let case = json!({
        "name": "tiny",
        "orchestrator": "sequence",
        "episodes": [{
            "events": [
                {"kind": "orchestrator-started", "timestamp": 1},
                {"kind": "execution-started", "name": "sequence", "instance-id": "instance-1"}
            ],
            "actions": [{"id": 0, "kind": "schedule-task", "name": "SayHello", "input": "Tokyo"}]
        }]
    });
    assert!(matches!(check("f.json", 0, &case), Ok(Verdict::Passed)));

    let mut unknown = case.clone();
    unknown["episodes"][0]["actions"][0]["colour"] = json!("red");
    let problem = check("f.json", 0, &unknown).err().expect("an unknown field fails");
    assert!(
        problem.starts_with("f.json: tiny: episode 0 actions[0] (schedule-task): unknown field `colour`"),
        "{problem}"
    );

    let mut missing = case.clone();
    missing["episodes"][0]["events"][1]
        .as_object_mut()
        .expect("an object")
        .remove("instance-id");
    let problem = check("f.json", 0, &missing).err().expect("a missing field fails");
    assert!(
        problem.starts_with("f.json: tiny: episode 0 events[1] (execution-started): missing field `instance-id`"),
        "{problem}"
    );

    let mut kind = case.clone();
    kind["episodes"][0]["events"][1]["kind"] = json!("execution-begun");
    let problem = check("f.json", 0, &kind).err().expect("an unknown kind fails");
    assert!(problem.contains("unknown event kind `execution-begun`"), "{problem}");
}
