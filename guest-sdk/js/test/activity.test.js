// Activities and the registry: what the WIT `activity` and `registry` exports return.

import assert from "node:assert/strict";
import { test } from "node:test";

import { runActivity } from "../src/activity.js";
import { Registry } from "../src/registry.js";

const call = { instanceId: "instance-1", taskScheduledId: 4 };

function registry() {
    const registry = new Registry();
    registry.orchestration("Orchestrate", function* () {});
    registry.activity("Double", { handler: (x) => x * 2 });
    registry.activity("WhoAmI", { handler: (_, context) => `${context.instanceId}#${context.taskScheduledId}:${context.functionName}` });
    registry.activity("Fail", () => {
        const error = new Error("always");
        error.name = "Boom";
        error.details = "why";
        throw error;
    });
    registry.activity("Nothing", { handler: () => undefined });
    registry.activity("Later", { handler: async (x) => (await Promise.resolve(x)) + 1 });
    registry.activity("LaterFail", {
        handler: async () => {
            await Promise.resolve();
            throw new RangeError("too far");
        },
    });
    registry.activity("Big", { handler: () => 1n });
    registry.entity("Counter", () => {});
    return registry;
}

function failureOf(thunk) {
    try {
        thunk();
    } catch (failure) {
        return failure;
    }
    assert.fail("expected a failure");
}

test("functions lists orchestrators, then activities, then entities, each sorted", () => {
    assert.deepEqual(registry().functions(), [
        { name: "Orchestrate", kind: "orchestrator" },
        { name: "Big", kind: "activity" },
        { name: "Double", kind: "activity" },
        { name: "Fail", kind: "activity" },
        { name: "Later", kind: "activity" },
        { name: "LaterFail", kind: "activity" },
        { name: "Nothing", kind: "activity" },
        { name: "WhoAmI", kind: "activity" },
        { name: "Counter", kind: "entity" },
    ]);
});

test("an activity's input is decoded and its output encoded", () => {
    const apps = registry();
    assert.equal(runActivity(apps, "Double", "21", call), "42");
    assert.equal(runActivity(apps, "WhoAmI", undefined, call), '"instance-1#4:WhoAmI"');
    assert.equal(runActivity(apps, "Nothing", undefined, call), "null");
});

test("an activity's errors become failure details", () => {
    const apps = registry();
    assert.deepEqual(
        failureOf(() => runActivity(apps, "Fail", undefined, call)),
        { errorType: "Boom", message: "always", details: "why" },
    );
    assert.equal(failureOf(() => runActivity(apps, "Missing", undefined, call)).errorType, "ActivityNotFound");
    assert.equal(failureOf(() => runActivity(apps, "Big", undefined, call)).errorType, "SerializationError");
});

test("an async activity resolves to its encoded output or rejects with failure details", async () => {
    const apps = registry();
    assert.equal(await runActivity(apps, "Later", "1", call), "2");
    await assert.rejects(Promise.resolve().then(() => runActivity(apps, "LaterFail", undefined, call)), (failure) => {
        assert.equal(failure.errorType, "RangeError");
        assert.equal(failure.message, "too far");
        assert.match(failure.details, /LaterFail|handler/);
        return true;
    });
});

test("registering a name twice throws, for entities in any case", () => {
    assert.throws(() => registry().activity("Orchestrate", () => {}), /registered twice/);
    assert.throws(() => registry().entity("COUNTER", () => {}), /registered twice/);
    assert.throws(() => registry().entity("double", () => {}), /registered twice/);
    assert.throws(() => registry().activity("X", {}), /needs a handler/);
});

test("entities are found by name in any case", () => {
    const apps = registry();
    assert.equal(typeof apps.entityHandler("cOuNtEr"), "function");
    assert.equal(apps.entityHandler("Double"), undefined);
});
