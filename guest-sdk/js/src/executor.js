// The per-orchestration runner: feeds history events into the shared state, drives the
// orchestrator's generator after each one and collects the actions it issues.
//
// Every task an orchestrator can yield resolves from the shared state alone, so polling
// the yielded task after each event drives the code as far as that event allows. The order
// in which tasks complete is therefore the order of their events in the history, on the
// first run and on every replay.

import { DurableOrchestrationContext } from "./context.js";
import { SerializationError, toFailure } from "./errors.js";
import { invocationLog } from "./log.js";
import { PendingKind, State } from "./state.js";
import { NOOP_WAKER, Task } from "./task.js";
import { toMicros } from "./time.js";

const NOT_STARTED = "not-started";
const RUNNING = "running";
// Returned (or failed) during the current apply; the final action is issued at its end, so
// that it carries events raised later in the same episode.
const RETURNED = "returned";
const DONE = "done";

/** One execution of one orchestrator for one instance. */
export class Executor {
    /**
     * An execution of orchestrator `name`. An unknown name is reported by the first apply
     * as a failure.
     * @param {import("./registry.js").Registry} registry
     * @param {string} name
     * @param {string} instanceId
     */
    constructor(registry, name, instanceId) {
        this._state = new State(name, instanceId);
        this._handler = registry.orchestrator(name);
        if (this._handler === undefined) {
            this._run = RETURNED;
            this._outcome = {
                ok: false,
                failure: { errorType: "OrchestratorNotFound", message: `this app has no orchestrator named '${name}'`, details: undefined },
            };
        } else {
            this._run = NOT_STARTED;
            this._outcome = undefined;
        }
        /** @type {Generator | undefined} */
        this._generator = undefined;
        /** The task the generator waits for. @type {Task | undefined} */
        this._waitingFor = undefined;
    }

    /**
     * Feeds the events of one episode and returns what it produced: the WIT episode-result.
     * @param {object[]} events WIT history events
     * @param {boolean} replaying
     * @returns {{actions: object[], customStatus: string | undefined}}
     */
    apply(events, replaying) {
        const state = this._state;
        state.isReplaying = replaying;
        for (const event of events) {
            if (this._run === DONE) {
                break;
            }
            if (this._handle(event)) {
                this._poll();
            }
        }
        const actions = state.takeActions();
        if (this._run === RETURNED) {
            this._run = DONE;
            const outcome = /** @type {any} */ (this._outcome);
            let kind;
            if (!outcome.ok) {
                kind = { tag: "fail", val: outcome.failure };
            } else if (state.continueAsNew !== undefined) {
                kind = { tag: "continue-as-new", val: { input: state.continueAsNew, carriedEvents: state.unconsumedEvents() } };
            } else {
                kind = { tag: "complete", val: outcome.output };
            }
            actions.push({ id: -1, kind });
        }
        return { actions, customStatus: state.customStatus };
    }

    /**
     * Applies one event to the state; returns whether the orchestrator may have progressed.
     * @param {any} event
     * @returns {boolean}
     */
    _handle(event) {
        const state = this._state;
        const { tag, val } = event.kind;
        switch (tag) {
            case "execution-started":
                if (this._run === NOT_STARTED) {
                    state.name = val.name;
                    state.instanceId = val.instanceId;
                    state.input = val.input ?? undefined;
                    state.parentInstanceId = val.parent?.instanceId ?? undefined;
                    this._start();
                }
                break;
            case "orchestrator-started":
                state.now = toMicros(event.timestamp);
                return false;
            case "task-completed":
                state.complete(val.taskScheduledId, PendingKind.activity, { ok: true, value: val.result ?? undefined });
                break;
            case "task-failed":
                state.complete(val.taskScheduledId, PendingKind.activity, { ok: false, failure: val.failure });
                break;
            case "sub-orchestration-instance-completed":
                state.complete(val.taskScheduledId, PendingKind.subOrchestration, { ok: true, value: val.result ?? undefined });
                break;
            case "sub-orchestration-instance-failed":
                state.complete(val.taskScheduledId, PendingKind.subOrchestration, { ok: false, failure: val.failure });
                break;
            case "timer-fired":
                state.complete(val.timerId, PendingKind.timer, { ok: true, value: undefined });
                break;
            case "entity-operation-completed":
                state.complete(val.taskScheduledId, PendingKind.entity, { ok: true, value: val.result ?? undefined });
                break;
            case "entity-operation-failed":
                state.complete(val.taskScheduledId, PendingKind.entity, { ok: false, failure: val.failure });
                break;
            case "entity-lock-granted":
                state.complete(val, PendingKind.lock, { ok: true, value: undefined });
                break;
            case "event-raised":
                state.raise(val.name, val.input ?? undefined);
                break;
            default:
                return false;
        }
        return true;
    }

