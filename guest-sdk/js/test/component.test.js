// The component glue: the WIT exports as componentize-js calls them, over functions
// registered with df.app (each test file runs in its own process, so the default registry
// holds only what this file registers).

import assert from "node:assert/strict";
import { test } from "node:test";

import * as df from "../src/index.js";
import { activity, entity, orchestrator, registry } from "../src/component.js";
import { T0, complete, executionStarted, orchestratorStarted, schedule, taskCompleted } from "./helpers.js";

df.app.orchestration("E1_HelloSequence", function* (context) {
    const greetings = [];
    for (const city of ["Tokyo", "Seattle", "London"]) {
        greetings.push(yield context.df.callActivity("E1_SayHello", city));
    }
    return greetings;
});
df.app.activity("E1_SayHello", { handler: (city) => `Hello ${city}!` });
df.app.entity("Counter", (context) => {
    context.df.setState(context.df.getState(() => 0) + context.df.getInput());
    context.df.return(context.df.getState());
});

test("the registry export lists what df.app registered", () => {
    assert.deepEqual(registry.functions(), [
        { name: "E1_HelloSequence", kind: "orchestrator" },
        { name: "E1_SayHello", kind: "activity" },
        { name: "Counter", kind: "entity" },
    ]);
});

test("the orchestration resource runs episodes and keeps its state between them", () => {
    const orchestration = new orchestrator.Orchestration("E1_HelloSequence", "instance-1");
    const first = orchestration.apply([orchestratorStarted(T0), executionStarted("E1_HelloSequence")], false);
    assert.deepEqual(first, { actions: [schedule(0, "E1_SayHello", "Tokyo")], customStatus: undefined });
    orchestration.apply([orchestratorStarted(T0), taskCompleted(0, "Hello Tokyo!")], false);
    orchestration.apply([orchestratorStarted(T0), taskCompleted(1, "Hello Seattle!")], false);
    const last = orchestration.apply([orchestratorStarted(T0), taskCompleted(2, "Hello London!")], false);
    assert.deepEqual(last.actions, [complete(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])]);
});

test("a malformed event fails the orchestration instead of throwing out of the component", () => {
    const orchestration = new orchestrator.Orchestration("E1_HelloSequence", "instance-1");
    const result = orchestration.apply([{ eventId: -1, timestamp: 0n, kind: null }], false);
    assert.equal(result.actions[0].kind.tag, "fail");
    assert.equal(result.actions[0].kind.val.errorType, "DurableSdkError");
});

test("the activity export runs activities and throws failure details", () => {
    assert.equal(activity.run("E1_SayHello", '"Tokyo"', { instanceId: "i", taskScheduledId: 0 }), '"Hello Tokyo!"');
    assert.throws(() => activity.run("Nope", undefined, { instanceId: "i", taskScheduledId: 0 }), (failure) => failure.errorType === "ActivityNotFound");
});

test("the entity export runs a batch on the entity of that name in any case", () => {
    const batch = entity.run({ name: "counter", key: "k" }, "1", [{ name: "add", input: "2" }]);
    assert.deepEqual(batch, { results: [{ tag: "ok", val: "3" }], state: "3", actions: [] });
});
