//! The functions `durable bench` drives (see BENCHMARKS.md). Each does as little as possible
//! besides the durable operation it measures, so the figures are the host's.
//!
//! - `Bench_Sequence`: input `n` (or `{"n": n, "waitFor": "event"}`): `n` calls of
//!   `Bench_Echo` one after the other; with `waitFor`, then sets the custom status `"waiting"`
//!   and waits for that event before returning `n`.
//! - `Bench_FanOut`: input `n`: `n` calls of `Bench_Echo` at once; returns the sum of 0..n.
//! - `Bench_PingPong`: input `n`: waits for event `ping` `n` times, setting the custom status
//!   to the count after each; returns `n`.
//! - `Bench_Timer`: input `{"at": unix_ms}` (or `{"at": unix_ms, "count": k}`): one timer (or
//!   `k` timers) due at that time; returns when it has (they have) fired.
//! - `Bench_Wait`: waits for event `go`, returns its payload.
//! - `Bench_Echo` (activity): returns its input.

use std::time::{Duration, SystemTime};

use durable_sdk::{Error, OrchestrationContext, task_all};
use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Deserialize)]
#[serde(untagged)]
enum SequenceInput {
    Count(u64),
    Options {
        n: u64,
        #[serde(rename = "waitFor")]
        wait_for: Option<String>,
    },
}

async fn sequence(ctx: OrchestrationContext) -> Result<u64, Error> {
    let (n, wait_for) = match ctx.get_input::<SequenceInput>()? {
        SequenceInput::Count(n) => (n, None),
        SequenceInput::Options { n, wait_for } => (n, wait_for),
    };
    for i in 0..n {
        let _: u64 = ctx.call_activity("Bench_Echo", i).await?;
    }
    if let Some(event) = wait_for {
        ctx.set_custom_status("waiting");
        ctx.wait_for_external_event::<IgnoredAny>(&event).await?;
    }
    Ok(n)
}

async fn fan_out(ctx: OrchestrationContext) -> Result<u64, Error> {
    let n: u64 = ctx.get_input()?;
    let echoes = task_all((0..n).map(|i| ctx.call_activity::<u64>("Bench_Echo", i))).await?;
    Ok(echoes.into_iter().sum())
}

async fn ping_pong(ctx: OrchestrationContext) -> Result<u64, Error> {
    let n: u64 = ctx.get_input()?;
    for count in 1..=n {
        ctx.wait_for_external_event::<IgnoredAny>("ping").await?;
        ctx.set_custom_status(&count);
    }
    Ok(n)
}

#[derive(Deserialize)]
struct TimerInput {
    /// Due time, milliseconds since the Unix epoch.
    at: u64,
    #[serde(default = "one")]
    count: u64,
}

fn one() -> u64 {
    1
}

async fn timer(ctx: OrchestrationContext) -> Result<u64, Error> {
    let input: TimerInput = ctx.get_input()?;
    let due = SystemTime::UNIX_EPOCH + Duration::from_millis(input.at);
    task_all((0..input.count).map(|_| ctx.create_timer(due))).await?;
    Ok(input.count)
}

async fn wait(ctx: OrchestrationContext) -> Result<serde_json::Value, Error> {
    Ok(ctx.wait_for_external_event("go").await?)
}

fn echo(input: u64) -> Result<u64, Error> {
    Ok(input)
}

durable_sdk::export! {
    orchestrators: {
        "Bench_Sequence" => sequence,
        "Bench_FanOut" => fan_out,
        "Bench_PingPong" => ping_pong,
        "Bench_Timer" => timer,
        "Bench_Wait" => wait,
    },
    activities: { "Bench_Echo" => echo },
}
