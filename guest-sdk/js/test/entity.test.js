// Entities: the batch runner behind the WIT `entity` export (rollback of failed
// operations, state creation and deletion, results, signals) and the entity actions of
// orchestrations (call, signal, critical sections).

import assert from "node:assert/strict";
import { test } from "node:test";

import { EntityId, runBatch } from "../src/entity.js";
import {
    Host,
    SECOND,
    T0,
    callEntity,
    complete,
    entityCompleted,
    entityFailed,
    failureOf,
    lock,
    lockGranted,
    outputOf,
    schedule,
    signalEntity,
    taskCompleted,
    unlock,
} from "./helpers.js";

class NegativeAmount extends Error {}
class UnknownOperation extends Error {}

/**
 * A counter that also signals the counter "echo" with what it adds, and fails on negative
 * amounts after changing its state and signalling.
 */
function counter(context) {
    const df = context.df;
    const current = df.getState(() => 0);
    switch (df.operationName.toLowerCase()) {
        case "add": {
            const amount = Number(df.getInput());
            if (!Number.isInteger(amount)) {
                throw new TypeError(`not an integer: ${df.getInput()}`);
            }
            df.setState(current + amount);
            df.signalEntity(new EntityId("Counter", "echo"), "add", amount);
            if (amount < 0) {
                throw new NegativeAmount("cannot add a negative amount");
            }
            break;
        }
        case "reset":
            df.setState(0);
            break;
        case "get":
            df.return(current);
            break;
        case "delete":
            df.destructOnExit();
            break;
        case "peek":
            df.return(df.hasState);
            break;
        default:
            throw new UnknownOperation(`no operation '${df.operationName}'`);
    }
}

const id = (name, key) => ({ name, key });
const op = (name, input) => ({ name, input: input === undefined ? undefined : JSON.stringify(input) });

function run(handler, state, operations) {
    return runBatch(handler, id("counter", "k"), state === undefined ? undefined : JSON.stringify(state), operations);
}

function results(batch) {
    return batch.results.map((result) =>
        result.tag === "ok" ? { ok: result.val === undefined ? undefined : JSON.parse(result.val) } : { err: result.val.errorType },
    );
}

function signal(key, operation, input, at) {
    return {
        tag: "signal-entity",
        val: { entity: id("counter", key), operation, input: JSON.stringify(input), scheduledTime: at === undefined ? undefined : BigInt(at) },
    };
}

test("a failing operation in the middle rolls back only its own state and signals", () => {
    const batch = run(counter, 10, [op("add", 1), op("add", -100), op("Add", 2), op("get")]);
    assert.deepEqual(results(batch), [{ ok: undefined }, { err: "NegativeAmount" }, { ok: undefined }, { ok: 13 }]);
    assert.equal(batch.state, "13");
    assert.deepEqual(batch.actions, [signal("echo", "add", 1), signal("echo", "add", 2)]);
});

test("failures carry type, message and details", () => {
    const batch = run(counter, undefined, [op("add", -1), op("frobnicate")]);
    assert.equal(batch.results[0].tag, "err");
    assert.equal(batch.results[0].val.message, "cannot add a negative amount");
    assert.match(batch.results[0].val.details, /counter/);
    assert.equal(batch.results[1].val.errorType, "UnknownOperation");
    assert.equal(batch.state, undefined, "the failed add created no state");
    assert.deepEqual(batch.actions, []);
});

test("destructOnExit ends the batch without state unless set again", () => {
    const deleted = run(counter, 5, [op("delete"), op("get")]);
    assert.deepEqual(results(deleted), [{ ok: undefined }, { ok: 0 }]);
    assert.equal(deleted.state, undefined);
    assert.equal(run(counter, 5, [op("delete"), op("add", 3)]).state, "3");
});

test("reading leaves a missing state missing, and setting the initial value creates it", () => {
    const read = run(counter, undefined, [op("peek"), op("get")]);
    assert.deepEqual(results(read), [{ ok: false }, { ok: 0 }]);
    assert.equal(read.state, undefined);
    const reset = run(counter, undefined, [op("reset"), op("peek")]);
    assert.deepEqual(results(reset), [{ ok: undefined }, { ok: true }]);
    assert.equal(reset.state, "0");
});

