//! An orchestration that ends Failed: its activity always fails and the orchestrator does
//! not catch the error.

use durable_sdk::{Error, OrchestrationContext};

async fn fail_always(ctx: OrchestrationContext) -> Result<(), Error> {
    ctx.call_activity::<()>("Fail", ()).await?;
    Ok(())
}

fn fail() -> Result<(), Error> {
    Err(Error::new("FailAlwaysError", "Fail always fails"))
}

durable_sdk::export! {
    orchestrators: { "FailAlways" => fail_always },
    activities: { "Fail" => fail },
}
