// Entities through the JavaScript API: what the shared protocol corpus
// (tests/protocol/entity_batches.json and entities.json, run by protocol.test.js) cannot
// show, namely how thrown errors and unencodable or undecodable values become failures, the
// entity context's API, and the TaskFailedError and locking errors orchestrations see.

import assert from "node:assert/strict";
import { test } from "node:test";

import { EntityId, runBatch } from "../src/entity.js";
import { Host, T0, callEntity, entityFailed, lock, lockGranted, outputOf, unlock } from "./helpers.js";

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

test("a failure is the thrown error's class name, its message and its stack", () => {
    class NegativeAmount extends Error {}
    const batch = run(
        function fails() {
            throw new NegativeAmount("cannot add a negative amount");
        },
        undefined,
        [op("add", -1)],
    );
    assert.equal(batch.results[0].tag, "err");
    const { errorType, message, details } = batch.results[0].val;
    assert.deepEqual([errorType, message], ["NegativeAmount", "cannot add a negative amount"]);
    assert.match(details, /fails/);
});

test("an undecodable state fails the operation with a DeserializationError and stays as it was", () => {
    const get = (context) => context.df.return(context.df.getState(() => 0));
    const batch = runBatch(get, id("counter", "k"), "{oops", [op("get")]);
    assert.deepEqual(results(batch), [{ err: "DeserializationError" }]);
    assert.equal(batch.state, "{oops");
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

