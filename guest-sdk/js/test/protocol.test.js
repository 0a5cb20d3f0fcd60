// The shared protocol corpus (tests/protocol/*.json, described in its README) run against
// this SDK's executor and entity batch runner: one test per case.
//
// Every case names one of the fixed test orchestrators or entities below; the Rust and
// Python SDKs implement the same ones under the same names, and run the same cases.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { EntityId, runBatch } from "../src/entity.js";
import { Executor } from "../src/executor.js";
import { Registry } from "../src/registry.js";
import { RetryOptions } from "../src/retry.js";

const CORPUS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "tests", "protocol");

// ---- the test orchestrators, by corpus name ----

const later = (df, seconds) => new Date(df.currentUtcDateTime.getTime() + seconds * 1000);

const orchestrators = {
    *sequence(context) {
        const out = [];
        for (const city of ["Tokyo", "Seattle", "London"]) {
            out.push(yield context.df.callActivity("SayHello", city));
        }
        return out;
    },
    *fan_out(context) {
        const n = context.df.getInput();
        const tasks = [];
        for (let i = 1; i <= n; i++) {
            tasks.push(context.df.callActivity("Square", i));
        }
        return (yield context.df.Task.all(tasks)).reduce((a, b) => a + b, 0);
    },
    *all_or_timeout(context) {
        const df = context.df;
        const both = df.Task.all([df.callActivity("Square", 2), df.callActivity("Square", 3)]);
        const timeout = df.createTimer(later(df, 864_000));
        const winner = yield df.Task.any([both, timeout]);
        return winner === both ? both.result : "timeout";
    },
    *all_after_gate(context) {
        const tasks = [context.df.callActivity("A"), context.df.callActivity("B")];
        yield context.df.callActivity("Gate");
        return yield context.df.Task.all(tasks);
    },
    *sender(context) {
        context.df.sendEvent("other", "Ping", 1);
        yield context.df.callActivity("A");
    },
    *child(context) {
        return yield context.df.callSubOrchestrator("Child", 5);
    },
    *status(context) {
        yield context.df.callActivity("A");
        context.df.setCustomStatus("working");
        yield context.df.callActivity("B");
    },
    *observe_replaying(context) {
        const seen = [context.df.isReplaying];
        yield context.df.callActivity("A");
        seen.push(context.df.isReplaying);
        return seen;
    },
    *approval(context) {
        const df = context.df;
        const timeout = df.createTimer(later(df, 60));
        const approved = df.waitForExternalEvent("Approval");
        const winner = yield df.Task.any([timeout, approved]);
        return winner === approved ? `approved=${JSON.stringify(approved.result)}` : "timeout";
    },
    *two_events(context) {
        yield context.df.callActivity("Prepare");
        const first = yield context.df.waitForExternalEvent("E");
        const second = yield context.df.waitForExternalEvent("e");
        return [first, second];
    },
    *two_waiters(context) {
        const first = context.df.waitForExternalEvent("E");
        const second = context.df.waitForExternalEvent("E");
        return yield context.df.Task.all([second, first]);
    },
    *race_then_wait(context) {
        const df = context.df;
        const timeout = df.createTimer(df.currentUtcDateTime);
        const raised = df.waitForExternalEvent("E");
        const winner = yield df.Task.any([timeout, raised]);
        if (winner !== timeout) {
            throw new Error("the timer should have won");
        }
        return yield df.waitForExternalEvent("E");
    },
    *first_in_list(context) {
        yield context.df.callActivity("Prepare");
        const a = context.df.waitForExternalEvent("A");
        const b = context.df.waitForExternalEvent("B");
        const winner = yield context.df.Task.any([b, a]);
        return winner.result;
    },
    *continue_counter(context) {
        const total = context.df.getInput();
        const add = yield context.df.waitForExternalEvent("Add");
        context.df.continueAsNew(total + add);
    },
    *carry_unyielded(context) {
        // Kept, never yielded: it is handed "Late" and gives it back when the run ends.
        context.df.waitForExternalEvent("Late");
        yield context.df.waitForExternalEvent("Go");
        context.df.continueAsNew(null);
    },
    *wait_event(context) {
        return yield context.df.waitForExternalEvent("E");
    },
    echo_input(context) {
        return context.df.getInput();
    },
    *retry(context) {
        const options = new RetryOptions(5000, 3);
        options.backoffCoefficient = 2;
        return yield context.df.callActivityWithRetry("Flaky", options, "x");
    },
    *retry_capped(context) {
        const options = new RetryOptions(1000, 5);
        options.backoffCoefficient = 2;
        options.maxRetryIntervalInMilliseconds = 3000;
        return yield context.df.callActivityWithRetry("Flaky", options);
    },
    *retry_timeout(context) {
        const options = new RetryOptions(5000, 10);
        options.retryTimeoutInMilliseconds = 8000;
        return yield context.df.callActivityWithRetry("Flaky", options);
    },
    *sub_retry(context) {
        return yield context.df.callSubOrchestratorWithRetry("Child", new RetryOptions(1000, 2), 5, "child-1");
    },
    *retry_awaited_later(context) {
        const retried = context.df.callActivityWithRetry("Flaky", new RetryOptions(1000, 2));
        yield context.df.callActivity("Other");
        return yield retried;
    },
    *timer(context) {
        yield context.df.createTimer(later(context.df, 10));
        yield context.df.createTimer(later(context.df, 10));
        return "done";
    },
    *guid(context) {
        const guids = [context.df.newGuid(), context.df.newGuid()];
        yield context.df.createTimer(context.df.currentUtcDateTime);
        guids.push(context.df.newGuid());
        return guids;
    },
    *mixed(context) {
        const df = context.df;
        const guid = df.newGuid();
        df.setCustomStatus({ step: 1 });
        const greeting = yield df.callActivity("SayHello", "Tokyo");
        df.sendEvent("other", "Ping", guid);
        const squares = yield df.Task.all([df.callActivity("Square", 2), df.callActivity("Square", 3)]);
        const sum = squares.reduce((a, b) => a + b, 0);
        yield df.createTimer(later(df, 30));
        const child = yield df.callSubOrchestrator("Child", sum, "child-1");
        const approved = yield df.waitForExternalEvent("Approval");
        df.setCustomStatus({ step: 2 });
        return [guid, greeting, sum, child, approved, df.newGuid()];
    },
    *fail_unhandled(context) {
        return yield context.df.callActivity("Fail");
    },
    *catch_activity(context) {
        try {
            return yield context.df.callActivity("Fail");
        } catch (error) {
            return { task: error.taskName, error_type: error.failure.errorType, message: error.failure.message, details: error.details };
        }
    },
    *entity_call(context) {
        const counter = new EntityId("Counter", "k");
        yield context.df.callEntity(counter, "add", 5);
        return yield context.df.callEntity(counter, "get");
    },
    *catch_entity(context) {
        try {
            yield context.df.callEntity(new EntityId("Account", "a"), "withdraw", 100);
            return "withdrawn";
        } catch (error) {
            return {
                task: error.taskName,
                entity: `@${error.entityId.name}@${error.entityId.key}`,
                error_type: error.failure.errorType,
                message: error.failure.message,
                details: error.details,
            };
        }
    },
    *signaller(context) {
        const df = context.df;
        const counter = new EntityId("Counter", "k");
        for (let i = 0; i < 2; i++) {
            df.signalEntity(counter, "add", 1);
        }
        df.signalEntity(new EntityId("counter", "other"), "reset", null, later(df, 10));
        yield df.callActivity("A");
        df.signalEntity(counter, "add", 1);
        return 3;
    },
    *transfer(context) {
        const df = context.df;
        const [source, target] = [new EntityId("Account", "b"), new EntityId("Account", "a")];
        const held = yield df.lockEntities([source, target, source]);
        const balance = yield df.callEntity(source, "balance");
        if (balance < 10) {
            return false;
        }
        yield df.callEntity(source, "withdraw", 10);
        yield df.callEntity(target, "deposit", 10);
        held.release();
        return true;
    },
    *nested_locks(context) {
        const df = context.df;
        const errors = [];
        try {
            yield df.lockEntities([]);
        } catch (error) {
            errors.push(error.name);
        }
        const outer = yield df.lockEntities(new EntityId("Account", "a"));
        try {
            yield df.lockEntities(new EntityId("Account", "b"));
        } catch (error) {
            errors.push(error.name);
        }
        outer.release();
        const again = yield df.lockEntities(new EntityId("Account", "b"));
        again.release();
        return errors;
    },
    *entity_mix(context) {
        const df = context.df;
        const counter = new EntityId("Counter", "k");
        df.signalEntity(counter, "reset");
        const held = yield df.lockEntities([new EntityId("Account", "a")]);
        const values = yield df.Task.all([df.callEntity(counter, "get"), df.callEntity(new EntityId("Account", "a"), "balance")]);
        held.release();
        const sum = values.reduce((a, b) => a + b, 0);
        df.signalEntity(counter, "add", sum);
        return sum;
    },
};

