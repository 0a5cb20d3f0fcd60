//! The shared protocol corpus (`tests/protocol/*.json`, described in its README) run
//! against this SDK's executor and entity batch runner.
//!
//! Every case names one of the fixed test orchestrators or entities below; the Python and
//! JavaScript SDKs implement the same ones under the same names, and run the same cases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::bindings::entity::{BatchResult, EntityAction, Operation};
use crate::bindings::types::{
    self, Action, ActionKind, EntityOperationCalled, EntityOperationCompleted, EntityOperationFailed,
    EntityOperationSignaled, EventKind, EventRaised, EventSent, ExecutionCompleted, ExecutionStarted, FailureDetails,
    HistoryEvent, OrchestrationStatus, ParentInstance, SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceCreated, SubOrchestrationInstanceFailed, TaskCompleted, TaskFailed, TaskScheduled,
    TimerCreated, TimerFired,
};
use crate::executor::Executor;
use crate::registry::Registry;
use crate::task::Task;
use crate::{EntityContext, EntityId, Error, OrchestrationContext, RetryOptions, task_all, task_any};

// ---- the test orchestrators, by corpus name ----

async fn sequence(ctx: OrchestrationContext) -> Result<Vec<String>, Error> {
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

async fn all_after_gate(ctx: OrchestrationContext) -> Result<Vec<Value>, Error> {
    let tasks = [ctx.call_activity::<Value>("A", ()), ctx.call_activity::<Value>("B", ())];
    ctx.call_activity::<()>("Gate", ()).await?;
    Ok(task_all(tasks).await?)
}

async fn all_or_timeout(ctx: OrchestrationContext) -> Result<Value, Error> {
    let both = task_all([
        ctx.call_activity::<i64>("Square", 2),
        ctx.call_activity::<i64>("Square", 3),
    ]);
    let timeout = ctx.create_timer(ctx.current_utc_datetime() + Duration::from_secs(864_000));
    let both = Task::new(async move { both.await.map(Some) });
    match task_any([both, timeout.map(|()| None)]).await {
        (_, Ok(Some(squares))) => Ok(json!(squares)),
        (_, Ok(None)) => Ok(json!("timeout")),
        (_, Err(error)) => Err(error.into()),
    }
}

async fn sender(ctx: OrchestrationContext) -> Result<(), Error> {
    ctx.send_event("other", "Ping", 1);
    ctx.call_activity::<()>("A", ()).await?;
    Ok(())
}

async fn child(ctx: OrchestrationContext) -> Result<i64, Error> {
    Ok(ctx.call_sub_orchestrator("Child", None, 5).await?)
}

async fn status(ctx: OrchestrationContext) -> Result<(), Error> {
    ctx.call_activity::<()>("A", ()).await?;
    ctx.set_custom_status("working");
    ctx.call_activity::<()>("B", ()).await?;
    Ok(())
}

async fn observe_replaying(ctx: OrchestrationContext) -> Result<Vec<bool>, Error> {
    let mut seen = vec![ctx.is_replaying()];
    ctx.call_activity::<()>("A", ()).await?;
    seen.push(ctx.is_replaying());
    Ok(seen)
}

async fn approval(ctx: OrchestrationContext) -> Result<String, Error> {
    let deadline = ctx.current_utc_datetime() + Duration::from_secs(60);
    let timeout = ctx.create_timer(deadline).map(|()| None);
    let event = ctx.wait_for_external_event::<Value>("Approval").map(Some);
    match task_any([timeout, event]).await {
        (_, Ok(Some(approved))) => Ok(format!("approved={approved}")),
        (_, Ok(None)) => Ok("timeout".to_owned()),
        (_, Err(error)) => Err(error.into()),
    }
}

async fn two_events(ctx: OrchestrationContext) -> Result<Vec<Value>, Error> {
    ctx.call_activity::<()>("Prepare", ()).await?;
    let first = ctx.wait_for_external_event("E").await?;
    let second = ctx.wait_for_external_event("e").await?;
    Ok(vec![first, second])
}

async fn two_waiters(ctx: OrchestrationContext) -> Result<Vec<Value>, Error> {
    let first = ctx.wait_for_external_event::<Value>("E");
    let second = ctx.wait_for_external_event::<Value>("E");
    Ok(task_all([second, first]).await?)
}

async fn race_then_wait(ctx: OrchestrationContext) -> Result<Value, Error> {
    let timeout = ctx.create_timer(ctx.current_utc_datetime()).map(|()| None);
    let event = ctx.wait_for_external_event::<Value>("E").map(Some);
    let (winner, _) = task_any([timeout, event]).await;
    if winner != 0 {
        return Err(Error::msg("the timer should have won"));
    }
    Ok(ctx.wait_for_external_event("E").await?)
}

async fn first_in_list(ctx: OrchestrationContext) -> Result<Value, Error> {
    ctx.call_activity::<()>("Prepare", ()).await?;
    let a = ctx.wait_for_external_event::<Value>("A");
    let b = ctx.wait_for_external_event::<Value>("B");
    let (_, winner) = task_any([b, a]).await;
    Ok(winner?)
}

async fn continue_counter(ctx: OrchestrationContext) -> Result<(), Error> {
    let total: i64 = ctx.get_input()?;
    let add: i64 = ctx.wait_for_external_event("Add").await?;
    ctx.continue_as_new(total + add);
    Ok(())
}

async fn carry_unyielded(ctx: OrchestrationContext) -> Result<(), Error> {
    // Kept, never awaited: it is handed "Late" and gives it back when the run ends.
    let _late = ctx.wait_for_external_event::<Value>("Late");
    ctx.wait_for_external_event::<Value>("Go").await?;
    ctx.continue_as_new(());
    Ok(())
}

async fn wait_event(ctx: OrchestrationContext) -> Result<Value, Error> {
    Ok(ctx.wait_for_external_event("E").await?)
}

async fn echo_input(ctx: OrchestrationContext) -> Result<Value, Error> {
    ctx.get_input()
}

async fn retry(ctx: OrchestrationContext) -> Result<String, Error> {
    let retry = RetryOptions::new(Duration::from_secs(5), 3).with_backoff_coefficient(2.0);
    Ok(ctx.call_activity_with_retry("Flaky", &retry, "x").await?)
}

async fn retry_capped(ctx: OrchestrationContext) -> Result<Value, Error> {
    let retry = RetryOptions::new(Duration::from_secs(1), 5)
        .with_backoff_coefficient(2.0)
        .with_max_retry_interval(Duration::from_secs(3));
    Ok(ctx.call_activity_with_retry("Flaky", &retry, ()).await?)
}

async fn retry_timeout(ctx: OrchestrationContext) -> Result<Value, Error> {
    let retry = RetryOptions::new(Duration::from_secs(5), 10).with_retry_timeout(Duration::from_secs(8));
    Ok(ctx.call_activity_with_retry("Flaky", &retry, ()).await?)
}

async fn sub_retry(ctx: OrchestrationContext) -> Result<i64, Error> {
    let retry = RetryOptions::new(Duration::from_secs(1), 2);
    Ok(ctx
        .call_sub_orchestrator_with_retry("Child", Some("child-1"), &retry, 5)
        .await?)
}

async fn retry_awaited_later(ctx: OrchestrationContext) -> Result<Value, Error> {
    let retry = RetryOptions::new(Duration::from_secs(1), 2);
    let retried = ctx.call_activity_with_retry::<Value>("Flaky", &retry, ());
    ctx.call_activity::<()>("Other", ()).await?;
    Ok(retried.await?)
}

async fn timer(ctx: OrchestrationContext) -> Result<String, Error> {
    ctx.create_timer(ctx.current_utc_datetime() + Duration::from_secs(10))
        .await?;
    ctx.create_timer(ctx.current_utc_datetime() + Duration::from_secs(10))
        .await?;
    Ok("done".to_owned())
}

async fn guid(ctx: OrchestrationContext) -> Result<Vec<String>, Error> {
    let mut guids = vec![ctx.new_guid(), ctx.new_guid()];
    ctx.create_timer(ctx.current_utc_datetime()).await?;
    guids.push(ctx.new_guid());
    Ok(guids)
}

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
    ctx.create_timer(ctx.current_utc_datetime() + Duration::from_secs(30))
        .await?;
    let child: i64 = ctx.call_sub_orchestrator("Child", Some("child-1"), sum).await?;
    let approved: bool = ctx.wait_for_external_event("Approval").await?;
    ctx.set_custom_status(&json!({"step": 2}));
    Ok(json!([guid, greeting, sum, child, approved, ctx.new_guid()]))
}