test("every operation gets its own result and sees the state of the previous ones", () => {
    const batch = run(counter, undefined, [op("get"), op("add", 4), op("get"), op("add", "6"), op("get")]);
    assert.deepEqual(results(batch), [{ ok: 0 }, { ok: undefined }, { ok: 4 }, { ok: undefined }, { ok: 10 }]);
    assert.equal(batch.state, "10");
});

test("an undecodable state fails the operation with a DeserializationError and stays as it was", () => {
    const batch = runBatch(counter, id("counter", "k"), "{oops", [op("get")]);
    assert.deepEqual(results(batch), [{ err: "DeserializationError" }]);
    assert.equal(batch.state, "{oops");
});

test("operation inputs decode double-encoded JSON", () => {
    const seen = [];
    const batch = runBatch((context) => seen.push(context.df.getInput()), id("probe", "k"), undefined, [
        op("a", JSON.stringify({ a: 1 })),
        op("b", "7"),
        op("c"),
    ]);
    assert.equal(batch.results.length, 3);
    assert.deepEqual(seen, [{ a: 1 }, "7", null]);
});

test("an unknown entity fails every operation and keeps the state", () => {
    const batch = runBatch(undefined, id("missing", "k"), "1", [op("get"), op("add", 1)]);
    assert.deepEqual(results(batch), [{ err: "EntityNotFound" }, { err: "EntityNotFound" }]);
    assert.equal(batch.state, "1");
    assert.deepEqual(batch.actions, []);
});

test("a value that cannot be encoded fails the operation", () => {
    function bad(context) {
        const state = context.df.getState(() => ({}));
        state.a = 1;
        context.df.setState(state);
        if (context.df.operationName === "bad_result") {
            context.df.return({ big: 1n });
        }
        if (context.df.operationName === "bad_state") {
            context.df.setState({ big: 2n });
        }
    }
    const batch = run(bad, undefined, [op("bad_result"), op("bad_state"), op("ok")]);
    assert.deepEqual(results(batch), [{ err: "SerializationError" }, { err: "SerializationError" }, { ok: undefined }]);
    assert.equal(batch.state, '{"a":1}');
});

test("an entity function that returns a promise fails the operation", () => {
    const batch = run(async () => {}, undefined, [op("x")]);
    assert.equal(batch.results[0].val.errorType, "TypeError");
    assert.match(batch.results[0].val.message, /must be synchronous/);
});

test("the context exposes id and operation and sends timed signals and orchestration starts", () => {
    function probe(context) {
        const df = context.df;
        const seen = df.getState(() => ({ ids: [] }));
        seen.ids.push(`${df.entityId}:${df.operationName}:${df.entityName}:${df.entityKey}:${df.isNewlyConstructed}`);
        df.setState(seen);
        df.signalEntity(new EntityId("COUNTER", "later"), "add", 1, new Date(2000));
        df.startNewOrchestration("Flow", df.entityKey);
        df.startNewOrchestration("Flow", undefined, "flow-1");
    }
    const batch = run(probe, undefined, [op("Look")]);
    assert.equal(batch.state, '{"ids":["@counter@k:Look:counter:k:true"]}');
    assert.deepEqual(batch.actions, [
        signal("later", "add", 1, 2_000_000),
        { tag: "start-orchestration", val: { name: "Flow", instanceId: undefined, input: '"k"' } },
        { tag: "start-orchestration", val: { name: "Flow", instanceId: "flow-1", input: "null" } },
    ]);
});

test("entity ids lowercase their name and print as @name@key", () => {
    assert.deepEqual(new EntityId("Counter", "k"), new EntityId("COUNTER", "k"));
    assert.notDeepEqual(new EntityId("counter", "k"), new EntityId("counter", "K"));
    assert.equal(String(new EntityId("Counter", "Key")), "@counter@Key");
    assert.throws(() => new EntityId("", "k"), TypeError);
});

// ---- orchestrations that use entities ----

/** Adds 5 to counter k, then reads it. */
function* addThenGet(context) {
    const counterId = new EntityId("Counter", "k");
    yield context.df.callEntity(counterId, "add", 5);
    return yield context.df.callEntity(counterId, "get");
}

