// A test app of tests/e2e/polyglot.rs. "Determinism" reads the wall clock and the random
// source directly, then pins what it read in an activity input: if a replay read different
// values, the host would see a different action and fail the instance as non-deterministic.
// "Raises" fails with an error of its own.

import * as df from "durable-functions";

df.app.orchestration("Determinism", function* (context) {
    const rounds = [];
    for (let round = 0; round < 2; round++) {
        const values = {
            random: Math.random(),
            time: Date.now(),
            now: new Date().toISOString(),
            utc: context.df.currentUtcDateTime.toISOString(),
            newGuid: context.df.newGuid(`round-${round}`),
        };
        yield context.df.callActivity("Pin", values);
        yield context.df.waitForExternalEvent("Next");
        rounds.push(values);
    }
    return rounds;
});

df.app.orchestration("Raises", function* (context) {
    yield context.df.callActivity("Pin", { step: 1 });
    throw new RangeError("the orchestrator gave up on purpose");
});

df.app.activity("Pin", {
    handler: (values) => values,
});
