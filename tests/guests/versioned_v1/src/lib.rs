//! Version 1 of a versioned app. `versioned_v2` changes `Versioned` (it calls another
//! activity first, so v1 histories of it diverge under v2) and keeps `Stable` as is.

use durable_sdk::{Error, OrchestrationContext};
use serde_json::Value;

/// Calls `Version`, waits for the event `go`, returns `[version, event data]`.
async fn versioned(ctx: OrchestrationContext) -> Result<Value, Error> {
    let version: String = ctx.call_activity("Version", ()).await?;
    let go: Value = ctx.wait_for_external_event("go").await?;
    Ok(Value::Array(vec![Value::String(version), go]))
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
    Ok("v1".into())
}

/// Present in both versions (returns the version too); only v2's `Versioned` calls it.
fn version_two() -> Result<String, Error> {
    Ok("v1".into())
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