class NegativeAmount extends Error {}
class UnknownOperation extends Error {}

/** Signals the counter "echo" with what it adds, and fails on negative amounts after changing its state and signalling. */
function counter(context) {
    const df = context.df;
    const current = df.getState(() => 0);
    switch (df.operationName.toLowerCase()) {
        case "add": {
            const amount = Number(df.getInput());
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
        case "echo":
            df.return(df.getInput());
            break;
        default:
            throw new UnknownOperation(`no operation '${df.operationName}'`);
    }
}

function registry() {
    const registry = new Registry();
    for (const [name, handler] of Object.entries(orchestrators)) {
        registry.orchestration(name, handler);
    }
    registry.entity("counter", counter);
    return registry;
}

// ---- corpus JSON to WIT values (camelCase records, {tag, val} variants, BigInt timestamps) ----

/** Absent is undefined (`none`); anything else (null included) is its JSON text. */
const payload = (value, key) => (key in value ? JSON.stringify(value[key]) : undefined);
const failure = (value) => ({ errorType: value.failure["error-type"] ?? "", message: value.failure.message ?? "", details: value.failure.details ?? undefined });
const witEntity = (value) => ({ name: value.name, key: value.key });
const big = (value) => (value === undefined || value === null ? undefined : BigInt(value));

function eventKind(e) {
    const id = e["task-scheduled-id"];
    switch (e.kind) {
        case "orchestrator-started":
        case "orchestrator-completed":
            return { tag: e.kind };
        case "execution-started": {
            const p = e.parent;
            const parent = p === undefined ? undefined : { instanceId: p["instance-id"], name: p.name, taskScheduledId: p["task-scheduled-id"] };
            return { tag: e.kind, val: { name: e.name, instanceId: e["instance-id"], input: payload(e, "input"), parent } };
        }
        case "task-scheduled":
            return { tag: e.kind, val: { name: e.name, input: payload(e, "input") } };
        case "task-completed":
        case "sub-orchestration-instance-completed":
        case "entity-operation-completed":
            return { tag: e.kind, val: { taskScheduledId: id, result: payload(e, "result") } };
        case "task-failed":
        case "sub-orchestration-instance-failed":
        case "entity-operation-failed":
            return { tag: e.kind, val: { taskScheduledId: id, failure: failure(e) } };
        case "timer-created":
            return { tag: e.kind, val: { fireAt: big(e["fire-at"]) } };
        case "timer-fired":
            return { tag: e.kind, val: { timerId: e["timer-id"], fireAt: big(e["fire-at"]) } };
        case "event-raised":
            return { tag: e.kind, val: { name: e.name, input: payload(e, "input") } };
        case "event-sent":
        case "sub-orchestration-instance-created":
            return { tag: e.kind, val: { instanceId: e["instance-id"], name: e.name, input: payload(e, "input") } };
        case "entity-operation-called":
            return { tag: e.kind, val: { entity: witEntity(e.entity), operation: e.operation, input: payload(e, "input") } };
        case "entity-operation-signaled":
            return { tag: e.kind, val: { entity: witEntity(e.entity), operation: e.operation, input: payload(e, "input"), scheduledTime: big(e["scheduled-time"]) } };
        case "entity-lock-requested":
        case "entity-unlock-sent":
            return { tag: e.kind, val: e.entities.map(witEntity) };
        case "entity-lock-granted":
            return { tag: e.kind, val: id };
        case "execution-completed":
            return { tag: e.kind, val: { status: e.status, result: payload(e, "result"), failure: e.failure === undefined ? undefined : failure(e) } };
        case "continue-as-new":
            return { tag: e.kind, val: payload(e, "input") };
        default:
            throw new Error(`unknown event kind '${e.kind}'`);
    }
}

/** The events of one episode; an event without a timestamp has the episode's. */
function historyEvents(events) {
    const time = events[0]?.timestamp ?? 0;
    return events.map((e) => ({ eventId: e["event-id"] ?? -1, timestamp: BigInt(e.timestamp ?? time), kind: eventKind(e) }));
}

// ---- WIT values to corpus JSON ----

const value = (text) => (text === undefined || text === null ? null : JSON.parse(text));
const num = (v) => (v === undefined || v === null ? null : Number(v));
const failureJson = (f) => ({ "error-type": f.errorType, message: f.message, details: f.details ?? null });
const entityJson = (e) => ({ name: e.name, key: e.key });
const signalJson = (v) => ({ kind: "signal-entity", entity: entityJson(v.entity), operation: v.operation, input: value(v.input), "scheduled-time": num(v.scheduledTime) });

function actionJson(action) {
    const { tag, val } = action.kind;
    const bodies = {
        "schedule-task": () => ({ name: val.name, input: value(val.input) }),
        "create-timer": () => ({ "fire-at": num(val.fireAt) }),
        "call-sub-orchestration": () => ({ name: val.name, "instance-id": val.instanceId ?? null, input: value(val.input) }),
        "send-event": () => ({ "instance-id": val.instanceId, name: val.name, input: value(val.input) }),
        complete: () => ({ output: value(val) }),
        fail: () => ({ failure: failureJson(val) }),
        "continue-as-new": () => ({ input: value(val.input), "carried-events": val.carriedEvents.map((c) => ({ name: c.name, input: value(c.input) })) }),
        "call-entity": () => ({ entity: entityJson(val.entity), operation: val.operation, input: value(val.input) }),
        "signal-entity": () => signalJson(val),
        "lock-entities": () => ({ entities: val.map(entityJson) }),
        "unlock-entities": () => ({ entities: val.map(entityJson) }),
    };
    return { ...bodies[tag](), id: action.id, kind: tag };
}

function entityActionJson(action) {
    if (action.tag === "signal-entity") {
        return signalJson(action.val);
    }
    const v = action.val;
    return { kind: "start-orchestration", name: v.name, "instance-id": v.instanceId ?? null, input: value(v.input) };
}

function batchJson(batch) {
    return {
        results: batch.results.map((r) => (r.tag === "ok" ? { ok: value(r.val) } : { err: failureJson(r.val) })),
        state: value(batch.state),
        actions: batch.actions.map(entityActionJson),
    };
}

// ---- comparison ----

/** Drops every object member whose value is null: `none`, `some("null")` and an absent member compare equal. */
function normalize(v) {
    if (Array.isArray(v)) {
        return v.map(normalize);
    }
    if (v !== null && typeof v === "object") {
        return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null && x !== undefined).map(([k, x]) => [k, normalize(x)]));
    }
    return v;
}

