// Function chaining (Durable Functions sample E1): an orchestrator calls one activity three
// times in sequence and returns the three greetings.

import * as df from "durable-functions";

df.app.orchestration("E1_HelloSequence", function* (context) {
    const greetings = [];
    for (const city of ["Tokyo", "Seattle", "London"]) {
        greetings.push(yield context.df.callActivity("E1_SayHello", city));
    }
    return greetings;
});

df.app.activity("E1_SayHello", {
    handler: (city) => `Hello ${city}!`,
});
