// The orchestration context (`context.df`): everything an orchestrator may do.

import { LockingRulesViolation, SerializationError, TaskFailedError, TaskKind } from "./errors.js";
import { EntityId, signalRecord, toEntityId, witEntityId } from "./entity.js";
import { uuidV5 } from "./guid.js";
import { compareUtf8 } from "./utf8.js";
import { decodeTolerant, encode } from "./json.js";
import { RetryOptions } from "./retry.js";
import { PendingKind } from "./state.js";
import { CallTask, CompletedTask, ExternalEventTask, LeafTask, Task, TimerTask, settleOutcome, timerAction } from "./task.js";
import { dateToMicros, microsToDate, toIso8601 } from "./time.js";

/**
 * What an orchestrator gets as `context.df`.
 *
 * Orchestrators run by replay: the code runs again from the start whenever the host has to
 * rebuild the orchestration, and must then make the same calls in the same order. So an
 * orchestrator reads time through `currentUtcDateTime`, makes GUIDs with `newGuid`, does
 * I/O only in activities, and yields tasks rather than awaiting promises. (Date.now() and
 * Math.random() are made deterministic by the host too, but the context's values are the
 * ones that mean something.)
 */
export class DurableOrchestrationContext {
    /** @param {import("./state.js").State} state */
    constructor(state) {
        this._state = state;
        /** Task.all and Task.any, as `context.df.Task.all([...])`. */
        this.Task = Task;
    }

    /** The id of this orchestration instance. */
    get instanceId() {
        return this._state.instanceId;
    }

    /** The instance id of the orchestration that started this one as a sub-orchestration. */
    get parentInstanceId() {
        return this._state.parentInstanceId;
    }

    /**
     * Whether the code is running again over history it already produced; useful to skip
     * logging that would otherwise repeat on every replay.
     */
    get isReplaying() {
        return this._state.isReplaying;
    }

    /** The orchestration's current time: when the current episode started, the same on every replay. */
    get currentUtcDateTime() {
        return microsToDate(this._state.now);
    }

    /**
     * The orchestration's input; absent input reads as null. Tolerant of double-encoded
     * JSON strings, as some clients send them.
     * @returns {any}
     */
    getInput() {
        return decodeTolerant(this._state.input);
    }

    /**
     * A GUID that is the same on every replay and different for every call: a version 5
     * UUID of the instance id, the current time and a call counter.
     * @param {string} [instanceId] the instance id to derive it from; this one's by default
     * @returns {string}
     */
    newGuid(instanceId) {
        const state = this._state;
        const name = `${instanceId ?? state.instanceId}_${toIso8601(state.now)}_${state.guidCounter}`;
        state.guidCounter++;
        return uuidV5(name);
    }

    /**
     * Schedules activity `name` with `input` and returns the task of its result.
     * @param {string} name
     * @param {any} [input]
     * @returns {Task}
     */
    callActivity(name, input) {
        return this._call(TaskKind.activity, name, input, undefined, (encoded) => ({
            tag: "schedule-task",
            val: { name, input: encoded },
        }));
    }

    /**
     * Like callActivity, retrying failed attempts as `retryOptions` say. The task fails with
     * the last attempt's error.
     * @param {string} name
     * @param {RetryOptions} retryOptions
     * @param {any} [input]
     * @returns {Task}
     */
    callActivityWithRetry(name, retryOptions, input) {
        return this._call(TaskKind.activity, name, input, checkRetry(retryOptions), (encoded) => ({
            tag: "schedule-task",
            val: { name, input: encoded },
        }));
    }

    /**
     * Starts orchestrator `name` as a sub-orchestration and returns the task of its output.
     * Without `instanceId` the host derives a deterministic id from this instance's.
     * @param {string} name
     * @param {any} [input]
     * @param {string} [instanceId]
     * @returns {Task}
     */
    callSubOrchestrator(name, input, instanceId) {
        return this._call(TaskKind.subOrchestration, name, input, undefined, subOrchestration(name, instanceId));
    }

