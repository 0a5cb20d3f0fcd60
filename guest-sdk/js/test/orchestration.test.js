// The executor fed with canned histories, as a host would feed it: what the shared protocol
// corpus (tests/protocol, run by protocol.test.js) cannot show, namely the JavaScript API
// (generators, TaskFailedError, Task states, cancellation), how thrown values and
// unencodable values become failures, and the executor's cost on a large fan-in.

import assert from "node:assert/strict";
import { test } from "node:test";

import { RetryOptions } from "../src/retry.js";
import { TaskFailedError } from "../src/errors.js";
import {
    Host,
    SECOND,
    T0,
    complete,
    event,
    eventRaised,
    failure,
    failureOf,
    outputOf,
    schedule,
    taskCompleted,
    taskFailed,
    timerFired,
} from "./helpers.js";

function* fanOut(context) {
    const n = context.df.getInput();
    const tasks = [];
    for (let i = 1; i <= n; i++) {
        tasks.push(context.df.callActivity("Square", i));
    }
    const squares = yield context.df.Task.all(tasks);
    return squares.reduce((a, b) => a + b, 0);
}

test("a fan-in over many tasks completed one event at a time sums every value", () => {
    const [host, first] = Host.start("FanOut", fanOut, 2000);
    assert.equal(first.actions.length, 2000);
    const completions = [];
    for (let id = 1999; id >= 0; id--) {
        completions.push(taskCompleted(id, id));
    }
    const last = host.episode(T0 + SECOND, completions);
    assert.deepEqual(last.actions, [complete((1999 * 2000) / 2)]);
    host.assertReplayMatches();
});

test("a lost waiter yielded again waits anew for the next event", () => {
    function* raceTwice(context) {
        const raised = context.df.waitForExternalEvent("E");
        const first = yield context.df.Task.any([raised, context.df.createTimer(context.df.currentUtcDateTime)]);
        assert.notEqual(first, raised);
        return yield raised;
    }
    const [host] = Host.start("RaceTwice", raceTwice);
    host.episode(T0, [timerFired(0, T0)]);
    assert.deepEqual(host.episode(T0 + SECOND, [eventRaised("E", 8)]).actions, [complete(8)]);
    host.assertReplayMatches();
});

test("an activity failure is caught by the orchestrator as a TaskFailedError with message and details", () => {
    function* catches(context) {
        try {
            return yield context.df.callActivity("Fail");
        } catch (error) {
            assert.ok(error instanceof TaskFailedError);
            return {
                kind: error.taskKind,
                task: error.taskName,
                name: error.name,
                message: error.message,
                failure: error.failure,
                details: error.details,
            };
        }
    }
    const [host, first] = Host.start("Catches", catches);
    assert.deepEqual(first.actions, [schedule(0, "Fail", null)]);
    const result = host.episode(T0 + SECOND, [taskFailed(0, "Fail always fails")]);
    assert.deepEqual(outputOf(result), {
        kind: "activity",
        task: "Fail",
        name: "FailAlwaysError",
        message: "activity 'Fail' failed: Fail always fails",
        failure: { errorType: "FailAlwaysError", message: "Fail always fails", details: "trace" },
        details: "trace",
    });
});

test("an error the orchestrator throws fails it with the error's class name, message and stack", () => {
    class OutOfStock extends Error {}
    function* throws(context) {
        yield context.df.callActivity("A");
        throw new OutOfStock("no tickets left");
    }
    const [host] = Host.start("Throws", throws);
    const failed = failureOf(host.episode(T0, [taskCompleted(0, null)]));
    assert.equal(failed.errorType, "OutOfStock");
    assert.equal(failed.message, "no tickets left");
    assert.match(failed.details, /throws/);

    function* rangeError() {
        throw new RangeError("out of range");
    }
    const [, result] = Host.start("Range", rangeError);
    assert.equal(failureOf(result).errorType, "RangeError");

    function* throwsString() {
        throw "plain";
    }
    const [, plain] = Host.start("Plain", throwsString);
    assert.deepEqual(failureOf(plain), { errorType: "Error", message: "plain", details: undefined });
});

test("a custom status that cannot be encoded fails the orchestration with a SerializationError", () => {
    function* badStatus(context) {
        context.df.setCustomStatus({ big: 1n });
        yield context.df.waitForExternalEvent("Never");
    }
    const [, result] = Host.start("BadStatus", badStatus);
    assert.equal(failureOf(result).errorType, "SerializationError");
});

