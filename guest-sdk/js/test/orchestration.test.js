// The executor fed with canned histories, as a host would feed it: the same scenarios as
// the Rust SDK's executor tests, so both SDKs number actions, match events to tasks,
// buffer events and fail the same way.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Executor } from "../src/executor.js";
import { Registry } from "../src/registry.js";
import { RetryOptions } from "../src/retry.js";
import { TaskFailedError } from "../src/errors.js";
import {
    Host,
    SECOND,
    T0,
    complete,
    event,
    eventRaised,
    executionStarted,
    failure,
    failureOf,
    orchestratorStarted,
    outputOf,
    schedule,
    taskCompleted,
    taskFailed,
    timer,
    timerFired,
} from "./helpers.js";

// ---- orchestrators ----

function* helloSequence(context) {
    const out = [];
    for (const city of ["Tokyo", "Seattle", "London"]) {
        out.push(yield context.df.callActivity("SayHello", city));
    }
    return out;
}

function* fanOut(context) {
    const n = context.df.getInput();
    const tasks = [];
    for (let i = 1; i <= n; i++) {
        tasks.push(context.df.callActivity("Square", i));
    }
    const squares = yield context.df.Task.all(tasks);
    return squares.reduce((a, b) => a + b, 0);
}

/** Waits for "Approval" for 60 seconds. */
function* approval(context) {
    const deadline = new Date(context.df.currentUtcDateTime.getTime() + 60_000);
    const timeout = context.df.createTimer(deadline);
    const approved = context.df.waitForExternalEvent("Approval");
    const winner = yield context.df.Task.any([timeout, approved]);
    return winner === approved ? `approved=${winner.result}` : "timeout";
}

/** Waits for "E" once an activity has completed. */
function* activityThenEvent(context) {
    yield context.df.callActivity("Prepare");
    const first = yield context.df.waitForExternalEvent("E");
    const second = yield context.df.waitForExternalEvent("e");
    return [first, second];
}

function* failUnhandled(context) {
    return yield context.df.callActivity("Fail");
}

// ---- tests ----

test("a sequence of three activities schedules one at a time and completes with all results", () => {
    const [host, first] = Host.start("Hello", helloSequence);
    assert.deepEqual(first.actions, [schedule(0, "SayHello", "Tokyo")]);
    const second = host.episode(T0 + SECOND, [taskCompleted(0, "Hello Tokyo!")]);
    assert.deepEqual(second.actions, [schedule(1, "SayHello", "Seattle")]);
    const third = host.episode(T0 + 2 * SECOND, [taskCompleted(1, "Hello Seattle!")]);
    assert.deepEqual(third.actions, [schedule(2, "SayHello", "London")]);
    const last = host.episode(T0 + 3 * SECOND, [taskCompleted(2, "Hello London!")]);
    assert.deepEqual(last.actions, [complete(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])]);
    assert.equal(last.customStatus, undefined);
    host.assertReplayMatches();
});

test("fan-out schedules every activity in one episode and sums completions in any order", () => {
    const [host, first] = Host.start("FanOut", fanOut, 3);
    assert.deepEqual(first.actions, [schedule(0, "Square", 1), schedule(1, "Square", 2), schedule(2, "Square", 3)]);
    assert.deepEqual(host.episode(T0 + SECOND, [taskCompleted(2, 9)]).actions, []);
    const last = host.episode(T0 + 2 * SECOND, [taskCompleted(1, 4), taskCompleted(0, 1)]);
    assert.deepEqual(last.actions, [complete(14)]);
    host.assertReplayMatches();
});

test("Task.all fails fast on the first failure in completion order", () => {
    const [host] = Host.start("FanOut", fanOut, 3);
    const result = host.episode(T0 + SECOND, [taskFailed(1, "square 2 failed"), taskFailed(0, "square 1 failed")]);
    const failed = failureOf(result);
    assert.match(failed.message, /square 2 failed/);
    assert.equal(failed.errorType, "FailAlwaysError");
});

