//! Orchestrators for the end-to-end tests. They call functions of the example apps
//! (`E1_HelloSequence`, `E2_FanOutFanIn`, `FailAlways`, `Fail`), so they also prove that
//! names resolve across apps.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use durable_sdk::{EntityContext, EntityId, Error, OrchestrationContext, RetryOptions};
use serde_json::{Value, json};

/// Runs two example orchestrators as sub-orchestrations and combines their outputs.
async fn sub_orchestration_parent(ctx: OrchestrationContext) -> Result<Value, Error> {
    let n: u64 = ctx.get_input()?;
    let sum: u64 = ctx.call_sub_orchestrator("E2_FanOutFanIn", None, n).await?;
    let child_id = format!("{}-hello", ctx.instance_id());
    let greetings: Vec<String> = ctx
        .call_sub_orchestrator("E1_HelloSequence", Some(&child_id), ())
        .await?;
    Ok(json!({ "sum": sum, "greetings": greetings }))
}

/// Calls the activity named in its input (`{"name": ..., "input": ...}`) wherever it is
/// deployed (another app, another language) and returns its result.
async fn call_activity_by_name(ctx: OrchestrationContext) -> Result<Value, Error> {
    let call: Value = ctx.get_input()?;
    let name = call["name"]
        .as_str()
        .ok_or_else(|| Error::msg("input.name must be a string"))?;
    Ok(ctx.call_activity(name, &call["input"]).await?)
}

/// A failing sub-orchestration surfaces as a catchable error in the parent.
async fn sub_orchestration_failure(ctx: OrchestrationContext) -> Result<String, Error> {
    match ctx.call_sub_orchestrator::<Value>("FailAlways", None, ()).await {
        Ok(output) => Err(Error::msg(format!("FailAlways unexpectedly returned {output}"))),
        Err(error) => Ok(format!("caught: {}", error.message())),
    }
}

/// Retries `Fail` three times with durable timers between attempts, then reports the error.
async fn retry_then_give_up(ctx: OrchestrationContext) -> Result<String, Error> {
    let retry = RetryOptions::new(Duration::from_millis(200), 3).with_backoff_coefficient(2.0);
    match ctx.call_activity_with_retry::<Value>("Fail", &retry, ()).await {
        Ok(output) => Err(Error::msg(format!("Fail unexpectedly returned {output}"))),
        Err(error) => Ok(format!("gave up: {}", error.message())),
    }
}

/// Reads the wall clock and random numbers, which the sandbox must make replay-safe, shows
/// them as custom status, waits for "go", and returns what it read in the first episode.
async fn sandbox_probe(ctx: OrchestrationContext) -> Result<Value, Error> {
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(Error::msg)?
        .as_micros() as u64;
    let orchestrator_time = ctx
        .current_utc_datetime()
        .duration_since(UNIX_EPOCH)
        .map_err(Error::msg)?
        .as_micros() as u64;
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(42);
    let random = hasher.finish();
    let observed = json!({
        "clock": clock,
        "orchestratorTime": orchestrator_time,
        "random": random.to_string(),
        "guid": ctx.new_guid(),
    });
    ctx.set_custom_status(&observed);
    let () = ctx.wait_for_external_event::<Value>("go").await.map(|_| ())?;
    Ok(observed)
}

/// Deliberately nondeterministic: what it schedules depends on whether it is replaying (a
/// classic mistake), so a replay takes the other branch.
async fn nondeterministic(ctx: OrchestrationContext) -> Result<String, Error> {
    if !ctx.is_replaying() {
        let _: Vec<String> = ctx.call_sub_orchestrator("E1_HelloSequence", None, ()).await?;
    } else {
        ctx.create_timer(ctx.current_utc_datetime() + Duration::from_secs(1))
            .await?;
    }
    ctx.wait_for_external_event::<Value>("go").await?;
    Ok("unreachable after a divergence".into())
}

/// Iterates a std `HashMap` and `HashSet`, whose hash keys std draws once per wasm instance
/// (from `wasi:random/insecure-seed`) and then counts up per map, shows the first order as
/// custom status, waits for "go", and returns the orders of both episodes. A replay must
/// see the same orders whatever ran before it.
async fn hash_order(ctx: OrchestrationContext) -> Result<Value, Error> {
    let map: HashMap<u32, u32> = (0..32).map(|key| (key, key * key)).collect();
    let first: Vec<u32> = map.keys().copied().collect();
    ctx.set_custom_status(&first);
    ctx.wait_for_external_event::<Value>("go").await?;
    let set: HashSet<String> = (0..32).map(|key| format!("key-{key}")).collect();
    let second: Vec<String> = set.into_iter().collect();
    Ok(json!({ "first": first, "second": second }))
}

/// Waits for "first", then continues as new; an event "second" that arrived meanwhile must
/// reach the next execution.
async fn continue_with_events(ctx: OrchestrationContext) -> Result<Value, Error> {
    let generation: u32 = ctx.get_input()?;
    if generation == 0 {
        ctx.wait_for_external_event::<Value>("first").await?;
        ctx.continue_as_new(1);
        return Ok(Value::Null);
    }
    let second: Value = ctx.wait_for_external_event("second").await?;
    Ok(json!({ "generation": generation, "second": second }))
}

/// Calls `FailUntil` with a deadline 1.5 s after its start: the first attempt fails and
/// the instance ends Failed; a rewind after the deadline completes it.
async fn rewind_me(ctx: OrchestrationContext) -> Result<String, Error> {
    let start = ctx
        .current_utc_datetime()
        .duration_since(UNIX_EPOCH)
        .map_err(Error::msg)?;
    let deadline = (start + Duration::from_millis(1500)).as_micros() as u64;
    let answer: String = ctx.call_activity("FailUntil", deadline).await?;
    Ok(format!("recovered: {answer}"))
}

/// Fails while the wall clock is before `deadline` (microseconds since the epoch).
fn fail_until(deadline: u64) -> Result<String, Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(Error::msg)?
        .as_micros() as u64;
    if now < deadline {
        return Err(Error::new(
            "TooEarly",
            format!("{} ms too early", (deadline - now) / 1000),
        ));
    }
    Ok("on time".into())
}

/// Signals `Counter`/`{input}` `add 1` one second from now, then returns at once.
async fn scheduled_signal(ctx: OrchestrationContext) -> Result<(), Error> {
    let key: String = ctx.get_input()?;
    let at = ctx.current_utc_datetime() + Duration::from_secs(1);
    ctx.signal_entity_at(&EntityId::new("Counter", &key), "add", 1, at);
    Ok(())
}

/// An entity whose `start` operation starts `E1_HelloSequence` under the id it is given.
fn starter(ctx: &mut EntityContext<u32>) -> Result<(), Error> {
    let instance_id: String = ctx.get_input()?;
    ctx.start_new_orchestration("E1_HelloSequence", Some(&instance_id), ());
    *ctx.state_mut() += 1;
    Ok(())
}

durable_sdk::export! {
    orchestrators: {
        "CallActivityByName" => call_activity_by_name,
        "RewindMe" => rewind_me,
        "ScheduledSignal" => scheduled_signal,
        "SubOrchestrationParent" => sub_orchestration_parent,
        "SubOrchestrationFailure" => sub_orchestration_failure,
        "RetryThenGiveUp" => retry_then_give_up,
        "SandboxProbe" => sandbox_probe,
        "Nondeterministic" => nondeterministic,
        "HashOrder" => hash_order,
        "ContinueWithEvents" => continue_with_events,
    },
    activities: {
        "FailUntil" => fail_until,
    },
    entities: {
        "Starter" => starter,
    },
}