/** Moves 10 from account b to account a inside a critical section if b has enough. */
function* transfer(context) {
    const from = new EntityId("Account", "b");
    const to = new EntityId("Account", "a");
    const held = yield context.df.lockEntities(from, to, from);
    assert.deepEqual(held.entities, [to, from]);
    const balance = yield context.df.callEntity(from, "balance");
    if (balance < 10) {
        return false;
    }
    yield context.df.callEntity(from, "withdraw", 10);
    yield context.df.callEntity(to, "deposit", 10);
    held.release();
    return true;
}

test("callEntity issues call-entity and completes with the operation result", () => {
    const [host, first] = Host.start("Caller", addThenGet);
    assert.deepEqual(first.actions, [callEntity(0, "counter", "k", "add", 5)]);
    assert.deepEqual(host.episode(T0 + SECOND, [entityCompleted(0, undefined)]).actions, [callEntity(1, "counter", "k", "get", null)]);
    assert.deepEqual(host.episode(T0 + 2 * SECOND, [entityCompleted(1, 5)]).actions, [complete(5)]);
    host.assertReplayMatches();
});

test("a failed entity operation is a TaskFailedError naming the operation and the entity", () => {
    function* catches(context) {
        try {
            yield context.df.callEntity(new EntityId("Account", "a"), "withdraw", 100);
            return "withdrawn";
        } catch (error) {
            return {
                kind: error.taskKind,
                task: error.taskName,
                entity: String(error.entityId),
                type: error.name,
                details: error.details,
                message: error.message,
            };
        }
    }
    const [host, first] = Host.start("Catches", catches);
    assert.deepEqual(first.actions, [callEntity(0, "account", "a", "withdraw", 100)]);
    const result = host.episode(T0, [entityFailed(0, "InsufficientFunds", "balance 0 < 100")]);
    assert.deepEqual(outputOf(result), {
        kind: "entity operation",
        task: "withdraw",
        entity: "@account@a",
        type: "InsufficientFunds",
        details: "entity trace",
        message: "operation 'withdraw' of entity '@account@a' failed: balance 0 < 100",
    });
    host.assertReplayMatches();

    const [caller] = Host.start("Caller", addThenGet);
    const failed = failureOf(caller.episode(T0, [entityFailed(0, "Boom", "add broke")]));
    assert.equal(failed.errorType, "Boom");
    assert.equal(failed.message, "operation 'add' of entity '@counter@k' failed: add broke");
    caller.assertReplayMatches();
});

test("signalEntity issues an action with a sequence number and waits for nothing", () => {
    function* signaller(context) {
        const counterId = new EntityId("Counter", "k");
        for (let i = 0; i < 2; i++) {
            context.df.signalEntity(counterId, "add", 1);
        }
        const later = new Date(context.df.currentUtcDateTime.getTime() + 10_000);
        context.df.signalEntity(new EntityId("counter", "other"), "reset", undefined, later);
        yield context.df.callActivity("A");
        context.df.signalEntity(counterId, "add", 1);
        return 3;
    }
    const [host, first] = Host.start("Signaller", signaller);
    assert.deepEqual(first.actions, [
        signalEntity(0, "counter", "k", "add", 1),
        signalEntity(1, "counter", "k", "add", 1),
        signalEntity(2, "counter", "other", "reset", null, T0 + 10 * SECOND),
        schedule(3, "A", null),
    ]);
    const last = host.episode(T0 + SECOND, [taskCompleted(3, null)]);
    assert.deepEqual(last.actions, [signalEntity(4, "counter", "k", "add", 1), complete(3)]);
    host.assertReplayMatches();
});