test("Task.all reports the failure that completed first even when an earlier task in the list fails later", () => {
    function* waitsFirst(context) {
        const tasks = [context.df.callActivity("A"), context.df.callActivity("B")];
        yield context.df.callActivity("Gate");
        return yield context.df.Task.all(tasks);
    }
    const [host] = Host.start("WaitsFirst", waitsFirst);
    // Both fail before the Task.all is first polled: it polls all in list order.
    let result = host.episode(T0 + SECOND, [taskFailed(1, "B failed"), taskFailed(0, "A failed")]);
    assert.deepEqual(result.actions, []);
    result = host.episode(T0 + 2 * SECOND, [taskCompleted(2, null)]);
    assert.match(failureOf(result).message, /A failed/);

    // Once it waits, the first to fail wins, whatever its place in the list.
    const [later] = Host.start("WaitsFirst", waitsFirst);
    later.episode(T0 + SECOND, [taskCompleted(2, null)]);
    result = later.episode(T0 + 2 * SECOND, [taskFailed(1, "B failed"), taskFailed(0, "A failed")]);
    assert.match(failureOf(result).message, /B failed/);
    later.assertReplayMatches();
});

test("a fan-in nested in a race wins when its last task completes in a later episode", () => {
    function* allOrTimeout(context) {
        const both = context.df.Task.all([context.df.callActivity("Square", 2), context.df.callActivity("Square", 3)]);
        const timeout = context.df.createTimer(new Date(1_000_000_000));
        const winner = yield context.df.Task.any([both, timeout]);
        return winner === both ? both.result : "timeout";
    }
    const [host, first] = Host.start("AllOrTimeout", allOrTimeout);
    assert.equal(first.actions.length, 3);
    assert.deepEqual(host.episode(T0 + SECOND, [taskCompleted(1, 9)]).actions, []);
    const last = host.episode(T0 + 2 * SECOND, [taskCompleted(0, 4)]);
    assert.deepEqual(last.actions, [complete([4, 9])]);
    host.assertReplayMatches();
});

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

test("the event wins the race against the timer", () => {
    const [host, first] = Host.start("Approval", approval);
    assert.deepEqual(first.actions, [timer(0, T0 + 60 * SECOND)]);
    const result = host.episode(T0 + SECOND, [eventRaised("Approval", true)]);
    assert.deepEqual(result.actions, [complete("approved=true")]);
    host.assertReplayMatches();
});

test("the timer wins the race against the event", () => {
    const [host] = Host.start("Approval", approval);
    const result = host.episode(T0 + 60 * SECOND, [timerFired(0, T0 + 60 * SECOND), eventRaised("Approval", true)]);
    assert.deepEqual(result.actions, [complete("timeout")]);
    host.assertReplayMatches();
});