test("an activity input that cannot be encoded fails the task without issuing an action", () => {
    function* badInput(context) {
        try {
            yield context.df.callActivity("A", { big: 1n });
        } catch (error) {
            return [error.name, error.message];
        }
    }
    const [, result] = Host.start("BadInput", badInput);
    assert.equal(result.actions.length, 1);
    const [name, message] = outputOf(result);
    assert.equal(name, "SerializationError");
    assert.match(message, /^activity 'A' failed: the input could not be encoded as JSON/);
});

test("a sub-orchestration failure surfaces as a TaskFailedError of kind sub-orchestration", () => {
    function* parent(context) {
        try {
            return yield context.df.callSubOrchestrator("Child", 5);
        } catch (error) {
            assert.equal(error.taskKind, "sub-orchestration");
            return error.message;
        }
    }
    const [host, first] = Host.start("Parent", parent);
    assert.deepEqual(first.actions, [{ id: 0, kind: { tag: "call-sub-orchestration", val: { name: "Child", instanceId: undefined, input: "5" } } }]);
    const failedChild = event("sub-orchestration-instance-failed", { taskScheduledId: 0, failure: failure("ChildError", "child broke") });
    assert.deepEqual(host.episode(T0, [failedChild]).actions, [complete("sub-orchestration 'Child' failed: child broke")]);
});

test("yielding something that is not a task throws a TypeError into the orchestrator", () => {
    function* yieldsArray(context) {
        try {
            yield [context.df.callActivity("A")];
        } catch (error) {
            return `${error.name}: ${error.message}`;
        }
    }
    const [, result] = Host.start("YieldsArray", yieldsArray);
    assert.match(outputOf(result), /^TypeError: .*yielded an array \(wrap it in context.df.Task.all\)/);
});

test("an orchestrator that is a plain function completes at once, and an async one fails", () => {
    const [, plain] = Host.start("Plain", (context) => context.df.getInput() * 2, 21);
    assert.deepEqual(plain.actions, [complete(42)]);
    const [, asynchronous] = Host.start("Async", async () => 1);
    assert.match(failureOf(asynchronous).message, /returned a promise/);
});

test("a canceled timer never completes, and isCompleted follows what the orchestrator saw", () => {
    function* cancels(context) {
        const timeout = context.df.createTimer(new Date(T0 / 1000 + 60_000));
        const go = context.df.waitForExternalEvent("Go");
        const winner = yield context.df.Task.any([go, timeout]);
        timeout.cancel();
        const status = [winner === go, go.isCompleted, go.isFaulted, timeout.isCompleted, timeout.isCanceled];
        const later = yield context.df.Task.any([timeout, context.df.waitForExternalEvent("Again")]);
        return [...status, later === timeout];
    }
    const [host] = Host.start("Cancels", cancels);
    host.episode(T0, [eventRaised("Go", null)]);
    const result = host.episode(T0 + 60 * SECOND, [timerFired(0, T0 + 60 * SECOND), eventRaised("Again", null)]);
    assert.deepEqual(outputOf(result), [true, true, false, false, true, false]);
    host.assertReplayMatches();
});

test("an orchestrator's Date.now and Math.random are its own business: the SDK reads neither", () => {
    // The host makes both deterministic for orchestrators (recorded clock, seeded random);
    // the SDK must not draw from them itself, or a replay would see different values.
    const realNow = Date.now;
    const realRandom = Math.random;
    Date.now = () => assert.fail("the SDK read the clock");
    Math.random = () => assert.fail("the SDK drew a random number");
    try {
        const [host] = Host.start("Mixed", function* (context) {
            context.df.newGuid();
            yield context.df.createTimer(context.df.currentUtcDateTime);
            return yield context.df.callActivityWithRetry("A", new RetryOptions(1000, 2));
        });
        host.episode(T0, [timerFired(0, T0)]);
        host.episode(T0, [taskFailed(1, "x")]);
        host.episode(T0 + SECOND, [timerFired(2, T0 + SECOND)]);
        assert.deepEqual(host.episode(T0 + SECOND, [taskCompleted(3, 1)]).actions, [complete(1)]);
        host.assertReplayMatches();
    } finally {
        Date.now = realNow;
        Math.random = realRandom;
    }
});