async fn fail_unhandled(ctx: OrchestrationContext) -> Result<Value, Error> {
    Ok(ctx.call_activity("Fail", ()).await?)
}

async fn catch_activity(ctx: OrchestrationContext) -> Result<Value, Error> {
    match ctx.call_activity::<Value>("Fail", ()).await {
        Ok(output) => Ok(output),
        Err(error) => Ok(json!({
            "task": error.task_name(),
            "error_type": error.error_type(),
            "message": error.message(),
            "details": error.details(),
        })),
    }
}

async fn entity_call(ctx: OrchestrationContext) -> Result<i64, Error> {
    let counter = EntityId::new("Counter", "k");
    ctx.call_entity::<()>(&counter, "add", 5).await?;
    Ok(ctx.call_entity(&counter, "get", ()).await?)
}

async fn catch_entity(ctx: OrchestrationContext) -> Result<Value, Error> {
    let account = EntityId::new("Account", "a");
    match ctx.call_entity::<()>(&account, "withdraw", 100).await {
        Ok(()) => Ok(json!("withdrawn")),
        Err(error) => Ok(json!({
            "task": error.task_name(),
            "entity": error.entity().map(ToString::to_string),
            "error_type": error.error_type(),
            "message": error.message(),
            "details": error.details(),
        })),
    }
}

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

