//! Durable entities: the `Counter` entity of the Durable Functions documentation (an integer
//! with the operations `add`, `reset`, `get` and `delete`), and two orchestrators that use
//! it: `CounterSignaller` signals it (one-way), `CounterCaller` calls it and reads the
//! result.

use durable_sdk::{EntityContext, EntityId, Error, OrchestrationContext};
use serde::Deserialize;

/// The counter: its state is an integer, 0 until the first operation sets it.
fn counter(ctx: &mut EntityContext<i64>) -> Result<(), Error> {
    match ctx.operation_name().to_lowercase().as_str() {
        "add" => {
            let amount: i64 = ctx.get_input()?;
            let state = ctx.state_mut();
            *state = state.saturating_add(amount);
        }
        "reset" => ctx.set_state(0),
        "get" => ctx.set_result(ctx.state()),
        "delete" => ctx.delete_state(),
        other => {
            return Err(Error::new(
                "UnknownOperation",
                format!("Counter has no operation '{other}'"),
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct SignallerInput {
    key: String,
    count: u32,
}

/// Input `{"key": "k", "count": 100}`: signals `add 1` to `Counter`/`key` `count` times,
/// then returns `count`.
async fn counter_signaller(ctx: OrchestrationContext) -> Result<u32, Error> {
    let input: SignallerInput = ctx.get_input()?;
    let counter = EntityId::new("Counter", input.key);
    for _ in 0..input.count {
        ctx.signal_entity(&counter, "add", 1);
    }
    Ok(input.count)
}

/// Input: a key. Adds 5 to `Counter`/key, then returns the value it reads back.
async fn counter_caller(ctx: OrchestrationContext) -> Result<i64, Error> {
    let key: String = ctx.get_input()?;
    let counter = EntityId::new("Counter", key);
    ctx.call_entity::<()>(&counter, "add", 5).await?;
    Ok(ctx.call_entity(&counter, "get", ()).await?)
}

durable_sdk::export! {
    orchestrators: {
        "CounterSignaller" => counter_signaller,
        "CounterCaller" => counter_caller,
    },
    entities: { "Counter" => counter },
}