test("a waiter given up by a lost race leaves later events to the next wait", () => {
    function* raceThenWait(context) {
        const timeout = context.df.createTimer(context.df.currentUtcDateTime);
        const raised = context.df.waitForExternalEvent("E");
        const winner = yield context.df.Task.any([timeout, raised]);
        assert.equal(winner, timeout);
        return yield context.df.waitForExternalEvent("E");
    }
    const [host] = Host.start("Race", raceThenWait);
    assert.deepEqual(host.episode(T0, [timerFired(0, T0)]).actions, []);
    const result = host.episode(T0 + SECOND, [eventRaised("E", 7)]);
    assert.deepEqual(result.actions, [complete(7)]);
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

test("an event raised before the wait is buffered and delivered when the wait starts", () => {
    const [host] = Host.start("Buffered", activityThenEvent);
    assert.deepEqual(host.episode(T0 + SECOND, [eventRaised("E", 1)]).actions, []);
    assert.deepEqual(host.episode(T0 + 2 * SECOND, [taskCompleted(0, null)]).actions, [], "the second wait has no event yet");
    const last = host.episode(T0 + 3 * SECOND, [eventRaised("E", 2)]);
    assert.deepEqual(last.actions, [complete([1, 2])]);
    host.assertReplayMatches();
});

test("two buffered events with one name are delivered in arrival order", () => {
    const [host] = Host.start("Buffered", activityThenEvent);
    host.episode(T0 + SECOND, [eventRaised("E", 1), eventRaised("E", 2)]);
    const last = host.episode(T0 + 2 * SECOND, [taskCompleted(0, null)]);
    assert.deepEqual(last.actions, [complete([1, 2])]);
    host.assertReplayMatches();
});

test("of two waiters for one name the oldest gets the first event", () => {
    function* twoWaiters(context) {
        const first = context.df.waitForExternalEvent("E");
        const second = context.df.waitForExternalEvent("E");
        return yield context.df.Task.all([second, first]);
    }
    const [host] = Host.start("TwoWaiters", twoWaiters);
    const result = host.episode(T0 + SECOND, [eventRaised("E", 1), eventRaised("E", 2)]);
    assert.deepEqual(result.actions, [complete([2, 1])]);
    host.assertReplayMatches();
});

test("event names match case-insensitively whether waiting or buffered", () => {
    const [host] = Host.start("Approval", approval);
    assert.deepEqual(host.episode(T0 + SECOND, [eventRaised("APPROVAL", false)]).actions, [complete("approved=false")]);

    const [buffered] = Host.start("Buffered", activityThenEvent);
    buffered.episode(T0 + SECOND, [eventRaised("e", 1), eventRaised("E", 2)]);
    assert.deepEqual(buffered.episode(T0 + 2 * SECOND, [taskCompleted(0, null)]).actions, [complete([1, 2])]);
});

test("event payloads and orchestration inputs decode double-encoded JSON", () => {
    function* read(context) {
        const input = context.df.getInput();
        const payload = yield context.df.waitForExternalEvent("E");
        return [input, payload];
    }
    const host = new Host("Read", read);
    host.episode(T0, [executionStarted("Read", JSON.stringify(JSON.stringify({ a: 1 })))]);
    const result = host.episode(T0, [eventRaised("E", JSON.stringify([1, 2]))]);
    assert.deepEqual(outputOf(result), [{ a: 1 }, [1, 2]]);

    const [plain] = Host.start("Read", read, "3");
    assert.deepEqual(outputOf(plain.episode(T0, [eventRaised("E", "")])), ["3", ""], "other strings stay strings");
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

test("an unhandled activity failure fails the orchestration with the activity's type, message and details", () => {
    const [host] = Host.start("FailAlways", failUnhandled);
    const result = host.episode(T0 + SECOND, [taskFailed(0, "Fail always fails")]);
    assert.deepEqual(failureOf(result), {
        errorType: "FailAlwaysError",
        message: "activity 'Fail' failed: Fail always fails",
        details: "trace",
    });
    assert.deepEqual(host.episode(T0 + 2 * SECOND, []).actions, []);
    host.assertReplayMatches();
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

function* withRetry(context) {
    const retry = new RetryOptions(5000, 3);
    retry.backoffCoefficient = 2;
    return yield context.df.callActivityWithRetry("Flaky", retry, "x");
}

test("retry waits on a durable timer then schedules again until the attempts run out", () => {
    const [host, first] = Host.start("Retry", withRetry);
    assert.deepEqual(first.actions, [schedule(0, "Flaky", "x")]);
    assert.deepEqual(host.episode(T0 + SECOND, [taskFailed(0, "boom 1")]).actions, [timer(1, T0 + 6 * SECOND)]);
    assert.deepEqual(host.episode(T0 + 6 * SECOND, [timerFired(1, T0 + 6 * SECOND)]).actions, [schedule(2, "Flaky", "x")]);
    assert.deepEqual(host.episode(T0 + 7 * SECOND, [taskFailed(2, "boom 2")]).actions, [timer(3, T0 + 17 * SECOND)], "backoff doubles");
    assert.deepEqual(host.episode(T0 + 17 * SECOND, [timerFired(3, T0 + 17 * SECOND)]).actions, [schedule(4, "Flaky", "x")]);
    const last = host.episode(T0 + 18 * SECOND, [taskFailed(4, "boom 3")]);
    assert.match(failureOf(last).message, /boom 3/);
    host.assertReplayMatches();
});

test("retry returns the result of the first attempt that succeeds", () => {
    const [host] = Host.start("Retry", withRetry);
    host.episode(T0 + SECOND, [taskFailed(0, "boom")]);
    host.episode(T0 + 6 * SECOND, [timerFired(1, T0 + 6 * SECOND)]);
    assert.deepEqual(host.episode(T0 + 7 * SECOND, [taskCompleted(2, "ok")]).actions, [complete("ok")]);
    host.assertReplayMatches();
});

test("retry stops when the next attempt would start after the retry timeout", () => {
    function* withTimeout(context) {
        const retry = new RetryOptions(5000, 10);
        retry.retryTimeoutInMilliseconds = 8000;
        return yield context.df.callActivityWithRetry("Flaky", retry);
    }
    const [host] = Host.start("Retry", withTimeout);
    assert.deepEqual(host.episode(T0 + SECOND, [taskFailed(0, "boom 1")]).actions, [timer(1, T0 + 6 * SECOND)]);
    host.episode(T0 + 6 * SECOND, [timerFired(1, T0 + 6 * SECOND)]);
    failureOf(host.episode(T0 + 7 * SECOND, [taskFailed(2, "boom 2")]));
});

test("sub-orchestrations retry too, with their own action", () => {
    function* parent(context) {
        return yield context.df.callSubOrchestratorWithRetry("Child", new RetryOptions(1000, 2), 5, "child-1");
    }
    const [host, first] = Host.start("Parent", parent);
    const call = { id: 0, kind: { tag: "call-sub-orchestration", val: { name: "Child", instanceId: "child-1", input: "5" } } };
    assert.deepEqual(first.actions, [call]);
    const failedChild = event("sub-orchestration-instance-failed", { taskScheduledId: 0, failure: failure("ChildError", "child broke") });
    assert.deepEqual(host.episode(T0, [failedChild]).actions, [timer(1, T0 + SECOND)]);
    assert.deepEqual(host.episode(T0 + SECOND, [timerFired(1, T0 + SECOND)]).actions, [{ ...call, id: 2 }]);
    const done = event("sub-orchestration-instance-completed", { taskScheduledId: 2, result: "25" });
    assert.deepEqual(host.episode(T0 + 2 * SECOND, [done]).actions, [complete(25)]);
    host.assertReplayMatches();
});

test("continue-as-new carries every unconsumed event in arrival order", () => {
    function* counter(context) {
        const total = context.df.getInput();
        const add = yield context.df.waitForExternalEvent("Add");
        context.df.continueAsNew(total + add);
    }
    const [host, first] = Host.start("Counter", counter, 10);
    assert.deepEqual(first.actions, []);
    const result = host.episode(T0 + SECOND, [eventRaised("Other", "x"), eventRaised("Add", 2), eventRaised("Add", 3)]);
    assert.deepEqual(result.actions, [
        {
            id: -1,
            kind: {
                tag: "continue-as-new",
                val: { input: "12", carriedEvents: [{ name: "Other", input: '"x"' }, { name: "Add", input: "3" }] },
            },
        },
    ]);
    host.assertReplayMatches();
});

test("an event handed to a waiter the orchestrator never yielded is carried by continue-as-new", () => {
    function* leaves(context) {
        context.df.waitForExternalEvent("Late");
        yield context.df.waitForExternalEvent("Go");
        context.df.continueAsNew(null);
    }
    const [host] = Host.start("Leaves", leaves);
    const result = host.episode(T0, [eventRaised("Late", 1), eventRaised("Go", 2), eventRaised("Late", 3)]);
    assert.deepEqual(result.actions.at(-1).kind.val.carriedEvents, [
        { name: "Late", input: "1" },
        { name: "Late", input: "3" },
    ]);
});

test("replaying a mixed history in a fresh executor issues identical actions", () => {
    function* mixed(context) {
        const guid = context.df.newGuid();
        context.df.setCustomStatus({ step: 1 });
        const greeting = yield context.df.callActivity("SayHello", "Tokyo");
        context.df.sendEvent("other", "Ping", guid);
        const squares = context.df.Task.all([context.df.callActivity("Square", 2), context.df.callActivity("Square", 3)]);
        const sum = (yield squares).reduce((a, b) => a + b, 0);
        yield context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime() + 30_000));
        const child = yield context.df.callSubOrchestrator("Child", sum, "child-1");
        const approved = yield context.df.waitForExternalEvent("Approval");
        context.df.setCustomStatus({ step: 2 });
        return [guid, greeting, sum, child, approved, context.df.newGuid()];
    }
    const [host, first] = Host.start("Mixed", mixed);
    assert.equal(first.customStatus, '{"step":1}');
    const episode = host.episode(T0 + SECOND, [taskCompleted(0, "Hello Tokyo!")]);
    assert.equal(episode.actions.length, 3, "send-event and two activities");
    assert.equal(episode.actions[0].kind.tag, "send-event");
    host.episode(T0 + 2 * SECOND, [taskCompleted(3, 9), eventRaised("Approval", true), taskCompleted(2, 4)]);
    host.episode(T0 + 32 * SECOND, [timerFired(4, T0 + 32 * SECOND)]);
    assert.deepEqual(host.actions.at(-1).kind, { tag: "call-sub-orchestration", val: { name: "Child", instanceId: "child-1", input: "13" } });
    const last = host.episode(T0 + 40 * SECOND, [event("sub-orchestration-instance-completed", { taskScheduledId: 5, result: "169" })]);
    assert.equal(last.customStatus, '{"step":2}');
    const output = outputOf(last);
    assert.deepEqual(output.slice(1, 5), ["Hello Tokyo!", 13, 169, true]);
    assert.notEqual(output[0], output[5]);
    host.assertReplayMatches();
});

test("isReplaying follows the flag of each apply", () => {
    function* observe(context) {
        const seen = [context.df.isReplaying];
        yield context.df.callActivity("A");
        seen.push(context.df.isReplaying);
        return seen;
    }
    const registry = new Registry();
    registry.orchestration("Observe", observe);
    const executor = new Executor(registry, "Observe", "instance-1");
    const first = executor.apply([orchestratorStarted(T0), executionStarted("Observe")], true);
    assert.deepEqual(first.actions, [schedule(0, "A", null)]);
    const last = executor.apply([orchestratorStarted(T0 + SECOND), taskCompleted(0, null)], false);
    assert.deepEqual(last.actions, [complete([true, false])]);
});

test("newGuid is the same in fresh executors and distinct per call and per time", () => {
    function* guids(context) {
        const out = [context.df.newGuid(), context.df.newGuid()];
        yield context.df.createTimer(context.df.currentUtcDateTime);
        out.push(context.df.newGuid());
        return out;
    }
    const run = () => {
        const [host] = Host.start("Guids", guids);
        return outputOf(host.episode(T0 + SECOND, [timerFired(0, T0)]));
    };
    const first = run();
    assert.deepEqual(first, run());
    assert.equal(new Set(first).size, 3);
    for (const guid of first) {
        assert.match(guid, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
});

test("newGuid derives from the instance id, the episode time in .NET round-trip form and a counter", async () => {
    const { uuidV5 } = await import("../src/guid.js");
    function* one(context) {
        return context.df.newGuid();
    }
    const [, result] = Host.start("One", one);
    assert.equal(outputOf(result), uuidV5("instance-1_2023-11-14T22:13:20.0000000Z_0"));
});

test("currentUtcDateTime is the timestamp of the episode's orchestrator-started event", () => {
    function* times(context) {
        const start = context.df.currentUtcDateTime.getTime();
        yield context.df.callActivity("A");
        return [start, context.df.currentUtcDateTime.getTime()];
    }
    const [host] = Host.start("Times", times);
    const result = host.episode(T0 + 5 * SECOND, [taskCompleted(0, null)]);
    assert.deepEqual(result.actions, [complete([T0 / 1000, (T0 + 5 * SECOND) / 1000])]);
});

test("an unknown orchestrator fails on the first apply and then issues nothing", () => {
    const executor = new Executor(new Registry(), "Missing", "instance-1");
    const failed = failureOf(executor.apply([orchestratorStarted(T0), executionStarted("Missing")], false));
    assert.equal(failed.errorType, "OrchestratorNotFound");
    assert.match(failed.message, /Missing/);
    assert.deepEqual(executor.apply([orchestratorStarted(T0)], false).actions, []);
});

test("completions for ids that are not pending or of another kind are ignored", () => {
    const [host] = Host.start("Hello", helloSequence);
    const result = host.episode(T0 + SECOND, [
        taskCompleted(7, "stray"),
        timerFired(0, T0),
        taskCompleted(0, "Hello Tokyo!"),
        taskCompleted(0, "duplicate"),
    ]);
    assert.deepEqual(result.actions, [schedule(1, "SayHello", "Seattle")]);
    host.episode(T0 + 2 * SECOND, [taskCompleted(1, "Hello Seattle!")]);
    const last = host.episode(T0 + 3 * SECOND, [taskCompleted(2, "Hello London!")]);
    assert.deepEqual(last.actions, [complete(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])]);
});

test("the custom status is absent until set and then reported in every episode", () => {
    function* status(context) {
        yield context.df.callActivity("A");
        context.df.setCustomStatus("working");
        yield context.df.callActivity("B");
    }
    const [host, first] = Host.start("Status", status);
    assert.equal(first.customStatus, undefined);
    assert.equal(host.episode(T0, [taskCompleted(0, null)]).customStatus, '"working"');
    const third = host.episode(T0, [eventRaised("Unrelated", 1)]);
    assert.deepEqual(third.actions, []);
    assert.equal(third.customStatus, '"working"');
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

test("sendEvent takes a sequence number shared with other actions", () => {
    function* sender(context) {
        context.df.sendEvent("other", "Ping", 1);
        yield context.df.callActivity("A");
    }
    const [, first] = Host.start("Sender", sender);
    assert.deepEqual(first.actions, [
        { id: 0, kind: { tag: "send-event", val: { instanceId: "other", name: "Ping", input: "1" } } },
        schedule(1, "A", null),
    ]);
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