async fn transfer(ctx: OrchestrationContext) -> Result<bool, Error> {
    let (source, target) = (EntityId::new("Account", "b"), EntityId::new("Account", "a"));
    let lock = ctx
        .lock_entities(&[source.clone(), target.clone(), source.clone()])
        .await?;
    let balance: i64 = ctx.call_entity(&source, "balance", ()).await?;
    if balance < 10 {
        return Ok(false);
    }
    ctx.call_entity::<()>(&source, "withdraw", 10).await?;
    ctx.call_entity::<()>(&target, "deposit", 10).await?;
    lock.release();
    Ok(true)
}

async fn nested_locks(ctx: OrchestrationContext) -> Result<Vec<String>, Error> {
    let mut errors = Vec::new();
    if let Err(error) = ctx.lock_entities(&[]).await {
        errors.push(error.error_type().to_owned());
    }
    let outer = ctx.lock_entities(&[EntityId::new("Account", "a")]).await?;
    if let Err(error) = ctx.lock_entities(&[EntityId::new("Account", "b")]).await {
        errors.push(error.error_type().to_owned());
    }
    outer.release();
    let again = ctx.lock_entities(&[EntityId::new("Account", "b")]).await?;
    again.release();
    Ok(errors)
}

async fn entity_mix(ctx: OrchestrationContext) -> Result<i64, Error> {
    let counter = EntityId::new("Counter", "k");
    ctx.signal_entity(&counter, "reset", ());
    let lock = ctx.lock_entities(&[EntityId::new("Account", "a")]).await?;
    let calls = task_all([
        ctx.call_entity::<i64>(&counter, "get", ()),
        ctx.call_entity::<i64>(&EntityId::new("Account", "a"), "balance", ()),
    ]);
    let sum: i64 = calls.await?.into_iter().sum();
    lock.release();
    ctx.signal_entity(&counter, "add", sum);
    Ok(sum)
}

