// Canned histories for the replay tests: builders of WIT history events and actions (in
// the shapes componentize-js hands to and takes from the component: camelCase records,
// {tag, val} variants, BigInt timestamps), and a host in miniature.

import assert from "node:assert/strict";

import { Executor } from "../src/executor.js";
import { Registry } from "../src/registry.js";

/** 2023-11-14T22:13:20Z, in microseconds. */
export const T0 = 1_700_000_000_000_000;
export const SECOND = 1_000_000;

// ---- history events ----

export function event(tag, val) {
    return { eventId: -1, timestamp: BigInt(T0), kind: val === undefined ? { tag } : { tag, val } };
}

export function orchestratorStarted(time) {
    return { eventId: -1, timestamp: BigInt(time), kind: { tag: "orchestrator-started" } };
}

export function executionStarted(name, input, instanceId = "instance-1") {
    return event("execution-started", { name, instanceId, input, parent: undefined });
}

export function taskCompleted(id, result) {
    return event("task-completed", { taskScheduledId: id, result: JSON.stringify(result) });
}

export function failure(errorType, message, details) {
    return { errorType, message, details };
}

export function taskFailed(id, message) {
    return event("task-failed", { taskScheduledId: id, failure: failure("FailAlwaysError", message, "trace") });
}

export function timerFired(id, fireAt) {
    return event("timer-fired", { timerId: id, fireAt: BigInt(fireAt) });
}

export function eventRaised(name, input) {
    return event("event-raised", { name, input: JSON.stringify(input) });
}

export function entityFailed(id, errorType, message) {
    return event("entity-operation-failed", { taskScheduledId: id, failure: failure(errorType, message, "entity trace") });
}

export function lockGranted(id) {
    return event("entity-lock-granted", id);
}

// ---- actions ----

export function schedule(id, name, input) {
    return { id, kind: { tag: "schedule-task", val: { name, input: JSON.stringify(input) } } };
}

export function timer(id, fireAt) {
    return { id, kind: { tag: "create-timer", val: { fireAt: BigInt(fireAt) } } };
}

export function complete(output) {
    return { id: -1, kind: { tag: "complete", val: JSON.stringify(output) } };
}

export function witId(name, key) {
    return { name, key };
}

export function callEntity(id, name, key, operation, input) {
    return { id, kind: { tag: "call-entity", val: { entity: witId(name, key), operation, input: JSON.stringify(input) } } };
}

export function signalEntity(id, name, key, operation, input, at) {
    return {
        id,
        kind: {
            tag: "signal-entity",
            val: { entity: witId(name, key), operation, input: JSON.stringify(input), scheduledTime: at === undefined ? undefined : BigInt(at) },
        },
    };
}

export function lock(id, name, keys) {
    return { id, kind: { tag: "lock-entities", val: keys.map((key) => witId(name, key)) } };
}

export function unlock(id, name, keys) {
    return { id, kind: { tag: "unlock-entities", val: keys.map((key) => witId(name, key)) } };
}

/** The one fail action of an episode's result. */
export function failureOf(result) {
    assert.equal(result.actions.length, 1, `expected one fail action, got ${show(result.actions)}`);
    const [action] = result.actions;
    assert.equal(action.kind.tag, "fail", `expected a fail action, got ${show(result.actions)}`);
    assert.equal(action.id, -1);
    return action.kind.val;
}

/** The decoded output of the complete action that ends an episode's actions. */
export function outputOf(result) {
    const last = result.actions.at(-1);
    assert.equal(last?.kind.tag, "complete", `expected a completion, got ${show(result.actions)}`);
    return JSON.parse(last.kind.val);
}

export function show(value) {
    return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `${v}n` : v));
}

/** The history event a host records for an action that takes a sequence number. */
function createdEvent(action) {
    const { tag, val } = action.kind;
    const kinds = {
        "schedule-task": () => ({ tag: "task-scheduled", val: { name: val.name, input: val.input } }),
        "create-timer": () => ({ tag: "timer-created", val: { fireAt: val.fireAt } }),
        "call-sub-orchestration": () => ({
            tag: "sub-orchestration-instance-created",
            val: { name: val.name, instanceId: val.instanceId ?? "", input: val.input },
        }),
        "send-event": () => ({ tag: "event-sent", val: { ...val } }),
        "call-entity": () => ({ tag: "entity-operation-called", val: { ...val } }),
        "signal-entity": () => ({ tag: "entity-operation-signaled", val: { ...val } }),
        "lock-entities": () => ({ tag: "entity-lock-requested", val: [...val] }),
        "unlock-entities": () => ({ tag: "entity-unlock-sent", val: [...val] }),
    };
    const make = kinds[tag];
    return make === undefined ? undefined : { eventId: action.id, timestamp: BigInt(T0), kind: make() };
}

/**
 * A host in miniature: prepends orchestrator-started to every episode, records the events
 * the actions create (as a real host does) and replays the recorded history into a fresh
 * executor.
 */
export class Host {
    /**
     * @param {string} name
     * @param {Function} orchestrator
     */
    constructor(name, orchestrator) {
        this.registry = new Registry();
        this.registry.orchestration(name, orchestrator);
        this.name = name;
        this.executor = new Executor(this.registry, name, "instance-1");
        this.history = [];
        this.actions = [];
    }

    /** Creates the orchestration and runs its first episode; returns [host, result]. */
    static start(name, orchestrator, input) {
        const host = new Host(name, orchestrator);
        const first = host.episode(T0, [executionStarted(name, input === undefined ? undefined : JSON.stringify(input))]);
        return [host, first];
    }

    /** Runs one episode that starts at `time`. */
    episode(time, events) {
        const inbound = [orchestratorStarted(time), ...events];
        const result = this.executor.apply(inbound, false);
        for (const action of result.actions) {
            const created = createdEvent(action);
            if (created !== undefined) {
                inbound.push(created);
            }
        }
        inbound.push(event("orchestrator-completed"));
        this.history.push(inbound);
        this.actions.push(...result.actions);
        return result;
    }

    /** Replays the recorded history into a fresh executor, one apply per episode. */
    replayByEpisode() {
        const executor = new Executor(this.registry, this.name, "instance-1");
        return this.history.flatMap((episode) => executor.apply(episode, true).actions);
    }

    /** Replays the recorded history into a fresh executor in one apply. */
    replayAtOnce() {
        const executor = new Executor(this.registry, this.name, "instance-1");
        return executor.apply(this.history.flat(), true).actions;
    }

    assertReplayMatches() {
        assert.deepEqual(this.replayByEpisode(), this.actions);
        assert.deepEqual(this.replayAtOnce(), this.actions);
    }
}
