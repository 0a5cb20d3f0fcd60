//! Monitor (Durable Functions sample E3): checks a status at an interval, as an eternal
//! orchestration that restarts itself with `continue_as_new` after every check.
//!
//! Input, every field optional: `{"intervalSeconds": 1, "maxIterations": 3, "iteration": 0}`.

use std::time::Duration;

use durable_sdk::{Error, OrchestrationContext};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
struct MonitorInput {
    interval_seconds: u64,
    max_iterations: u32,
    iteration: u32,
}

impl Default for MonitorInput {
    fn default() -> Self {
        Self {
            interval_seconds: 1,
            max_iterations: 3,
            iteration: 0,
        }
    }
}

async fn monitor(ctx: OrchestrationContext) -> Result<String, Error> {
    let input = ctx.get_input::<Option<MonitorInput>>()?.unwrap_or_default();
    let check: String = ctx.call_activity("E3_CheckStatus", input.iteration).await?;
    ctx.set_custom_status(&json!({ "iteration": input.iteration, "lastCheck": check }));

    let next = input.iteration.saturating_add(1);
    if next >= input.max_iterations {
        return Ok(format!("Monitor finished after {} iterations", input.max_iterations));
    }
    let wake_at = ctx.current_utc_datetime() + Duration::from_secs(input.interval_seconds);
    ctx.create_timer(wake_at).await?;
    ctx.continue_as_new(MonitorInput {
        iteration: next,
        ..input
    });
    Ok(format!("continued as new for iteration {next}"))
}

fn check_status(iteration: u32) -> Result<String, Error> {
    Ok(format!("check {iteration}"))
}

durable_sdk::export! {
    orchestrators: { "E3_Monitor" => monitor },
    activities: { "E3_CheckStatus" => check_status },
}