/// The counter entity: signals the counter `echo` with what it adds, and fails on negative
/// amounts after changing its state and signalling.
fn counter(ctx: &mut EntityContext<i64>) -> Result<(), Error> {
    match ctx.operation_name().to_lowercase().as_str() {
        "add" => {
            let amount: i64 = ctx.get_input()?;
            *ctx.state_mut() += amount;
            ctx.signal_entity(&EntityId::new("Counter", "echo"), "add", amount);
            if amount < 0 {
                return Err(Error::new("NegativeAmount", "cannot add a negative amount"));
            }
        }
        "reset" => ctx.set_state(0),
        "get" => ctx.set_result(ctx.state()),
        "delete" => ctx.delete_state(),
        "peek" => ctx.set_result(&ctx.has_state()),
        "echo" => ctx.set_result(&ctx.get_input::<Value>()?),
        other => return Err(Error::new("UnknownOperation", format!("no operation '{other}'"))),
    }
    Ok(())
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .orchestrator("sequence", sequence)
        .orchestrator("fan_out", fan_out)
        .orchestrator("all_or_timeout", all_or_timeout)
        .orchestrator("all_after_gate", all_after_gate)
        .orchestrator("sender", sender)
        .orchestrator("child", child)
        .orchestrator("status", status)
        .orchestrator("observe_replaying", observe_replaying)
        .orchestrator("approval", approval)
        .orchestrator("two_events", two_events)
        .orchestrator("two_waiters", two_waiters)
        .orchestrator("race_then_wait", race_then_wait)
        .orchestrator("first_in_list", first_in_list)
        .orchestrator("continue_counter", continue_counter)
        .orchestrator("carry_unyielded", carry_unyielded)
        .orchestrator("wait_event", wait_event)
        .orchestrator("echo_input", echo_input)
        .orchestrator("retry", retry)
        .orchestrator("retry_capped", retry_capped)
        .orchestrator("retry_timeout", retry_timeout)
        .orchestrator("sub_retry", sub_retry)
        .orchestrator("retry_awaited_later", retry_awaited_later)
        .orchestrator("timer", timer)
        .orchestrator("guid", guid)
        .orchestrator("mixed", mixed)
        .orchestrator("fail_unhandled", fail_unhandled)
        .orchestrator("catch_activity", catch_activity)
        .orchestrator("entity_call", entity_call)
        .orchestrator("catch_entity", catch_entity)
        .orchestrator("signaller", signaller)
        .orchestrator("transfer", transfer)
        .orchestrator("nested_locks", nested_locks)
        .orchestrator("entity_mix", entity_mix)
        .entity("counter", counter);
    registry
}

// ---- corpus JSON to WIT values ----

