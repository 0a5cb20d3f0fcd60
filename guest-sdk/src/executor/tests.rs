//! The executor fed with histories built in code, as a host would feed it: what the
//! shared protocol corpus (`tests/protocol`, run by `protocol_tests.rs`) cannot show, namely
//! typed decoding of inputs, payloads and results, the task error API (`TaskKind`, display),
//! failures of values that cannot be encoded, the locking-rules messages and the executor's
//! cost on a large fan-in.
//!
//! Each test drives a small orchestrator through [`Host`], a host in miniature that
//! prepends orchestrator-started to every episode, records the events the actions create
//! (as a real host does) and can replay the recorded history into a fresh executor.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::Executor;
use crate::bindings::types::{
    self, Action, ActionKind, CallSubOrchestration, EntityOperationCalled, EntityOperationCompleted,
    EntityOperationFailed, EpisodeResult, EventKind, EventRaised, EventSent, ExecutionStarted, FailureDetails,
    HistoryEvent, ScheduleTask, SubOrchestrationInstanceCreated, SubOrchestrationInstanceFailed, TaskCompleted,
    TaskFailed, TaskScheduled, TimerCreated,
};
use crate::registry::{OrchestratorHandler, Registry};
use crate::{EntityId, Error, OrchestrationContext, TaskKind, task_all};

/// 2023-11-14T22:13:20Z, in microseconds.
const T0: i64 = 1_700_000_000_000_000;
const SECOND: i64 = 1_000_000;

// ---- history events ----

fn event(kind: EventKind) -> HistoryEvent {
    HistoryEvent {
        event_id: -1,
        timestamp: T0,
        kind,
    }
}

fn orchestrator_started(time: i64) -> HistoryEvent {
    HistoryEvent {
        event_id: -1,
        timestamp: time,
        kind: EventKind::OrchestratorStarted,
    }
}

fn execution_started(name: &str, input: Option<&str>) -> HistoryEvent {
    event(EventKind::ExecutionStarted(ExecutionStarted {
        name: name.to_owned(),
        instance_id: "instance-1".to_owned(),
        input: input.map(str::to_owned),
        parent: None,
    }))
}

fn task_completed(id: i32, result: Value) -> HistoryEvent {
    event(EventKind::TaskCompleted(TaskCompleted {
        task_scheduled_id: id,
        result: Some(result.to_string()),
    }))
}

fn failure(error_type: &str, message: &str, details: Option<&str>) -> FailureDetails {
    FailureDetails {
        error_type: error_type.to_owned(),
        message: message.to_owned(),
        details: details.map(str::to_owned),
    }
}

fn task_failed(id: i32, message: &str) -> HistoryEvent {
    event(EventKind::TaskFailed(TaskFailed {
        task_scheduled_id: id,
        failure: failure("FailAlwaysError", message, Some("trace")),
    }))
}

fn event_raised(name: &str, input: Value) -> HistoryEvent {
    event(EventKind::EventRaised(EventRaised {
        name: name.to_owned(),
        input: Some(input.to_string()),
    }))
}

// ---- actions ----

fn schedule(id: i32, name: &str, input: Value) -> Action {
    Action {
        id,
        kind: ActionKind::ScheduleTask(ScheduleTask {
            name: name.to_owned(),
            input: Some(input.to_string()),
        }),
    }
}

fn complete(output: Value) -> Action {
    Action {
        id: -1,
        kind: ActionKind::Complete(Some(output.to_string())),
    }
}

fn failure_of(result: &EpisodeResult) -> &FailureDetails {
    match result.actions.as_slice() {
        [
            Action {
                id: -1,
                kind: ActionKind::Fail(failure),
            },
        ] => failure,
        other => panic!("expected one fail action, got {other:?}"),
    }
}

/// The history event a host records for an action that takes a sequence number.
fn created_event(action: &Action) -> Option<HistoryEvent> {
    let kind = match &action.kind {
        ActionKind::ScheduleTask(task) => EventKind::TaskScheduled(TaskScheduled {
            name: task.name.clone(),
            input: task.input.clone(),
        }),
        ActionKind::CreateTimer(timer) => EventKind::TimerCreated(TimerCreated { fire_at: timer.fire_at }),
        ActionKind::CallSubOrchestration(call) => {
            EventKind::SubOrchestrationInstanceCreated(SubOrchestrationInstanceCreated {
                name: call.name.clone(),
                instance_id: call.instance_id.clone().unwrap_or_default(),
                input: call.input.clone(),
            })
        }
        ActionKind::SendEvent(send) => EventKind::EventSent(EventSent {
            instance_id: send.instance_id.clone(),
            name: send.name.clone(),
            input: send.input.clone(),
        }),
        ActionKind::CallEntity(call) => EventKind::EntityOperationCalled(call.clone()),
        ActionKind::SignalEntity(signal) => EventKind::EntityOperationSignaled(signal.clone()),
        ActionKind::LockEntities(entities) => EventKind::EntityLockRequested(entities.clone()),
        ActionKind::UnlockEntities(entities) => EventKind::EntityUnlockSent(entities.clone()),
        ActionKind::Complete(_) | ActionKind::Fail(_) | ActionKind::ContinueAsNew(_) => return None,
    };
    Some(HistoryEvent {
        event_id: action.id,
        timestamp: T0,
        kind,
    })
}