    /**
     * Like callSubOrchestrator, retrying failed attempts as `retryOptions` say.
     * @param {string} name
     * @param {RetryOptions} retryOptions
     * @param {any} [input]
     * @param {string} [instanceId]
     * @returns {Task}
     */
    callSubOrchestratorWithRetry(name, retryOptions, input, instanceId) {
        return this._call(TaskKind.subOrchestration, name, input, checkRetry(retryOptions), subOrchestration(name, instanceId));
    }

    /**
     * Creates a durable timer that fires at `fireAt`; compute it from currentUtcDateTime,
     * never from the wall clock. The task completes with undefined; `cancel()` stops waiting.
     * @param {Date} fireAt
     * @returns {TimerTask}
     */
    createTimer(fireAt) {
        const state = this._state;
        const micros = dateToMicros(fireAt, "the timer's fire time");
        return new TimerTask(state, state.schedule(timerAction(micros), PendingKind.timer));
    }

    /**
     * Waits for an external event named `name` (case-insensitive); completes with its payload.
     *
     * Events raised before anyone waits for them are kept and handed out in arrival order;
     * of several waiters for one name, the oldest gets the next event.
     * @param {string} name
     * @returns {Task}
     */
    waitForExternalEvent(name) {
        if (typeof name !== "string") {
            throw new TypeError("an event name must be a string");
        }
        return new ExternalEventTask(this._state, name, decodeTolerant);
    }

    /**
     * Sends event `name` with `input` to orchestration `instanceId`, without waiting.
     * @param {string} instanceId
     * @param {string} name
     * @param {any} [input]
     */
    sendEvent(instanceId, name, input) {
        if (typeof instanceId !== "string" || typeof name !== "string") {
            throw new TypeError("sendEvent takes an instance id and an event name, both strings");
        }
        this._state.issue({ tag: "send-event", val: { instanceId, name, input: encode(input, "the event payload") } });
    }

    /**
     * Calls operation `operationName` of entity `entityId` and returns the task of its
     * result (what the operation passed to `context.df.return`; null if nothing).
     * @param {EntityId} entityId
     * @param {string} operationName
     * @param {any} [operationInput]
     * @returns {Task}
     */
    callEntity(entityId, operationName, operationInput) {
        const id = toEntityId(entityId);
        if (typeof operationName !== "string") {
            throw new TypeError("an operation name must be a string");
        }
        let input;
        try {
            input = encode(operationInput, "the input");
        } catch (error) {
            return new CompletedTask(false, new TaskFailedError(TaskKind.entity, operationName, failureOf(error), id));
        }
        const state = this._state;
        const sequence = state.schedule(
            { tag: "call-entity", val: { entity: witEntityId(id), operation: operationName, input } },
            PendingKind.entity,
        );
        return new LeafTask(state, sequence, (outcome) => settleOutcome(TaskKind.entity, operationName, outcome, id));
    }

    /**
     * Signals operation `operationName` of entity `entityId`: one-way, nothing to wait for.
     * The entity runs it after the operations this orchestration signalled or called before.
     * With `scheduledTime` (computed from currentUtcDateTime), delivered at that time.
     * @param {EntityId} entityId
     * @param {string} operationName
     * @param {any} [operationInput]
     * @param {Date} [scheduledTime]
     */
    signalEntity(entityId, operationName, operationInput, scheduledTime) {
        this._state.issue({ tag: "signal-entity", val: signalRecord(entityId, operationName, operationInput, scheduledTime) });
    }

    /**
     * Enters a critical section: locks the entities (taken in sorted order, each once) and
     * returns the task of an EntityLock, which completes once the host granted every lock.
     * While it is held, the locked entities run only the operations this orchestration
     * calls. Release it with `lock.release()`; one still held when the orchestrator returns
     * is released then. Critical sections do not nest: locking while holding (or waiting
     * for) a lock, or locking nothing, fails the task with LockingRulesViolation.
     * @param {...(EntityId | EntityId[])} entityIds
     * @returns {Task}
     */
    lockEntities(...entityIds) {
        const ids = entityIds.flat().map(toEntityId).sort(compareEntityIds);
        const unique = ids.filter((id, index) => index === 0 || compareEntityIds(ids[index - 1], id) !== 0);
        const state = this._state;
        if (unique.length === 0) {
            return lockingRules("a critical section must lock at least one entity");
        }
        if (state.lockHeld) {
            return lockingRules("critical sections do not nest: release the entity lock held before locking again");
        }
        state.lockHeld = true;
        const sequence = state.schedule({ tag: "lock-entities", val: unique.map(witEntityId) }, PendingKind.lock);
        return new LeafTask(state, sequence, () => [true, new EntityLock(state, unique)]);
    }