fn text(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn int(value: &Value, key: &str) -> i64 {
    value.get(key).and_then(Value::as_i64).unwrap_or_default()
}

fn seq(value: &Value, key: &str) -> i32 {
    i32::try_from(int(value, key)).expect("sequence numbers fit in s32")
}

/// A payload: absent is `none`, anything else (null included) is its compact JSON text.
fn payload(value: &Value, key: &str) -> Option<String> {
    value.get(key).map(Value::to_string)
}

fn failure(value: &Value) -> FailureDetails {
    let failure = &value["failure"];
    FailureDetails {
        error_type: text(failure, "error-type"),
        message: text(failure, "message"),
        details: failure.get("details").and_then(Value::as_str).map(str::to_owned),
    }
}

fn wit_entity(value: &Value) -> types::EntityId {
    types::EntityId {
        name: text(value, "name"),
        key: text(value, "key"),
    }
}

fn entities(value: &Value) -> Vec<types::EntityId> {
    value["entities"]
        .as_array()
        .map(|list| list.iter().map(wit_entity).collect())
        .unwrap_or_default()
}

fn event_kind(e: &Value) -> EventKind {
    let id = |key| seq(e, key);
    match e["kind"].as_str().unwrap_or_default() {
        "execution-started" => EventKind::ExecutionStarted(ExecutionStarted {
            name: text(e, "name"),
            instance_id: text(e, "instance-id"),
            input: payload(e, "input"),
            parent: e.get("parent").map(|parent| ParentInstance {
                instance_id: text(parent, "instance-id"),
                name: text(parent, "name"),
                task_scheduled_id: seq(parent, "task-scheduled-id"),
            }),
        }),
        "orchestrator-started" => EventKind::OrchestratorStarted,
        "orchestrator-completed" => EventKind::OrchestratorCompleted,
        "task-scheduled" => EventKind::TaskScheduled(TaskScheduled {
            name: text(e, "name"),
            input: payload(e, "input"),
        }),
        "task-completed" => EventKind::TaskCompleted(TaskCompleted {
            task_scheduled_id: id("task-scheduled-id"),
            result: payload(e, "result"),
        }),
        "task-failed" => EventKind::TaskFailed(TaskFailed {
            task_scheduled_id: id("task-scheduled-id"),
            failure: failure(e),
        }),
        "timer-created" => EventKind::TimerCreated(TimerCreated {
            fire_at: int(e, "fire-at"),
        }),
        "timer-fired" => EventKind::TimerFired(TimerFired {
            timer_id: id("timer-id"),
            fire_at: int(e, "fire-at"),
        }),
        "event-raised" => EventKind::EventRaised(EventRaised {
            name: text(e, "name"),
            input: payload(e, "input"),
        }),
        "event-sent" => EventKind::EventSent(EventSent {
            instance_id: text(e, "instance-id"),
            name: text(e, "name"),
            input: payload(e, "input"),
        }),
        "sub-orchestration-instance-created" => {
            EventKind::SubOrchestrationInstanceCreated(SubOrchestrationInstanceCreated {
                name: text(e, "name"),
                instance_id: text(e, "instance-id"),
                input: payload(e, "input"),
            })
        }
        "sub-orchestration-instance-completed" => {
            EventKind::SubOrchestrationInstanceCompleted(SubOrchestrationInstanceCompleted {
                task_scheduled_id: id("task-scheduled-id"),
                result: payload(e, "result"),
            })
        }
        "sub-orchestration-instance-failed" => {
            EventKind::SubOrchestrationInstanceFailed(SubOrchestrationInstanceFailed {
                task_scheduled_id: id("task-scheduled-id"),
                failure: failure(e),
            })
        }
        "execution-completed" => EventKind::ExecutionCompleted(ExecutionCompleted {
            status: match e["status"].as_str() {
                Some("failed") => OrchestrationStatus::Failed,
                Some("terminated") => OrchestrationStatus::Terminated,
                Some("continued-as-new") => OrchestrationStatus::ContinuedAsNew,
                _ => OrchestrationStatus::Completed,
            },
            result: payload(e, "result"),
            failure: e.get("failure").map(|_| failure(e)),
        }),
        "entity-operation-called" => EventKind::EntityOperationCalled(EntityOperationCalled {
            entity: wit_entity(&e["entity"]),
            operation: text(e, "operation"),
            input: payload(e, "input"),
        }),
        "entity-operation-signaled" => EventKind::EntityOperationSignaled(EntityOperationSignaled {
            entity: wit_entity(&e["entity"]),
            operation: text(e, "operation"),
            input: payload(e, "input"),
            scheduled_time: e.get("scheduled-time").and_then(Value::as_i64),
        }),
        "entity-lock-requested" => EventKind::EntityLockRequested(entities(e)),
        "entity-lock-granted" => EventKind::EntityLockGranted(id("task-scheduled-id")),
        "entity-unlock-sent" => EventKind::EntityUnlockSent(entities(e)),
        "entity-operation-completed" => EventKind::EntityOperationCompleted(EntityOperationCompleted {
            task_scheduled_id: id("task-scheduled-id"),
            result: payload(e, "result"),
        }),
        "entity-operation-failed" => EventKind::EntityOperationFailed(EntityOperationFailed {
            task_scheduled_id: id("task-scheduled-id"),
            failure: failure(e),
        }),
        "continue-as-new" => EventKind::ContinueAsNew(payload(e, "input")),
        "execution-suspended" => {
            EventKind::ExecutionSuspended(e.get("reason").and_then(Value::as_str).map(str::to_owned))
        }
        "execution-resumed" => EventKind::ExecutionResumed(e.get("reason").and_then(Value::as_str).map(str::to_owned)),
        "execution-terminated" => EventKind::ExecutionTerminated(payload(e, "reason")),
        other => panic!("unknown event kind '{other}'"),
    }
}

/// The events of one episode; an event without a timestamp has the episode's.
fn history_events(events: &[Value]) -> Vec<HistoryEvent> {
    let episode_time = events.first().map_or(0, |first| int(first, "timestamp"));
    events
        .iter()
        .map(|e| HistoryEvent {
            event_id: e.get("event-id").and_then(Value::as_i64).map_or(-1, |id| id as i32),
            timestamp: e.get("timestamp").and_then(Value::as_i64).unwrap_or(episode_time),
            kind: event_kind(e),
        })
        .collect()
}

// ---- WIT values to corpus JSON ----

/// A payload as a JSON value; `none` is null, which [`normalize`] then drops.
fn value(json: Option<&str>) -> Value {
    json.map_or(Value::Null, |text| {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(format!("<not JSON: {text}>")))
    })
}

fn failure_json(failure: &FailureDetails) -> Value {
    json!({"error-type": failure.error_type, "message": failure.message, "details": failure.details})
}

fn entity_json(entity: &types::EntityId) -> Value {
    json!({"name": entity.name, "key": entity.key})
}

