// An orchestration that ends Failed: its activity always fails and the orchestrator does
// not catch the error.

import * as df from "durable-functions";

df.app.orchestration("FailAlways", function* (context) {
    yield context.df.callActivity("Fail");
});

class FailAlwaysError extends Error {}

df.app.activity("Fail", {
    handler: () => {
        throw new FailAlwaysError("Fail always fails");
    },
});
