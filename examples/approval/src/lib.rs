//! Human interaction (Durable Functions sample E4): waits for an "Approval" event, racing it
//! against a durable timer. Returns "approved" or "timeout".
//!
//! Input: the timeout in seconds, as a number or as `{"timeoutSeconds": n}`; 300 if absent.

use std::time::Duration;

use durable_sdk::{Error, OrchestrationContext, task_any};
use serde::Deserialize;
use serde::de::IgnoredAny;

const DEFAULT_TIMEOUT_SECONDS: u64 = 300;

#[derive(Deserialize)]
#[serde(untagged)]
enum TimeoutInput {
    Seconds(u64),
    Object {
        #[serde(rename = "timeoutSeconds", default = "default_timeout")]
        timeout_seconds: u64,
    },
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

async fn approval(ctx: OrchestrationContext) -> Result<String, Error> {
    let timeout = match ctx.get_input::<Option<TimeoutInput>>()? {
        Some(TimeoutInput::Seconds(seconds))
        | Some(TimeoutInput::Object {
            timeout_seconds: seconds,
        }) => seconds,
        None => DEFAULT_TIMEOUT_SECONDS,
    };
    ctx.set_custom_status("waiting for approval");

    let deadline = ctx.current_utc_datetime() + Duration::from_secs(timeout);
    let approved = ctx
        .wait_for_external_event::<IgnoredAny>("Approval")
        .map(|_| "approved");
    let timed_out = ctx.create_timer(deadline).map(|()| "timeout");
    let (_, outcome) = task_any([approved, timed_out]).await;
    Ok(outcome?.to_owned())
}

durable_sdk::export! {
    orchestrators: { "E4_Approval" => approval },
}
