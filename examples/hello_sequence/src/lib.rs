//! Function chaining (Durable Functions sample E1): an orchestrator calls one activity
//! three times in sequence and returns the three greetings.

use durable_sdk::{Error, OrchestrationContext};

async fn hello_sequence(ctx: OrchestrationContext) -> Result<Vec<String>, Error> {
    let mut greetings = Vec::new();
    for city in ["Tokyo", "Seattle", "London"] {
        greetings.push(ctx.call_activity("E1_SayHello", city).await?);
    }
    Ok(greetings)
}

fn say_hello(name: String) -> Result<String, Error> {
    Ok(format!("Hello {name}!"))
}

durable_sdk::export! {
    orchestrators: { "E1_HelloSequence" => hello_sequence },
    activities: { "E1_SayHello" => say_hello },
}