/** Equal, except that a `failure` or `err` object is checked only for the members the expectation names, where `m-contains: [..]` asks that member `m` contain every string listed. */
function matches(expected, actual) {
    if (Array.isArray(expected) || Array.isArray(actual)) {
        return Array.isArray(expected) && Array.isArray(actual) && expected.length === actual.length && expected.every((w, i) => matches(w, actual[i]));
    }
    if (expected !== null && typeof expected === "object") {
        if (actual === null || typeof actual !== "object") {
            return false;
        }
        const keys = Object.keys(expected);
        if (keys.length !== Object.keys(actual).length) {
            return false;
        }
        return keys.every((key) => key in actual && (key === "failure" || key === "err" ? matchesLoosely : matches)(expected[key], actual[key]));
    }
    return expected === actual;
}

function matchesLoosely(expected, actual) {
    if (expected === null || typeof expected !== "object" || actual === null || typeof actual !== "object") {
        return false;
    }
    return Object.entries(expected).every(([key, want]) => {
        if (key.endsWith("-contains")) {
            const text = actual[key.slice(0, -"-contains".length)] ?? "";
            return want.every((part) => text.includes(part));
        }
        return key in actual && matches(want, actual[key]);
    });
}

// ---- running cases ----

/**
 * Runs the episodes of a case in one fresh executor; `replay` forces `replaying = true` and
 * feeds each episode's recorded action events after its events, as a replay of the stored
 * history would (the guest must ignore them).
 */