    /**
     * Sets the custom status that clients see while the orchestration runs; any value that
     * encodes as JSON.
     * @param {any} customStatusObject
     */
    setCustomStatus(customStatusObject) {
        this._state.customStatus = encode(customStatusObject, "the custom status");
    }

    /**
     * Restarts the orchestration with `input` once the orchestrator returns (whatever it
     * returns). External events that arrived but were never waited for are handed to the new
     * execution. Use it to keep the history of an eternal orchestration short.
     * @param {any} input
     */
    continueAsNew(input) {
        this._state.continueAsNew = encode(input, "the continue-as-new input");
    }

    /**
     * Not available on this host: durable HTTP calls would need the host to make them.
     * Call an activity that uses fetch (outbound HTTP goes to the hosts the app's
     * configuration allows).
     * @returns {never}
     */
    callHttp() {
        throw new TypeError("callHttp is not supported by the durable host: call an activity that uses fetch instead");
    }

    /**
     * @param {string} taskKind
     * @param {string} name
     * @param {unknown} input
     * @param {RetryOptions | undefined} retry
     * @param {(input: string) => object} action
     * @returns {Task}
     */
    _call(taskKind, name, input, retry, action) {
        if (typeof name !== "string") {
            throw new TypeError(`a ${taskKind} name must be a string`);
        }
        let encoded;
        try {
            encoded = encode(input, "the input");
        } catch (error) {
            return new CompletedTask(false, new TaskFailedError(taskKind, name, failureOf(error), undefined));
        }
        const pending = taskKind === TaskKind.subOrchestration ? PendingKind.subOrchestration : PendingKind.activity;
        return new CallTask(this._state, taskKind, name, pending, () => action(encoded), retry);
    }
}

/**
 * A critical section: locks on entities that an orchestration holds, from lockEntities.
 * `release()` ends it, issuing one unlock action, once.
 */
export class EntityLock {
    /**
     * @param {import("./state.js").State} state
     * @param {EntityId[]} entities
     */
    constructor(state, entities) {
        this._state = state;
        this._released = false;
        /** The locked entities, sorted and without duplicates. */
        this.entities = entities;
        state.heldLocks.add(this);
    }

    /** Releases the locks. */
    release() {
        this._unlock();
    }

    _unlock() {
        if (this._released) {
            return;
        }
        this._released = true;
        const state = this._state;
        state.heldLocks.delete(this);
        state.lockHeld = false;
        state.issue({ tag: "unlock-entities", val: this.entities.map(witEntityId) });
    }
}

function subOrchestration(name, instanceId) {
    if (instanceId !== undefined && instanceId !== null && typeof instanceId !== "string") {
        throw new TypeError("a sub-orchestration instance id must be a string");
    }
    return (encoded) => ({
        tag: "call-sub-orchestration",
        val: { name, instanceId: instanceId ?? undefined, input: encoded },
    });
}

function checkRetry(retryOptions) {
    if (!(retryOptions instanceof RetryOptions)) {
        throw new TypeError("retryOptions must be a df.RetryOptions");
    }
    return retryOptions;
}

function failureOf(error) {
    const serialization = error instanceof SerializationError;
    return { errorType: serialization ? error.name : "Error", message: String(error?.message ?? error), details: undefined };
}

function lockingRules(message) {
    const error = new LockingRulesViolation(message);
    return new CompletedTask(
        false,
        new TaskFailedError(TaskKind.entity, "lock_entities", { errorType: error.name, message, details: undefined }, undefined),
    );
}

/**
 * Orders ids by name, then key, comparing UTF-8 bytes as the Rust SDK and the host do.
 * @param {EntityId} a
 * @param {EntityId} b
 */
function compareEntityIds(a, b) {
    return compareUtf8(a.name, b.name) || compareUtf8(a.key, b.key);
}

export { EntityId };
