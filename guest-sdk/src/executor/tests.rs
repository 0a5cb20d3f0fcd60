//! The executor fed with histories built in code, as a host would feed it.
//!
//! Each test drives a small orchestrator through [`Host`], a host in miniature that
//! prepends orchestrator-started to every episode, records the events the actions create
//! (as a real host does) and can replay the recorded history into a fresh executor.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

use super::Executor;
use crate::bindings::types::{
    self, Action, ActionKind, CallSubOrchestration, CarriedEvent, ContinueAsNew, CreateTimer, EntityOperationCalled,
    EntityOperationCompleted, EntityOperationFailed, EntityOperationSignaled, EpisodeResult, EventKind, EventRaised,
    EventSent, ExecutionStarted, FailureDetails, HistoryEvent, ScheduleTask, SendEvent,
    SubOrchestrationInstanceCompleted, SubOrchestrationInstanceCreated, SubOrchestrationInstanceFailed, TaskCompleted,
    TaskFailed, TaskScheduled, TimerCreated, TimerFired,
};
use crate::registry::{OrchestratorHandler, Registry};
use crate::{EntityId, Error, OrchestrationContext, RetryOptions, TaskKind, task_all, task_any};

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

fn timer_fired(id: i32, fire_at: i64) -> HistoryEvent {
    event(EventKind::TimerFired(TimerFired { timer_id: id, fire_at }))
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

fn timer(id: i32, fire_at: i64) -> Action {
    Action {
        id,
        kind: ActionKind::CreateTimer(CreateTimer { fire_at }),
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

async fn hello_sequence(ctx: OrchestrationContext) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for city in ["Tokyo", "Seattle", "London"] {
        out.push(ctx.call_activity::<String>("SayHello", city).await?);
    }
    Ok(out)
}

async fn fan_out(ctx: OrchestrationContext) -> Result<i64, Error> {
    let n: i64 = ctx.get_input()?;
    let squares = (1..=n).map(|i| ctx.call_activity::<i64>("Square", i));
    Ok(task_all(squares).await?.into_iter().sum())
}

/// Waits for "Approval" for 60 seconds.
async fn approval(ctx: OrchestrationContext) -> Result<String, Error> {
    let deadline = ctx.current_utc_datetime() + Duration::from_secs(60);
    let timeout = ctx.create_timer(deadline).map(|()| None);
    let event = ctx.wait_for_external_event::<bool>("Approval").map(Some);
    match task_any([timeout, event]).await {
        (_, Ok(Some(approved))) => Ok(format!("approved={approved}")),
        (_, Ok(None)) => Ok("timeout".to_owned()),
        (_, Err(error)) => Err(error.into()),
    }
}

/// Waits for "E" once an activity has completed.
async fn activity_then_event(ctx: OrchestrationContext) -> Result<Vec<i64>, Error> {
    ctx.call_activity::<()>("Prepare", ()).await?;
    let first = ctx.wait_for_external_event::<i64>("E").await?;
    let second = ctx.wait_for_external_event::<i64>("e").await?;
    Ok(vec![first, second])
}

async fn fail_unhandled(ctx: OrchestrationContext) -> Result<String, Error> {
    Ok(ctx.call_activity::<String>("Fail", ()).await?)
}

// ---- tests ----

#[test]
fn sequence_of_three_activities_schedules_one_at_a_time_and_completes_with_all_results() {
    let (mut host, first) = Host::start("Hello", hello_sequence, None);
    assert_eq!(first.actions, [schedule(0, "SayHello", json!("Tokyo"))]);
    let second = host.episode(T0 + SECOND, vec![task_completed(0, json!("Hello Tokyo!"))]);
    assert_eq!(second.actions, [schedule(1, "SayHello", json!("Seattle"))]);
    let third = host.episode(T0 + 2 * SECOND, vec![task_completed(1, json!("Hello Seattle!"))]);
    assert_eq!(third.actions, [schedule(2, "SayHello", json!("London"))]);
    let last = host.episode(T0 + 3 * SECOND, vec![task_completed(2, json!("Hello London!"))]);
    assert_eq!(
        last.actions,
        [complete(json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"]))]
    );
    assert_eq!(last.custom_status, None);
    host.assert_replay_matches();
}

#[test]
fn fan_out_schedules_every_activity_in_one_episode_and_sums_completions_in_any_order() {
    let (mut host, first) = Host::start("FanOut", fan_out, Some(json!(3)));
    assert_eq!(
        first.actions,
        [
            schedule(0, "Square", json!(1)),
            schedule(1, "Square", json!(2)),
            schedule(2, "Square", json!(3)),
        ]
    );
    let partial = host.episode(T0 + SECOND, vec![task_completed(2, json!(9))]);
    assert_eq!(partial.actions, []);
    let last = host.episode(
        T0 + 2 * SECOND,
        vec![task_completed(1, json!(4)), task_completed(0, json!(1))],
    );
    assert_eq!(last.actions, [complete(json!(14))]);
    host.assert_replay_matches();
}

#[test]
fn task_all_fails_fast_on_the_first_failure_in_completion_order() {
    let (mut host, _) = Host::start("FanOut", fan_out, Some(json!(3)));
    let result = host.episode(T0 + SECOND, vec![task_failed(1, "square failed")]);
    let failure = failure_of(&result);
    assert!(failure.message.contains("square failed"), "{failure:?}");
}

#[test]
fn a_fan_in_nested_in_a_race_wins_when_its_last_task_completes_in_a_later_episode() {
    async fn all_or_timeout(ctx: OrchestrationContext) -> Result<String, Error> {
        let both = task_all([
            ctx.call_activity::<i64>("Square", 2),
            ctx.call_activity::<i64>("Square", 3),
        ]);
        let timeout = ctx.create_timer(UNIX_EPOCH + Duration::from_secs(1_000_000));
        let both = crate::task::Task::new(async move { both.await.map(Some) });
        match task_any([both, timeout.map(|()| None)]).await {
            (_, Ok(Some(squares))) => Ok(format!("{squares:?}")),
            (_, Ok(None)) => Ok("timeout".to_owned()),
            (_, Err(error)) => Err(error.into()),
        }
    }
    let (mut host, first) = Host::start("AllOrTimeout", all_or_timeout, None);
    assert_eq!(first.actions.len(), 3);
    let after_one = host.episode(T0 + SECOND, vec![task_completed(1, json!(9))]);
    assert_eq!(after_one.actions, []);
    let after_both = host.episode(T0 + 2 * SECOND, vec![task_completed(0, json!(4))]);
    assert_eq!(after_both.actions, [complete(json!("[4, 9]"))]);
    host.assert_replay_matches();
}

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
fn event_wins_the_race_against_the_timer() {
    let (mut host, first) = Host::start("Approval", approval, None);
    assert_eq!(first.actions, [timer(0, T0 + 60 * SECOND)]);
    let result = host.episode(T0 + SECOND, vec![event_raised("Approval", json!(true))]);
    assert_eq!(result.actions, [complete(json!("approved=true"))]);
    host.assert_replay_matches();
}

#[test]
fn timer_wins_the_race_against_the_event() {
    let (mut host, _) = Host::start("Approval", approval, None);
    let result = host.episode(
        T0 + 60 * SECOND,
        vec![timer_fired(0, T0 + 60 * SECOND), event_raised("Approval", json!(true))],
    );
    assert_eq!(result.actions, [complete(json!("timeout"))]);
    host.assert_replay_matches();
}

#[test]
fn a_waiter_dropped_by_a_lost_race_leaves_later_events_to_the_next_wait() {
    async fn race_then_wait(ctx: OrchestrationContext) -> Result<i64, Error> {
        let timeout = ctx.create_timer(ctx.current_utc_datetime()).map(|()| None);
        let event = ctx.wait_for_external_event::<i64>("E").map(Some);
        let (winner, _) = task_any([timeout, event]).await;
        assert_eq!(winner, 0);
        Ok(ctx.wait_for_external_event::<i64>("E").await?)
    }
    let (mut host, _) = Host::start("Race", race_then_wait, None);
    assert_eq!(host.episode(T0, vec![timer_fired(0, T0)]).actions, []);
    let result = host.episode(T0 + SECOND, vec![event_raised("E", json!(7))]);
    assert_eq!(result.actions, [complete(json!(7))]);
}

#[test]
fn event_raised_before_the_wait_is_buffered_and_delivered_when_the_wait_starts() {
    let (mut host, _) = Host::start("Buffered", activity_then_event, None);
    let early = host.episode(T0 + SECOND, vec![event_raised("E", json!(1))]);
    assert_eq!(early.actions, []);
    let waiting = host.episode(T0 + 2 * SECOND, vec![task_completed(0, json!(null))]);
    assert_eq!(waiting.actions, [], "the second wait has no event yet");
    let last = host.episode(T0 + 3 * SECOND, vec![event_raised("E", json!(2))]);
    assert_eq!(last.actions, [complete(json!([1, 2]))]);
    host.assert_replay_matches();
}

#[test]
fn two_buffered_events_with_one_name_are_delivered_in_arrival_order() {
    let (mut host, _) = Host::start("Buffered", activity_then_event, None);
    host.episode(
        T0 + SECOND,
        vec![event_raised("E", json!(1)), event_raised("E", json!(2))],
    );
    let last = host.episode(T0 + 2 * SECOND, vec![task_completed(0, json!(null))]);
    assert_eq!(last.actions, [complete(json!([1, 2]))]);
    host.assert_replay_matches();
}

#[test]
fn of_two_waiters_for_one_name_the_oldest_gets_the_first_event() {
    async fn two_waiters(ctx: OrchestrationContext) -> Result<Vec<i64>, Error> {
        let first = ctx.wait_for_external_event::<i64>("E");
        let second = ctx.wait_for_external_event::<i64>("E");
        Ok(task_all([second, first]).await?)
    }
    let (mut host, _) = Host::start("TwoWaiters", two_waiters, None);
    let result = host.episode(
        T0 + SECOND,
        vec![event_raised("E", json!(1)), event_raised("E", json!(2))],
    );
    assert_eq!(result.actions, [complete(json!([2, 1]))]);
    host.assert_replay_matches();
}

#[test]
fn event_names_match_case_insensitively_whether_waiting_or_buffered() {
    let (mut host, _) = Host::start("Approval", approval, None);
    let result = host.episode(T0 + SECOND, vec![event_raised("APPROVAL", json!(false))]);
    assert_eq!(result.actions, [complete(json!("approved=false"))]);

    let (mut host, _) = Host::start("Buffered", activity_then_event, None);
    host.episode(
        T0 + SECOND,
        vec![event_raised("e", json!(1)), event_raised("E", json!(2))],
    );
    let last = host.episode(T0 + 2 * SECOND, vec![task_completed(0, json!(null))]);
    assert_eq!(last.actions, [complete(json!([1, 2]))]);
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
fn unhandled_activity_failure_fails_the_orchestration_with_the_activity_message() {
    let (mut host, _) = Host::start("FailAlways", fail_unhandled, None);
    let result = host.episode(T0 + SECOND, vec![task_failed(0, "Fail always fails")]);
    let failure = failure_of(&result);
    assert_eq!(failure.error_type, "FailAlwaysError");
    assert!(failure.message.contains("Fail always fails"), "{failure:?}");
    assert!(failure.message.contains("'Fail'"), "{failure:?}");
    assert_eq!(failure.details.as_deref(), Some("trace"));
    assert_eq!(host.episode(T0 + 2 * SECOND, vec![]).actions, []);
    host.assert_replay_matches();
}

async fn with_retry(ctx: OrchestrationContext) -> Result<String, Error> {
    let retry = RetryOptions::new(Duration::from_secs(5), 3).with_backoff_coefficient(2.0);
    Ok(ctx.call_activity_with_retry::<String>("Flaky", &retry, "x").await?)
}

#[test]
fn retry_waits_on_a_durable_timer_then_schedules_again_until_attempts_run_out() {
    let (mut host, first) = Host::start("Retry", with_retry, None);
    assert_eq!(first.actions, [schedule(0, "Flaky", json!("x"))]);

    let failed = host.episode(T0 + SECOND, vec![task_failed(0, "boom 1")]);
    assert_eq!(failed.actions, [timer(1, T0 + 6 * SECOND)]);
    let again = host.episode(T0 + 6 * SECOND, vec![timer_fired(1, T0 + 6 * SECOND)]);
    assert_eq!(again.actions, [schedule(2, "Flaky", json!("x"))]);

    let failed = host.episode(T0 + 7 * SECOND, vec![task_failed(2, "boom 2")]);
    assert_eq!(failed.actions, [timer(3, T0 + 17 * SECOND)], "backoff doubles");
    let again = host.episode(T0 + 17 * SECOND, vec![timer_fired(3, T0 + 17 * SECOND)]);
    assert_eq!(again.actions, [schedule(4, "Flaky", json!("x"))]);

    let last = host.episode(T0 + 18 * SECOND, vec![task_failed(4, "boom 3")]);
    let failure = failure_of(&last);
    assert!(failure.message.contains("boom 3"), "{failure:?}");
    host.assert_replay_matches();
}

#[test]
fn retry_returns_the_result_of_the_first_attempt_that_succeeds() {
    let (mut host, _) = Host::start("Retry", with_retry, None);
    host.episode(T0 + SECOND, vec![task_failed(0, "boom")]);
    host.episode(T0 + 6 * SECOND, vec![timer_fired(1, T0 + 6 * SECOND)]);
    let last = host.episode(T0 + 7 * SECOND, vec![task_completed(2, json!("ok"))]);
    assert_eq!(last.actions, [complete(json!("ok"))]);
    host.assert_replay_matches();
}

#[test]
fn retry_stops_when_the_next_attempt_would_start_after_the_retry_timeout() {
    async fn with_timeout(ctx: OrchestrationContext) -> Result<String, Error> {
        let retry = RetryOptions::new(Duration::from_secs(5), 10).with_retry_timeout(Duration::from_secs(8));
        Ok(ctx.call_activity_with_retry::<String>("Flaky", &retry, ()).await?)
    }
    let (mut host, _) = Host::start("Retry", with_timeout, None);
    let failed = host.episode(T0 + SECOND, vec![task_failed(0, "boom 1")]);
    assert_eq!(failed.actions, [timer(1, T0 + 6 * SECOND)]);
    host.episode(T0 + 6 * SECOND, vec![timer_fired(1, T0 + 6 * SECOND)]);
    let last = host.episode(T0 + 7 * SECOND, vec![task_failed(2, "boom 2")]);
    failure_of(&last);
}

#[test]
fn continue_as_new_carries_every_unconsumed_event_in_arrival_order() {
    async fn counter(ctx: OrchestrationContext) -> Result<(), Error> {
        let total: i64 = ctx.get_input()?;
        let add: i64 = ctx.wait_for_external_event("Add").await?;
        ctx.continue_as_new(total + add);
        Ok(())
    }
    let (mut host, first) = Host::start("Counter", counter, Some(json!(10)));
    assert_eq!(first.actions, []);
    let result = host.episode(
        T0 + SECOND,
        vec![
            event_raised("Other", json!("x")),
            event_raised("Add", json!(2)),
            event_raised("Add", json!(3)),
        ],
    );
    assert_eq!(
        result.actions,
        [Action {
            id: -1,
            kind: ActionKind::ContinueAsNew(ContinueAsNew {
                input: Some("12".to_owned()),
                carried_events: vec![
                    CarriedEvent {
                        name: "Other".to_owned(),
                        input: Some(r#""x""#.to_owned()),
                    },
                    CarriedEvent {
                        name: "Add".to_owned(),
                        input: Some("3".to_owned()),
                    },
                ],
            }),
        }]
    );
    host.assert_replay_matches();
}

#[test]
fn replaying_a_mixed_history_in_a_fresh_executor_issues_identical_actions() {
    async fn mixed(ctx: OrchestrationContext) -> Result<Value, Error> {
        let guid = ctx.new_guid();
        ctx.set_custom_status(&json!({"step": 1}));
        let greeting: String = ctx.call_activity("SayHello", "Tokyo").await?;
        ctx.send_event("other", "Ping", &guid);
        let squares = task_all([
            ctx.call_activity::<i64>("Square", 2),
            ctx.call_activity::<i64>("Square", 3),
        ]);
        let sum: i64 = squares.await?.into_iter().sum();
        let later = ctx.current_utc_datetime() + Duration::from_secs(30);
        ctx.create_timer(later).await?;
        let child: i64 = ctx.call_sub_orchestrator("Child", Some("child-1"), sum).await?;
        let approval = ctx.wait_for_external_event::<bool>("Approval").await?;
        ctx.set_custom_status(&json!({"step": 2}));
        Ok(json!([guid, greeting, sum, child, approval, ctx.new_guid()]))
    }
    let (mut host, first) = Host::start("Mixed", mixed, None);
    assert_eq!(first.custom_status.as_deref(), Some(r#"{"step":1}"#));
    let episode = host.episode(T0 + SECOND, vec![task_completed(0, json!("Hello Tokyo!"))]);
    assert_eq!(episode.actions.len(), 3, "send-event and two activities");
    assert!(matches!(
        episode.actions[0].kind,
        ActionKind::SendEvent(SendEvent { .. })
    ));
    host.episode(
        T0 + 2 * SECOND,
        vec![
            task_completed(3, json!(9)),
            event_raised("Approval", json!(true)),
            task_completed(2, json!(4)),
        ],
    );
    host.episode(T0 + 32 * SECOND, vec![timer_fired(4, T0 + 32 * SECOND)]);
    assert_eq!(
        host.actions.last().map(|action| &action.kind),
        Some(&ActionKind::CallSubOrchestration(CallSubOrchestration {
            name: "Child".to_owned(),
            instance_id: Some("child-1".to_owned()),
            input: Some("13".to_owned()),
        }))
    );
    let last = host.episode(
        T0 + 40 * SECOND,
        vec![event(EventKind::SubOrchestrationInstanceCompleted(
            SubOrchestrationInstanceCompleted {
                task_scheduled_id: 5,
                result: Some("169".to_owned()),
            },
        ))],
    );
    assert_eq!(last.custom_status.as_deref(), Some(r#"{"step":2}"#));
    let [
        Action {
            id: -1,
            kind: ActionKind::Complete(Some(output)),
        },
    ] = last.actions.as_slice()
    else {
        panic!("expected completion, got {:?}", last.actions);
    };
    let output: Vec<Value> = serde_json::from_str(output).unwrap();
    assert_eq!(output[1], json!("Hello Tokyo!"));
    assert_eq!(output[2..5], [json!(13), json!(169), json!(true)]);
    assert_ne!(output[0], output[5]);
    host.assert_replay_matches();
}

#[test]
fn is_replaying_follows_the_flag_of_each_apply() {
    async fn observe(ctx: OrchestrationContext) -> Result<Vec<bool>, Error> {
        let mut seen = vec![ctx.is_replaying()];
        ctx.call_activity::<()>("A", ()).await?;
        seen.push(ctx.is_replaying());
        Ok(seen)
    }
    let mut registry = Registry::new();
    registry.orchestrator("Observe", observe);
    let mut executor = Executor::new(&registry, "Observe", "instance-1");
    let first = executor.apply(vec![orchestrator_started(T0), execution_started("Observe", None)], true);
    assert_eq!(first.actions, [schedule(0, "A", json!(null))]);
    let last = executor.apply(
        vec![orchestrator_started(T0 + SECOND), task_completed(0, json!(null))],
        false,
    );
    assert_eq!(last.actions, [complete(json!([true, false]))]);
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
fn new_guid_is_the_same_in_fresh_executors_and_distinct_per_call_and_per_time() {
    async fn guids(ctx: OrchestrationContext) -> Result<Vec<String>, Error> {
        let mut guids = vec![ctx.new_guid(), ctx.new_guid()];
        ctx.create_timer(ctx.current_utc_datetime()).await?;
        guids.push(ctx.new_guid());
        Ok(guids)
    }
    let run = || {
        let (mut host, _) = Host::start("Guids", guids, None);
        let result = host.episode(T0 + SECOND, vec![timer_fired(0, T0)]);
        let [
            Action {
                kind: ActionKind::Complete(Some(output)),
                ..
            },
        ] = result.actions.as_slice()
        else {
            panic!("expected completion, got {:?}", result.actions);
        };
        serde_json::from_str::<Vec<String>>(output).unwrap()
    };
    let first = run();
    assert_eq!(first, run());
    assert_eq!(first.len(), 3);
    assert!(first[0] != first[1] && first[1] != first[2] && first[0] != first[2]);
    assert!(first.iter().all(|guid| guid.len() == 36 && &guid[14..15] == "5"));
}

#[test]
fn current_utc_datetime_is_the_timestamp_of_the_episode_orchestrator_started_event() {
    async fn times(ctx: OrchestrationContext) -> Result<Vec<u64>, Error> {
        let micros = |ctx: &OrchestrationContext| {
            let since = ctx.current_utc_datetime().duration_since(UNIX_EPOCH).unwrap();
            u64::try_from(since.as_micros()).unwrap()
        };
        let start = micros(&ctx);
        ctx.call_activity::<()>("A", ()).await?;
        Ok(vec![start, micros(&ctx)])
    }
    let (mut host, _) = Host::start("Times", times, None);
    let result = host.episode(T0 + 5 * SECOND, vec![task_completed(0, json!(null))]);
    assert_eq!(result.actions, [complete(json!([T0, T0 + 5 * SECOND]))]);
}

#[test]
fn unknown_orchestrator_fails_on_the_first_apply_and_then_issues_nothing() {
    let registry = Registry::new();
    let mut executor = Executor::new(&registry, "Missing", "instance-1");
    let first = executor.apply(
        vec![orchestrator_started(T0), execution_started("Missing", None)],
        false,
    );
    let failure = failure_of(&first);
    assert_eq!(failure.error_type, "OrchestratorNotFound");
    assert!(failure.message.contains("Missing"));
    let second = executor.apply(vec![orchestrator_started(T0)], false);
    assert_eq!(second.actions, []);
}

#[test]
fn completions_for_ids_that_are_not_pending_or_of_another_kind_are_ignored() {
    let (mut host, _) = Host::start("Hello", hello_sequence, None);
    let result = host.episode(
        T0 + SECOND,
        vec![
            task_completed(7, json!("stray")),
            timer_fired(0, T0),
            task_completed(0, json!("Hello Tokyo!")),
            task_completed(0, json!("duplicate")),
        ],
    );
    assert_eq!(result.actions, [schedule(1, "SayHello", json!("Seattle"))]);
    host.episode(T0 + 2 * SECOND, vec![task_completed(1, json!("Hello Seattle!"))]);
    let last = host.episode(T0 + 3 * SECOND, vec![task_completed(2, json!("Hello London!"))]);
    assert_eq!(
        last.actions,
        [complete(json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"]))]
    );
}

#[test]
fn custom_status_is_none_until_set_and_then_reported_in_every_episode() {
    async fn status(ctx: OrchestrationContext) -> Result<(), Error> {
        ctx.call_activity::<()>("A", ()).await?;
        ctx.set_custom_status("working");
        ctx.call_activity::<()>("B", ()).await?;
        Ok(())
    }
    let (mut host, first) = Host::start("Status", status, None);
    assert_eq!(first.custom_status, None);
    let second = host.episode(T0, vec![task_completed(0, json!(null))]);
    assert_eq!(second.custom_status.as_deref(), Some(r#""working""#));
    let third = host.episode(T0, vec![event_raised("Unrelated", json!(1))]);
    assert_eq!(third.actions, []);
    assert_eq!(third.custom_status.as_deref(), Some(r#""working""#));
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
fn send_event_takes_a_sequence_number_shared_with_other_actions() {
    async fn sender(ctx: OrchestrationContext) -> Result<(), Error> {
        ctx.send_event("other", "Ping", 1);
        ctx.call_activity::<()>("A", ()).await?;
        Ok(())
    }
    let (_, first) = Host::start("Sender", sender, None);
    assert_eq!(
        first.actions,
        [
            Action {
                id: 0,
                kind: ActionKind::SendEvent(SendEvent {
                    instance_id: "other".to_owned(),
                    name: "Ping".to_owned(),
                    input: Some("1".to_owned()),
                }),
            },
            schedule(1, "A", json!(null)),
        ]
    );
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

fn call_entity(id: i32, key: &str, operation: &str, input: Value) -> Action {
    Action {
        id,
        kind: ActionKind::CallEntity(EntityOperationCalled {
            entity: wit_id("counter", key),
            operation: operation.to_owned(),
            input: Some(input.to_string()),
        }),
    }
}

fn signal_entity(id: i32, key: &str, operation: &str, input: Value, at: Option<i64>) -> Action {
    Action {
        id,
        kind: ActionKind::SignalEntity(EntityOperationSignaled {
            entity: wit_id("counter", key),
            operation: operation.to_owned(),
            input: Some(input.to_string()),
            scheduled_time: at,
        }),
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

/// Moves 10 from account a to account b inside a critical section if a has enough.
async fn transfer(ctx: OrchestrationContext) -> Result<bool, Error> {
    let (from, to) = (EntityId::new("Account", "b"), EntityId::new("Account", "a"));
    let lock = ctx.lock_entities(&[from.clone(), to.clone(), from.clone()]).await?;
    assert_eq!(lock.entities(), [to.clone(), from.clone()]);
    let balance: i64 = ctx.call_entity(&from, "balance", ()).await?;
    if balance < 10 {
        return Ok(false);
    }
    ctx.call_entity::<()>(&from, "withdraw", 10).await?;
    ctx.call_entity::<()>(&to, "deposit", 10).await?;
    lock.release();
    Ok(true)
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
fn call_entity_issues_call_entity_and_completes_with_the_operation_result() {
    let (mut host, first) = Host::start("Caller", add_then_get, None);
    assert_eq!(first.actions, [call_entity(0, "k", "add", json!(5))]);
    let second = host.episode(T0 + SECOND, vec![entity_completed(0, None)]);
    assert_eq!(second.actions, [call_entity(1, "k", "get", json!(null))]);
    let last = host.episode(T0 + 2 * SECOND, vec![entity_completed(1, Some(json!(5)))]);
    assert_eq!(last.actions, [complete(json!(5))]);
    host.assert_replay_matches();
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

    let (mut host, _) = Host::start("Caller", add_then_get, None);
    let result = host.episode(T0, vec![entity_failed(0, "Boom", "add broke")]);
    let failure = failure_of(&result);
    assert_eq!(failure.error_type, "Boom");
    assert_eq!(
        failure.message,
        "operation 'add' of entity '@counter@k' failed: add broke"
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
fn signal_entity_issues_an_action_with_a_sequence_number_and_waits_for_nothing() {
    async fn signaller(ctx: OrchestrationContext) -> Result<u32, Error> {
        let counter = EntityId::new("Counter", "k");
        for _ in 0..2 {
            ctx.signal_entity(&counter, "add", 1);
        }
        let later = ctx.current_utc_datetime() + Duration::from_secs(10);
        ctx.signal_entity_at(&EntityId::new("counter", "other"), "reset", (), later);
        ctx.call_activity::<()>("A", ()).await?;
        ctx.signal_entity(&counter, "add", 1);
        Ok(3)
    }
    let (mut host, first) = Host::start("Signaller", signaller, None);
    assert_eq!(
        first.actions,
        [
            signal_entity(0, "k", "add", json!(1), None),
            signal_entity(1, "k", "add", json!(1), None),
            signal_entity(2, "other", "reset", json!(null), Some(T0 + 10 * SECOND)),
            schedule(3, "A", json!(null)),
        ]
    );
    let last = host.episode(T0 + SECOND, vec![task_completed(3, json!(null))]);
    assert_eq!(
        last.actions,
        [signal_entity(4, "k", "add", json!(1), None), complete(json!(3))]
    );
    host.assert_replay_matches();
}

#[test]
fn lock_entities_sorts_and_dedups_waits_for_the_grant_and_release_unlocks_once() {
    let (mut host, first) = Host::start("Transfer", transfer, None);
    assert_eq!(first.actions, [lock(0, &["a", "b"])]);
    let waiting = host.episode(T0 + SECOND, vec![entity_completed(0, Some(json!(50))), lock_granted(7)]);
    assert_eq!(
        waiting.actions,
        [],
        "no grant for this lock yet; a stray completion is ignored"
    );
    let granted = host.episode(T0 + SECOND, vec![lock_granted(0)]);
    assert_eq!(granted.actions, [account_call(1, "b", "balance", json!(null))]);
    let withdraw = host.episode(T0 + 2 * SECOND, vec![entity_completed(1, Some(json!(50)))]);
    assert_eq!(withdraw.actions, [account_call(2, "b", "withdraw", json!(10))]);
    let deposit = host.episode(T0 + 3 * SECOND, vec![entity_completed(2, None)]);
    assert_eq!(deposit.actions, [account_call(3, "a", "deposit", json!(10))]);
    let last = host.episode(T0 + 4 * SECOND, vec![entity_completed(3, None)]);
    assert_eq!(last.actions, [unlock(4, &["a", "b"]), complete(json!(true))]);
    let unlocks = host
        .actions
        .iter()
        .filter(|action| matches!(action.kind, ActionKind::UnlockEntities(_)))
        .count();
    assert_eq!(unlocks, 1);
    host.assert_replay_matches();
}

#[test]
fn dropping_the_lock_releases_it_whether_the_orchestrator_returns_or_fails() {
    let (mut host, _) = Host::start("Transfer", transfer, None);
    host.episode(T0, vec![lock_granted(0)]);
    let poor = host.episode(T0, vec![entity_completed(1, Some(json!(5)))]);
    assert_eq!(poor.actions, [unlock(2, &["a", "b"]), complete(json!(false))]);
    host.assert_replay_matches();

    let (mut host, _) = Host::start("Transfer", transfer, None);
    host.episode(T0, vec![lock_granted(0)]);
    host.episode(T0, vec![entity_completed(1, Some(json!(50)))]);
    let failed = host.episode(T0, vec![entity_failed(2, "InsufficientFunds", "too poor")]);
    let [
        unlocked,
        Action {
            id: -1,
            kind: ActionKind::Fail(failure),
        },
    ] = failed.actions.as_slice()
    else {
        panic!("expected unlock and fail, got {:?}", failed.actions);
    };
    assert_eq!(unlocked, &unlock(3, &["a", "b"]));
    assert_eq!(failure.error_type, "InsufficientFunds");
    host.assert_replay_matches();
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

#[test]
fn replaying_a_history_with_every_entity_action_issues_identical_actions() {
    async fn everything(ctx: OrchestrationContext) -> Result<i64, Error> {
        let counter = EntityId::new("Counter", "k");
        ctx.signal_entity(&counter, "reset", ());
        let lock = ctx.lock_entities(&[EntityId::new("Account", "a")]).await?;
        let calls = task_all([
            ctx.call_entity::<i64>(&counter, "get", ()),
            ctx.call_entity::<i64>(&EntityId::new("Account", "a"), "balance", ()),
        ]);
        let sum: i64 = calls.await?.into_iter().sum();
        drop(lock);
        ctx.signal_entity(&counter, "add", sum);
        Ok(sum)
    }
    let (mut host, first) = Host::start("Everything", everything, None);
    assert_eq!(first.actions.len(), 2);
    let calls = host.episode(T0 + SECOND, vec![lock_granted(1)]);
    assert_eq!(calls.actions.len(), 2);
    host.episode(T0 + 2 * SECOND, vec![entity_completed(3, Some(json!(7)))]);
    let last = host.episode(T0 + 3 * SECOND, vec![entity_completed(2, Some(json!(3)))]);
    assert_eq!(
        last.actions,
        [
            unlock(4, &["a"]),
            signal_entity(5, "k", "add", json!(10), None),
            complete(json!(10))
        ]
    );
    host.assert_replay_matches();
}