function runOrchestration(reg, c, replay) {
    const executor = new Executor(reg, c.orchestrator, c["instance-id"] ?? "instance-1");
    const problems = [];
    const pass = replay ? "replay" : "live";
    c.episodes.forEach((episode, index) => {
        const raw = [...episode.events];
        if (replay && episode.recorded !== undefined) {
            const time = raw[0]?.timestamp ?? 0;
            raw.push(...episode.recorded.map((e) => ({ timestamp: time, ...e })), { kind: "orchestrator-completed", timestamp: time });
        }
        const result = executor.apply(historyEvents(raw), replay || (episode.replaying ?? false));
        const actual = result.actions.map((a) => normalize(actionJson(a)));
        const expected = normalize(episode.actions);
        if (!matches(expected, actual)) {
            problems.push(`${pass} episode ${index}: expected actions ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
        }
        if ("custom-status" in episode) {
            const got = value(result.customStatus);
            if (JSON.stringify(normalize([episode["custom-status"]])) !== JSON.stringify(normalize([got]))) {
                problems.push(`${pass} episode ${index}: expected custom status ${JSON.stringify(episode["custom-status"])}, got ${JSON.stringify(got)}`);
            }
        }
    });
    return problems;
}

function runBatchCase(reg, c) {
    const operations = c.operations.map((op) => ({ name: op.name, input: payload(op, "input") }));
    const state = c.state === undefined || c.state === null ? undefined : JSON.stringify(c.state);
    const batch = runBatch(reg.entityHandler(c.id.name), witEntity(c.id), state, operations);
    const actual = normalize(batchJson(batch));
    const expected = normalize(c.expect);
    return matches(expected, actual) ? [] : [`expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

function runCase(c) {
    const reg = registry();
    if ("entity" in c) {
        return runBatchCase(reg, c);
    }
    if ((c.mode ?? "live") === "replay") {
        return runOrchestration(reg, c, true);
    }
    const problems = runOrchestration(reg, c, false);
    if (c["replay-check"] !== false) {
        problems.push(...runOrchestration(reg, c, true));
    }
    return problems;
}

const cases = readdirSync(CORPUS)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .flatMap((file) => JSON.parse(readFileSync(join(CORPUS, file), "utf8")).cases.map((c) => [file, c]));

test("the protocol corpus is there and its case names are unique", () => {
    assert.ok(cases.length >= 50, `only ${cases.length} cases`);
    assert.equal(new Set(cases.map(([, c]) => c.name)).size, cases.length);
});

for (const [file, c] of cases) {
    test(`protocol ${file}: ${c.name}`, () => {
        const problems = runCase(c);
        assert.deepEqual(problems, [], problems.join("\n"));
    });
}
