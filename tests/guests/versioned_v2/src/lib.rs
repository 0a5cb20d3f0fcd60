//! Version 2 of a versioned app: `Versioned` now calls `VersionTwo` before anything else,
//! so replaying a v1 history of it diverges; `Stable` is unchanged.

use durable_sdk::{Error, OrchestrationContext};
use serde_json::Value;

/// Calls `VersionTwo`, waits for the event `go`, returns `[its result, event data]`.
async fn versioned(ctx: OrchestrationContext) -> Result<Value, Error> {
    let two: String = ctx.call_activity("VersionTwo", ()).await?;
    let go: Value = ctx.wait_for_external_event("go").await?;
    Ok(Value::Array(vec![Value::String(two), go]))
}

/// Waits for the event `go`, then calls `Version` and returns its result. The same code in
/// both versions.
async fn stable(ctx: OrchestrationContext) -> Result<String, Error> {
    let _: Value = ctx.wait_for_external_event("go").await?;
    let version: String = ctx.call_activity("Version", ()).await?;
    Ok(version)
}

/// This app's version.
fn version() -> Result<String, Error> {
    Ok("v2".into())
}

/// The activity v2's `Versioned` calls first; returns the version too.
fn version_two() -> Result<String, Error> {
    Ok("v2".into())
}

durable_sdk::export! {
    orchestrators: {
        "Versioned" => versioned,
        "Stable" => stable,
    },
    activities: {
        "Version" => version,
        "VersionTwo" => version_two,
    },
}