/// A host in miniature.
struct Host {
    registry: Registry,
    name: String,
    executor: Executor,
    /// Every episode as recorded: inbound events, then the events the actions created.
    history: Vec<Vec<HistoryEvent>>,
    /// Every action, in order.
    actions: Vec<Action>,
}

impl Host {
    fn new(name: &str, orchestrator: impl OrchestratorHandler) -> Self {
        let mut registry = Registry::new();
        registry.orchestrator(name, orchestrator);
        let executor = Executor::new(&registry, name, "instance-1");
        Self {
            registry,
            name: name.to_owned(),
            executor,
            history: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Creates the orchestration and runs its first episode.
    fn start(name: &str, orchestrator: impl OrchestratorHandler, input: Option<Value>) -> (Self, EpisodeResult) {
        let mut host = Self::new(name, orchestrator);
        let input = input.map(|input| input.to_string());
        let first = host.episode(T0, vec![execution_started(name, input.as_deref())]);
        (host, first)
    }

    /// Runs one episode that starts at `time`.
    fn episode(&mut self, time: i64, events: Vec<HistoryEvent>) -> EpisodeResult {
        let mut inbound = vec![orchestrator_started(time)];
        inbound.extend(events);
        let result = self.executor.apply(inbound.clone(), false);
        inbound.extend(result.actions.iter().filter_map(created_event));
        inbound.push(event(EventKind::OrchestratorCompleted));
        self.history.push(inbound);
        self.actions.extend(result.actions.iter().cloned());
        result
    }

    /// Replays the recorded history into a fresh executor, one `apply` per episode.
    fn replay_by_episode(&self) -> Vec<Action> {
        let mut executor = Executor::new(&self.registry, &self.name, "instance-1");
        self.history
            .iter()
            .flat_map(|episode| executor.apply(episode.clone(), true).actions)
            .collect()
    }

    /// Replays the recorded history into a fresh executor in one `apply`.
    fn replay_at_once(&self) -> Vec<Action> {
        let mut executor = Executor::new(&self.registry, &self.name, "instance-1");
        executor.apply(self.history.concat(), true).actions
    }

    fn assert_replay_matches(&self) {
        assert_eq!(self.replay_by_episode(), self.actions);
        assert_eq!(self.replay_at_once(), self.actions);
    }
}

// ---- orchestrators ----

async fn fan_out(ctx: OrchestrationContext) -> Result<i64, Error> {
    let n: i64 = ctx.get_input()?;
    let squares = (1..=n).map(|i| ctx.call_activity::<i64>("Square", i));
    Ok(task_all(squares).await?.into_iter().sum())
}

// ---- tests ----

#[test]
fn a_fan_in_over_many_tasks_completed_one_event_at_a_time_sums_every_value() {
    let (mut host, first) = Host::start("FanOut", fan_out, Some(json!(2000)));
    assert_eq!(first.actions.len(), 2000);
    let completions = (0..2000).rev().map(|id| task_completed(id, json!(id))).collect();
    let last = host.episode(T0 + SECOND, completions);
    assert_eq!(last.actions, [complete(json!((0..2000).sum::<i64>()))]);
    host.assert_replay_matches();
}

#[test]
fn event_payload_that_does_not_decode_fails_the_wait_with_a_task_error() {
    async fn wants_number(ctx: OrchestrationContext) -> Result<String, Error> {
        match ctx.wait_for_external_event::<i64>("E").await {
            Ok(n) => Ok(n.to_string()),
            Err(error) => Ok(format!("{:?}: {error}", error.task_kind())),
        }
    }
    let (mut host, _) = Host::start("Decode", wants_number, None);
    let result = host.episode(T0, vec![event_raised("E", json!("not a number"))]);
    let [
        Action {
            kind: ActionKind::Complete(Some(output)),
            ..
        },
    ] = result.actions.as_slice()
    else {
        panic!("expected completion, got {:?}", result.actions);
    };
    assert!(
        output.contains("ExternalEvent: external event 'E' failed: the payload could not be decoded"),
        "{output}"
    );
}

#[test]
fn activity_failure_is_caught_by_the_orchestrator_as_a_task_error_with_message_and_details() {
    async fn catches(ctx: OrchestrationContext) -> Result<Value, Error> {
        match ctx.call_activity::<String>("Fail", ()).await {
            Ok(output) => Ok(json!(output)),
            Err(error) => Ok(json!({
                "kind": format!("{:?}", error.task_kind()),
                "task": error.task_name(),
                "type": error.error_type(),
                "message": error.message(),
                "details": error.details(),
            })),
        }
    }
    let (mut host, first) = Host::start("Catches", catches, None);
    assert_eq!(first.actions, [schedule(0, "Fail", json!(null))]);
    let result = host.episode(T0 + SECOND, vec![task_failed(0, "Fail always fails")]);
    assert_eq!(
        result.actions,
        [complete(json!({
            "kind": "Activity",
            "task": "Fail",
            "type": "FailAlwaysError",
            "message": "Fail always fails",
            "details": "trace",
        }))]
    );
}

#[test]
fn double_encoded_input_decodes_as_the_inner_json() {
    #[derive(Deserialize)]
    struct Input {
        a: i64,
    }
    async fn read(ctx: OrchestrationContext) -> Result<i64, Error> {
        Ok(ctx.get_input::<Input>()?.a)
    }
    let mut host = Host::new("Read", read);
    let result = host.episode(T0, vec![execution_started("Read", Some(r#""{\"a\":1}""#))]);
    assert_eq!(result.actions, [complete(json!(1))]);
}

#[test]
fn undecodable_input_fails_the_orchestration_with_a_deserialization_error() {
    async fn read(ctx: OrchestrationContext) -> Result<i64, Error> {
        ctx.get_input::<i64>()
    }
    let (_, result) = Host::start("Read", read, Some(json!({"a": 1})));
    let failure = failure_of(&result);
    assert_eq!(failure.error_type, "DeserializationError");
    assert!(failure.message.contains("'Read'"), "{failure:?}");
}

#[test]
fn custom_status_that_cannot_be_encoded_fails_the_orchestration() {
    async fn bad_status(ctx: OrchestrationContext) -> Result<(), Error> {
        let mut status = BTreeMap::new();
        status.insert((1, 2), "tuple keys are not JSON");
        ctx.set_custom_status(&status);
        ctx.wait_for_external_event::<()>("Never").await?;
        Ok(())
    }
    let (_, result) = Host::start("BadStatus", bad_status, None);
    assert_eq!(failure_of(&result).error_type, "SerializationError");
}

#[test]
fn sub_orchestration_failure_surfaces_as_a_task_error_of_kind_sub_orchestration() {
    async fn parent(ctx: OrchestrationContext) -> Result<String, Error> {
        match ctx.call_sub_orchestrator::<i64>("Child", None, 5).await {
            Ok(n) => Ok(n.to_string()),
            Err(error) => {
                assert_eq!(error.task_kind(), TaskKind::SubOrchestration);
                Ok(error.to_string())
            }
        }
    }
    let (mut host, first) = Host::start("Parent", parent, None);
    assert_eq!(
        first.actions,
        [Action {
            id: 0,
            kind: ActionKind::CallSubOrchestration(CallSubOrchestration {
                name: "Child".to_owned(),
                instance_id: None,
                input: Some("5".to_owned()),
            }),
        }]
    );
    let result = host.episode(
        T0,
        vec![event(EventKind::SubOrchestrationInstanceFailed(
            SubOrchestrationInstanceFailed {
                task_scheduled_id: 0,
                failure: failure("ChildError", "child broke", None),
            },
        ))],
    );
    assert_eq!(
        result.actions,
        [complete(json!("sub-orchestration 'Child' failed: child broke"))]
    );
}

// ---- entities ----

fn wit_id(name: &str, key: &str) -> types::EntityId {
    types::EntityId {
        name: name.to_owned(),
        key: key.to_owned(),
    }
}

fn accounts(keys: &[&str]) -> Vec<types::EntityId> {
    keys.iter().map(|key| wit_id("account", key)).collect()
}

fn lock(id: i32, keys: &[&str]) -> Action {
    Action {
        id,
        kind: ActionKind::LockEntities(accounts(keys)),
    }
}

fn unlock(id: i32, keys: &[&str]) -> Action {
    Action {
        id,
        kind: ActionKind::UnlockEntities(accounts(keys)),
    }
}

fn entity_completed(id: i32, result: Option<Value>) -> HistoryEvent {
    event(EventKind::EntityOperationCompleted(EntityOperationCompleted {
        task_scheduled_id: id,
        result: result.map(|result| result.to_string()),
    }))
}

fn entity_failed(id: i32, error_type: &str, message: &str) -> HistoryEvent {
    event(EventKind::EntityOperationFailed(EntityOperationFailed {
        task_scheduled_id: id,
        failure: failure(error_type, message, Some("entity trace")),
    }))
}

fn lock_granted(id: i32) -> HistoryEvent {
    event(EventKind::EntityLockGranted(id))
}

/// Adds 5 to counter `k`, then reads it.
async fn add_then_get(ctx: OrchestrationContext) -> Result<i64, Error> {
    let counter = EntityId::new("Counter", "k");
    ctx.call_entity::<()>(&counter, "add", 5).await?;
    Ok(ctx.call_entity(&counter, "get", ()).await?)
}

fn account_call(id: i32, key: &str, operation: &str, input: Value) -> Action {
    Action {
        id,
        kind: ActionKind::CallEntity(EntityOperationCalled {
            entity: wit_id("account", key),
            operation: operation.to_owned(),
            input: Some(input.to_string()),
        }),
    }
}

#[test]
fn a_failed_entity_operation_is_a_task_error_of_kind_entity_naming_operation_and_entity() {
    async fn catches(ctx: OrchestrationContext) -> Result<Value, Error> {
        let account = EntityId::new("Account", "a");
        match ctx.call_entity::<()>(&account, "withdraw", 100).await {
            Ok(()) => Ok(json!("withdrawn")),
            Err(error) => Ok(json!({
                "kind": format!("{:?}", error.task_kind()),
                "task": error.task_name(),
                "entity": error.entity().map(ToString::to_string),
                "type": error.error_type(),
                "details": error.details(),
                "display": error.to_string(),
            })),
        }
    }
    let (mut host, first) = Host::start("Catches", catches, None);
    assert_eq!(first.actions, [account_call(0, "a", "withdraw", json!(100))]);
    let result = host.episode(T0, vec![entity_failed(0, "InsufficientFunds", "balance 0 < 100")]);
    assert_eq!(
        result.actions,
        [complete(json!({
            "kind": "Entity",
            "task": "withdraw",
            "entity": "@account@a",
            "type": "InsufficientFunds",
            "details": "entity trace",
            "display": "operation 'withdraw' of entity '@account@a' failed: balance 0 < 100",
        }))]
    );
    host.assert_replay_matches();
}

#[test]
fn an_entity_result_that_does_not_decode_fails_the_call_with_a_deserialization_error() {
    let (mut host, _) = Host::start("Caller", add_then_get, None);
    host.episode(T0, vec![entity_completed(0, None)]);
    let result = host.episode(T0, vec![entity_completed(1, Some(json!("five")))]);
    assert_eq!(failure_of(&result).error_type, "DeserializationError");
}

#[test]
fn locking_nothing_or_locking_inside_a_critical_section_violates_the_locking_rules() {
    async fn nested(ctx: OrchestrationContext) -> Result<Vec<String>, Error> {
        let mut errors = Vec::new();
        if let Err(error) = ctx.lock_entities(&[]).await {
            errors.push(error.error_type().to_owned());
        }
        let outer = ctx.lock_entities(&[EntityId::new("Account", "a")]).await?;
        if let Err(error) = ctx.lock_entities(&[EntityId::new("Account", "b")]).await {
            errors.push(error.to_string());
        }
        drop(outer);
        let again = ctx.lock_entities(&[EntityId::new("Account", "b")]).await?;
        again.release();
        Ok(errors)
    }
    let (mut host, first) = Host::start("Nested", nested, None);
    assert_eq!(first.actions, [lock(0, &["a"])]);
    let second = host.episode(T0, vec![lock_granted(0)]);
    assert_eq!(second.actions, [unlock(1, &["a"]), lock(2, &["b"])]);
    let last = host.episode(T0, vec![lock_granted(2)]);
    let [
        unlocked,
        Action {
            kind: ActionKind::Complete(Some(output)),
            ..
        },
    ] = last.actions.as_slice()
    else {
        panic!("expected unlock and completion, got {:?}", last.actions);
    };
    assert_eq!(unlocked, &unlock(3, &["b"]));
    let errors: Vec<String> = serde_json::from_str(output).unwrap();
    assert_eq!(errors[0], "LockingRulesViolation");
    assert!(errors[1].contains("do not nest"), "{errors:?}");
    host.assert_replay_matches();
}