test("lockEntities sorts and dedups, waits for the grant, and release unlocks once", () => {
    const [host, first] = Host.start("Transfer", transfer);
    assert.deepEqual(first.actions, [lock(0, "account", ["a", "b"])]);
    const waiting = host.episode(T0 + SECOND, [entityCompleted(0, 50), lockGranted(7)]);
    assert.deepEqual(waiting.actions, [], "no grant for this lock yet; a stray completion is ignored");
    assert.deepEqual(host.episode(T0 + SECOND, [lockGranted(0)]).actions, [callEntity(1, "account", "b", "balance", null)]);
    assert.deepEqual(host.episode(T0 + 2 * SECOND, [entityCompleted(1, 50)]).actions, [callEntity(2, "account", "b", "withdraw", 10)]);
    assert.deepEqual(host.episode(T0 + 3 * SECOND, [entityCompleted(2, undefined)]).actions, [callEntity(3, "account", "a", "deposit", 10)]);
    const last = host.episode(T0 + 4 * SECOND, [entityCompleted(3, undefined)]);
    assert.deepEqual(last.actions, [unlock(4, "account", ["a", "b"]), complete(true)]);
    assert.equal(host.actions.filter((action) => action.kind.tag === "unlock-entities").length, 1);
    host.assertReplayMatches();
});

test("a lock still held is released when the orchestrator returns or fails", () => {
    const [host] = Host.start("Transfer", transfer);
    host.episode(T0, [lockGranted(0)]);
    const poor = host.episode(T0, [entityCompleted(1, 5)]);
    assert.deepEqual(poor.actions, [unlock(2, "account", ["a", "b"]), complete(false)]);
    host.assertReplayMatches();

    const [failing] = Host.start("Transfer", transfer);
    failing.episode(T0, [lockGranted(0)]);
    failing.episode(T0, [entityCompleted(1, 50)]);
    const failed = failing.episode(T0, [entityFailed(2, "InsufficientFunds", "too poor")]);
    assert.equal(failed.actions.length, 2);
    assert.deepEqual(failed.actions[0], unlock(3, "account", ["a", "b"]));
    assert.equal(failed.actions[1].kind.tag, "fail");
    assert.equal(failed.actions[1].kind.val.errorType, "InsufficientFunds");
    failing.assertReplayMatches();
});

test("locking nothing or locking inside a critical section violates the locking rules", () => {
    function* nested(context) {
        const errors = [];
        try {
            yield context.df.lockEntities([]);
        } catch (error) {
            errors.push(error.name);
        }
        const outer = yield context.df.lockEntities(new EntityId("Account", "a"));
        try {
            yield context.df.lockEntities([new EntityId("Account", "b")]);
        } catch (error) {
            errors.push(error.message);
        }
        outer.release();
        const again = yield context.df.lockEntities(new EntityId("Account", "b"));
        again.release();
        return errors;
    }
    const [host, first] = Host.start("Nested", nested);
    assert.deepEqual(first.actions, [lock(0, "account", ["a"])]);
    assert.deepEqual(host.episode(T0, [lockGranted(0)]).actions, [unlock(1, "account", ["a"]), lock(2, "account", ["b"])]);
    const last = host.episode(T0, [lockGranted(2)]);
    assert.deepEqual(last.actions[0], unlock(3, "account", ["b"]));
    const errors = outputOf(last);
    assert.equal(errors[0], "LockingRulesViolation");
    assert.match(errors[1], /do not nest/);
    host.assertReplayMatches();
});

test("replaying a history with every entity action issues identical actions", () => {
    function* everything(context) {
        const counterId = new EntityId("Counter", "k");
        context.df.signalEntity(counterId, "reset");
        const held = yield context.df.lockEntities(new EntityId("Account", "a"));
        const calls = context.df.Task.all([context.df.callEntity(counterId, "get"), context.df.callEntity(new EntityId("Account", "a"), "balance")]);
        const sum = (yield calls).reduce((a, b) => a + b, 0);
        held.release();
        context.df.signalEntity(counterId, "add", sum);
        return sum;
    }
    const [host, first] = Host.start("Everything", everything);
    assert.equal(first.actions.length, 2);
    assert.equal(host.episode(T0 + SECOND, [lockGranted(1)]).actions.length, 2);
    host.episode(T0 + 2 * SECOND, [entityCompleted(3, 7)]);
    const last = host.episode(T0 + 3 * SECOND, [entityCompleted(2, 3)]);
    assert.deepEqual(last.actions, [unlock(4, "account", ["a"]), signalEntity(5, "counter", "k", "add", 10), complete(10)]);
    host.assertReplayMatches();
});