fn action_json(action: &Action) -> Value {
    let (kind, mut body) = match &action.kind {
        ActionKind::ScheduleTask(task) => (
            "schedule-task",
            json!({"name": task.name, "input": value(task.input.as_deref())}),
        ),
        ActionKind::CreateTimer(timer) => ("create-timer", json!({"fire-at": timer.fire_at})),
        ActionKind::CallSubOrchestration(call) => (
            "call-sub-orchestration",
            json!({"name": call.name, "instance-id": call.instance_id, "input": value(call.input.as_deref())}),
        ),
        ActionKind::SendEvent(send) => (
            "send-event",
            json!({"instance-id": send.instance_id, "name": send.name, "input": value(send.input.as_deref())}),
        ),
        ActionKind::Complete(output) => ("complete", json!({"output": value(output.as_deref())})),
        ActionKind::Fail(failure) => ("fail", json!({"failure": failure_json(failure)})),
        ActionKind::ContinueAsNew(next) => (
            "continue-as-new",
            json!({
                "input": value(next.input.as_deref()),
                "carried-events": next.carried_events.iter()
                    .map(|event| json!({"name": event.name, "input": value(event.input.as_deref())}))
                    .collect::<Vec<_>>(),
            }),
        ),
        ActionKind::CallEntity(call) => (
            "call-entity",
            json!({"entity": entity_json(&call.entity), "operation": call.operation, "input": value(call.input.as_deref())}),
        ),
        ActionKind::SignalEntity(signal) => (
            "signal-entity",
            json!({
                "entity": entity_json(&signal.entity),
                "operation": signal.operation,
                "input": value(signal.input.as_deref()),
                "scheduled-time": signal.scheduled_time,
            }),
        ),
        ActionKind::LockEntities(list) => (
            "lock-entities",
            json!({"entities": list.iter().map(entity_json).collect::<Vec<_>>()}),
        ),
        ActionKind::UnlockEntities(list) => (
            "unlock-entities",
            json!({"entities": list.iter().map(entity_json).collect::<Vec<_>>()}),
        ),
    };
    body["id"] = json!(action.id);
    body["kind"] = json!(kind);
    body
}

fn entity_action_json(action: &EntityAction) -> Value {
    match action {
        EntityAction::SignalEntity(signal) => json!({
            "kind": "signal-entity",
            "entity": entity_json(&signal.entity),
            "operation": signal.operation,
            "input": value(signal.input.as_deref()),
            "scheduled-time": signal.scheduled_time,
        }),
        EntityAction::StartOrchestration(start) => json!({
            "kind": "start-orchestration",
            "name": start.name,
            "instance-id": start.instance_id,
            "input": value(start.input.as_deref()),
        }),
    }
}

fn batch_json(batch: &BatchResult) -> Value {
    let results: Vec<Value> = batch
        .results
        .iter()
        .map(|result| match result {
            Ok(output) => json!({"ok": value(output.as_deref())}),
            Err(failure) => json!({"err": failure_json(failure)}),
        })
        .collect();
    json!({
        "results": results,
        "state": value(batch.state.as_deref()),
        "actions": batch.actions.iter().map(entity_action_json).collect::<Vec<_>>(),
    })
}

// ---- comparison ----

/// Drops every object member whose value is null: `none`, `some("null")` and an absent
/// member compare equal.
fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Whether `actual` matches `expected`: equal, except that a `failure` or `err` object is
/// checked only for the members the expectation names, where `m-contains: [..]` asks that
/// member `m` contain every string listed.
fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            want.len() == have.len()
                && want.iter().all(|(key, want)| {
                    have.get(key).is_some_and(|have| {
                        if key == "failure" || key == "err" {
                            matches_loosely(want, have)
                        } else {
                            matches(want, have)
                        }
                    })
                })
        }
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(want, have)| matches(want, have))
        }
        (want, have) => want == have,
    }
}

fn matches_loosely(expected: &Value, actual: &Value) -> bool {
    let (Value::Object(want), Value::Object(have)) = (expected, actual) else {
        return false;
    };
    want.iter().all(|(key, want)| match key.strip_suffix("-contains") {
        Some(member) => {
            let text = have.get(member).and_then(Value::as_str).unwrap_or_default();
            want.as_array().is_some_and(|parts| {
                parts
                    .iter()
                    .all(|part| part.as_str().is_some_and(|part| text.contains(part)))
            })
        }
        None => have.get(key).is_some_and(|have| matches(want, have)),
    })
}

