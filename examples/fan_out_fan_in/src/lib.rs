//! Fan-out/fan-in (Durable Functions sample E2): squares 1..=n in parallel activities and
//! returns the sum, so n = 3 gives 14.

use durable_sdk::{Error, OrchestrationContext, task_all};

async fn fan_out_fan_in(ctx: OrchestrationContext) -> Result<i64, Error> {
    let n: i64 = ctx.get_input()?;
    let squares = task_all((1..=n).map(|i| ctx.call_activity::<i64>("E2_Square", i))).await?;
    squares
        .into_iter()
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| Error::msg("the sum of the squares overflows"))
}

fn square(x: i64) -> Result<i64, Error> {
    x.checked_mul(x)
        .ok_or_else(|| Error::msg(format!("{x} squared overflows")))
}

durable_sdk::export! {
    orchestrators: { "E2_FanOutFanIn" => fan_out_fan_in },
    activities: { "E2_Square" => square },
}