    /** Calls the orchestrator function, which for a generator function runs nothing yet. */
    _start() {
        const state = this._state;
        const df = new DurableOrchestrationContext(state);
        const context = { df, functionName: state.name, invocationId: state.instanceId, ...invocationLog };
        this._run = RUNNING;
        let returned;
        try {
            returned = /** @type {Function} */ (this._handler).call(undefined, context);
        } catch (error) {
            this._finish({ ok: false, error });
            return;
        }
        if (isGenerator(returned)) {
            this._generator = returned;
        } else if (returned !== null && typeof returned === "object" && typeof returned.then === "function") {
            this._finish({
                ok: false,
                error: new TypeError(
                    `orchestrator '${state.name}' returned a promise: orchestrators are generator functions (function*) that yield tasks`,
                ),
            });
        } else {
            // A plain function: it returned its output at once.
            this._finish({ ok: true, value: returned });
        }
    }

    /** Runs the orchestrator as far as the tasks it waits for allow. */
    _poll() {
        if (this._run !== RUNNING || this._generator === undefined) {
            return;
        }
        const generator = this._generator;
        /** @type {{ok: boolean, value?: unknown, error?: unknown} | undefined} */
        let input = this._waitingFor === undefined ? { ok: true, value: undefined } : undefined;
        for (;;) {
            if (input === undefined) {
                const task = /** @type {Task} */ (this._waitingFor);
                if (!task._poll(NOOP_WAKER)) {
                    return;
                }
                input = task.isFaulted ? { ok: false, error: task._error } : { ok: true, value: task._value };
            }
            let step;
            try {
                step = input.ok ? generator.next(input.value) : generator.throw(input.error);
            } catch (error) {
                this._finish({ ok: false, error });
                return;
            }
            if (step.done) {
                this._finish({ ok: true, value: step.value });
                return;
            }
            if (step.value instanceof Task) {
                this._waitingFor = step.value;
                input = undefined;
            } else {
                input = {
                    ok: false,
                    error: new TypeError(
                        `orchestrator '${this._state.name}' yielded ${describe(step.value)}: an orchestrator may only yield tasks (context.df.callActivity(...), context.df.Task.all([...]), ...)`,
                    ),
                };
            }
        }
    }

    /**
     * Notes how the orchestrator ended and gives up everything it still waited for.
     * @param {{ok: boolean, value?: unknown, error?: unknown}} result
     */
    _finish(result) {
        const state = this._state;
        if (result.ok) {
            try {
                this._outcome = { ok: true, output: encodeOutput(result.value) };
            } catch (error) {
                this._outcome = { ok: false, failure: toFailure(error) };
            }
        } else {
            this._outcome = { ok: false, failure: toFailure(result.error) };
        }
        this._run = RETURNED;
        this._generator = undefined;
        this._waitingFor = undefined;
        // What the Rust SDK does when it drops the orchestrator's future: waiters give back
        // the events they were handed but never returned, and held locks are released.
        for (const id of [...state.waiters.keys()]) {
            state.unwait(id);
        }
        for (const lock of [...state.heldLocks]) {
            /** @type {any} */ (lock)._unlock();
        }
    }
}

function encodeOutput(value) {
    let text;
    try {
        text = JSON.stringify(value);
    } catch (error) {
        throw new SerializationError(`the orchestrator output could not be encoded as JSON: ${error}`);
    }
    return text ?? "null";
}

function isGenerator(value) {
    return (
        value !== null &&
        typeof value === "object" &&
        typeof value.next === "function" &&
        typeof value.throw === "function" &&
        typeof value[Symbol.iterator] === "function"
    );
}

function describe(value) {
    if (Array.isArray(value)) {
        return "an array (wrap it in context.df.Task.all)";
    }
    if (value !== null && typeof value === "object" && typeof value.then === "function") {
        return "a promise";
    }
    return typeof value === "object" ? String(value) : `a ${typeof value}`;
}