// ---- running cases ----

struct Corpus {
    /// (file name, case) in file order, files sorted by name.
    cases: Vec<(String, Value)>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/protocol")
}

fn load() -> Corpus {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/protocol exists")
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable corpus file");
        let file: Value = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
        for case in file["cases"].as_array().expect("a cases array") {
            cases.push((name.clone(), case.clone()));
        }
    }
    Corpus { cases }
}

/// Runs the episodes of an orchestration case in one fresh executor; `replay` forces
/// `replaying = true` and feeds each episode's recorded action events after its events, as a
/// replay of the stored history would (the guest must ignore them). Returns the mismatches.
fn run_orchestration(registry: &Registry, case: &Value, replay: bool) -> Vec<String> {
    let name = text(case, "orchestrator");
    let instance_id = case.get("instance-id").and_then(Value::as_str).unwrap_or("instance-1");
    let mut executor = Executor::new(registry, &name, instance_id);
    let mut problems = Vec::new();
    let pass = if replay { "replay" } else { "live" };
    for (index, episode) in case["episodes"].as_array().expect("episodes").iter().enumerate() {
        let mut events = history_events(episode["events"].as_array().expect("events"));
        let replaying = replay || episode.get("replaying").and_then(Value::as_bool).unwrap_or(false);
        if replay && let Some(recorded) = episode.get("recorded").and_then(Value::as_array) {
            let time = events.first().map_or(0, |first| first.timestamp);
            let mut with_time: Vec<Value> = vec![json!({"kind": "orchestrator-started", "timestamp": time})];
            with_time.extend(recorded.iter().cloned());
            with_time.push(json!({"kind": "orchestrator-completed"}));
            events.extend(history_events(&with_time).into_iter().skip(1));
        }
        let result = executor.apply(events, replaying);
        let actual: Vec<Value> = result.actions.iter().map(|a| normalize(&action_json(a))).collect();
        let expected = normalize(&episode["actions"]);
        if !matches(&expected, &Value::Array(actual.clone())) {
            problems.push(format!(
                "{pass} episode {index}: expected actions {expected}, got {}",
                Value::Array(actual)
            ));
        }
        if let Some(status) = episode.get("custom-status") {
            let actual = value(result.custom_status.as_deref());
            if normalize(&json!([status])) != normalize(&json!([actual])) {
                problems.push(format!(
                    "{pass} episode {index}: expected custom status {status}, got {actual}"
                ));
            }
        }
    }
    problems
}

fn run_batch_case(registry: &Registry, case: &Value) -> Vec<String> {
    let operations = case["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|operation| Operation {
            name: text(operation, "name"),
            input: payload(operation, "input"),
        })
        .collect();
    let state = case.get("state").filter(|state| !state.is_null()).map(Value::to_string);
    let batch = registry.run_entity(wit_entity(&case["id"]), state, operations);
    let actual = normalize(&batch_json(&batch));
    let expected = normalize(&case["expect"]);
    if matches(&expected, &actual) {
        Vec::new()
    } else {
        vec![format!("expected {expected}, got {actual}")]
    }
}

fn run_case(registry: &Registry, case: &Value) -> Vec<String> {
    if case.get("entity").is_some() {
        return run_batch_case(registry, case);
    }
    let mode = case.get("mode").and_then(Value::as_str).unwrap_or("live");
    if mode == "replay" {
        return run_orchestration(registry, case, true);
    }
    let mut problems = run_orchestration(registry, case, false);
    if case.get("replay-check").and_then(Value::as_bool) != Some(false) {
        problems.extend(run_orchestration(registry, case, true));
    }
    problems
}

#[test]
fn every_protocol_case_passes() {
    let corpus = load();
    assert!(corpus.cases.len() >= 50, "the corpus has {} cases", corpus.cases.len());
    let registry = registry();
    let mut failures = Vec::new();
    let mut names = BTreeMap::new();
    for (file, case) in &corpus.cases {
        let name = text(case, "name");
        if let Some(other) = names.insert(name.clone(), file.clone()) {
            failures.push(format!("{file}: case '{name}' is also in {other}"));
        }
        for problem in run_case(&registry, case) {
            failures.push(format!("{file}: {name}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} protocol cases failed:\n{}",
        failures.len(),
        corpus.cases.len(),
        failures.join("\n")
    );
}
