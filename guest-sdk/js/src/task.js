// Durable tasks: what an orchestrator yields. Task.all and Task.any combine them.
//
// A task moves only when polled, the way a Rust future does: the executor polls the task
// the orchestrator is waiting on after every history event, and a combinator polls the
// children it holds. Outcomes arrive eagerly (into the shared State), but a task observes
// its outcome, and a retrying call issues its next timer or attempt, only when polled.
// Combinators poll all their children the first time and afterwards only the children
// woken since, in the order they were woken, exactly like the Rust SDK's task_all and
// task_any; that is what makes the order of actions and the first failure reported the
// same as there.

import { TaskFailedError, TaskKind } from "./errors.js";
import { PendingKind } from "./state.js";
import { decode } from "./json.js";
import { retryAt } from "./retry.js";
import { toTimestamp } from "./time.js";

const DESERIALIZATION_ERROR = "DeserializationError";

const PENDING = 0;
const SUCCEEDED = 1;
const FAILED = 2;

/** @type {() => void} */
export const NOOP_WAKER = () => {};

/**
 * The pending result of an activity, sub-orchestration, entity call, durable timer, entity
 * lock or external event. Yield it from an orchestrator to get its value (or have its error
 * thrown), or combine several with `context.df.Task.all` and `context.df.Task.any`.
 *
 * The action behind a task (scheduling the activity, creating the timer) is issued when the
 * task is created, not when it is yielded, so tasks created before any of them is yielded
 * run in parallel.
 */
export class Task {
    constructor() {
        this._status = PENDING;
        /** @type {unknown} */
        this._value = undefined;
        /** @type {unknown} */
        this._error = undefined;
    }

    /** Whether the orchestrator has seen this task complete, successfully or not. */
    get isCompleted() {
        return this._status !== PENDING;
    }

    /** Whether the task completed with an error. */
    get isFaulted() {
        return this._status === FAILED;
    }

    /** The task's value once it completed successfully; undefined otherwise. */
    get result() {
        return this._status === SUCCEEDED ? this._value : undefined;
    }

    /** The task's error once it failed; undefined otherwise. */
    get error() {
        return this._status === FAILED ? this._error : undefined;
    }

    /**
     * A task that completes with every value, in the order of `tasks`, once all complete.
     * Fails fast: the first task to fail (in completion order) fails it with its error, and
     * the others are given up (an event one of them was handed goes to the next waiter).
     * With no tasks it completes at once with [].
     * @param {Task[]} tasks
     * @returns {Task}
     */
    static all(tasks) {
        return new WhenAllTask(children(tasks, "Task.all"));
    }

    /**
     * A task that completes with the first of `tasks` to complete, successfully or not (the
     * Task itself: compare it, read its `result`, or yield it to get the value or the
     * error). The others are given up. Of tasks that complete at the same time, the first
     * in the list wins. With no tasks it never completes.
     * @param {Task[]} tasks
     * @returns {Task}
     */
    static any(tasks) {
        return new WhenAnyTask(children(tasks, "Task.any"));
    }

    /**
     * Moves the task as far as it can go; returns whether it completed.
     * @param {() => void} waker called when the task may progress again
     * @returns {boolean}
     */
    _poll(waker) {
        if (this._status !== PENDING) {
            return true;
        }
        return this._advance(waker);
    }

    /**
     * The task-specific part of {@link _poll}, only called while pending.
     * @param {() => void} _waker
     * @returns {boolean}
     */
    _advance(_waker) {
        return false;
    }

    /** Gives the task up: it stops waiting until it is polled again. */
    _detach() {}

    /** @param {unknown} value */
    _succeed(value) {
        this._status = SUCCEEDED;
        this._value = value;
        return true;
    }

    /** @param {unknown} error */
    _fail(error) {
        this._status = FAILED;
        this._error = error;
        return true;
    }
}

function children(tasks, what) {
    if (tasks === null || typeof tasks !== "object" || typeof tasks[Symbol.iterator] !== "function") {
        throw new TypeError(`${what} takes an array of tasks`);
    }
    const list = [...tasks];
    list.forEach((task, index) => {
        if (!(task instanceof Task)) {
            throw new TypeError(`${what}: element ${index} is not a task (${String(task)})`);
        }
    });
    return list;
}

/** A task that is complete from the start (say, a call whose input could not be encoded). */
export class CompletedTask extends Task {
    /**
     * @param {boolean} ok
     * @param {unknown} valueOrError
     */
    constructor(ok, valueOrError) {
        super();
        if (ok) {
            this._succeed(valueOrError);
        } else {
            this._fail(valueOrError);
        }
    }
}

/**
 * Waits for the outcome of one action (timer, entity call, lock) and maps it to a value or
 * an error.
 */
export class LeafTask extends Task {
    /**
     * @param {import("./state.js").State} state
     * @param {number} id the action's sequence number
     * @param {(outcome: import("./state.js").Outcome) => [boolean, unknown]} settle
     */
    constructor(state, id, settle) {
        super();
        this._state = state;
        this._id = id;
        this._settle = settle;
    }

    _advance(waker) {
        const outcome = this._state.takeOutcome(this._id, waker);
        if (outcome === undefined) {
            return false;
        }
        const [ok, value] = this._settle(outcome);
        return ok ? this._succeed(value) : this._fail(value);
    }

    _detach() {
        this._state.forgetWaker(this._id);
    }
}

/** A durable timer; completes with undefined when it fires. */
export class TimerTask extends LeafTask {
    /**
     * @param {import("./state.js").State} state
     * @param {number} id
     */
    constructor(state, id) {
        super(state, id, () => [true, undefined]);
        this._canceled = false;
    }

    /** Whether {@link cancel} was called before the timer fired. */
    get isCanceled() {
        return this._canceled;
    }

    /**
     * Stops waiting for the timer: it never completes. The host still fires it, which costs
     * nothing but an event in the history.
     */
    cancel() {
        if (this._status === PENDING) {
            this._canceled = true;
            this._detach();
        }
    }

    _advance(waker) {
        return this._canceled ? false : super._advance(waker);
    }
}

/**
 * An activity or sub-orchestration call, retried with durable timers as its RetryOptions
 * say (the same loop as the Rust SDK: after a failed attempt the retry time is computed
 * from the orchestration's current time when the failure is observed).
 */
export class CallTask extends Task {
    /**
     * @param {import("./state.js").State} state
     * @param {string} taskKind
     * @param {string} name
     * @param {string} pendingKind
     * @param {() => object} action makes the action of one attempt
     * @param {import("./retry.js").RetryOptions | undefined} retry
     */
    constructor(state, taskKind, name, pendingKind, action, retry) {
        super();
        this._state = state;
        this._taskKind = taskKind;
        this._name = name;
        this._pendingKind = pendingKind;
        this._action = action;
        this._retry = retry;
        this._attempt = state.schedule(action(), pendingKind);
        this._attempts = 1;
        this._firstAttemptAt = state.now;
        /** The sequence number of the retry timer being waited for, if any. @type {number | undefined} */
        this._timer = undefined;
    }

    _advance(waker) {
        const state = this._state;
        for (;;) {
            if (this._timer !== undefined) {
                if (state.takeOutcome(this._timer, waker) === undefined) {
                    return false;
                }
                this._timer = undefined;
                this._attempt = state.schedule(this._action(), this._pendingKind);
                this._attempts++;
            }
            const outcome = state.takeOutcome(this._attempt, waker);
            if (outcome === undefined) {
                return false;
            }
            const at =
                outcome.ok || this._retry === undefined
                    ? undefined
                    : retryAt(this._retry, this._attempts, this._firstAttemptAt, state.now);
            if (at === undefined) {
                const [ok, value] = settleOutcome(this._taskKind, this._name, outcome, undefined);
                return ok ? this._succeed(value) : this._fail(value);
            }
            this._timer = state.schedule(timerAction(at), PendingKind.timer);
        }
    }

    _detach() {
        this._state.forgetWaker(this._timer ?? this._attempt);
    }
}

/**
 * The value or error of a completed task: its result decoded as JSON, or its failure as a
 * TaskFailedError.
 * @param {string} taskKind
 * @param {string} name
 * @param {import("./state.js").Outcome} outcome
 * @param {{name: string, key: string} | undefined} entityId
 * @returns {[boolean, unknown]}
 */
export function settleOutcome(taskKind, name, outcome, entityId) {
    if (!outcome.ok) {
        return [false, new TaskFailedError(taskKind, name, outcome.failure, entityId)];
    }
    try {
        return [true, decode(outcome.value)];
    } catch (error) {
        const failure = { errorType: DESERIALIZATION_ERROR, message: `the result could not be decoded: ${error}` };
        return [false, new TaskFailedError(taskKind, name, failure, entityId)];
    }
}

/**
 * The WIT action that creates a durable timer.
 * @param {number} fireAtMicros
 */
export function timerAction(fireAtMicros) {
    return { tag: "create-timer", val: { fireAt: toTimestamp(fireAtMicros) } };
}

/** Waits for an external event; completes with its payload. */
export class ExternalEventTask extends Task {
    /**
     * @param {import("./state.js").State} state
     * @param {string} name
     * @param {(input: string | undefined) => unknown} decodePayload
     */
    constructor(state, name, decodePayload) {
        super();
        this._state = state;
        this._name = name;
        this._decodePayload = decodePayload;
        /** @type {number | undefined} */
        this._waiter = state.wait(name);
    }

    _advance(waker) {
        if (this._waiter === undefined) {
            // Given up earlier and yielded again: wait anew, as the newest waiter.
            this._waiter = this._state.wait(this._name);
        }
        const event = this._state.takeDelivered(this._waiter, waker);
        if (event === undefined) {
            return false;
        }
        this._waiter = undefined;
        let value;
        try {
            value = this._decodePayload(event.input);
        } catch (error) {
            const failure = { errorType: DESERIALIZATION_ERROR, message: `the payload could not be decoded: ${error}` };
            return this._fail(new TaskFailedError(TaskKind.externalEvent, this._name, failure, undefined));
        }
        return this._succeed(value);
    }

    _detach() {
        if (this._status === PENDING && this._waiter !== undefined) {
            this._state.unwait(this._waiter);
            this._waiter = undefined;
        }
    }
}

/**
 * Which children of a combinator may have progressed since its last poll: each child gets
 * a waker of its own that records its index and wakes the combinator's parent.
 */
class Readiness {
    /** @param {number} count */
    constructor(count) {
        /** @type {number[]} */
        this.woken = [];
        /** @type {(() => void) | null} */
        this.parent = null;
        this.polledOnce = false;
        this.wakers = Array.from({ length: count }, (_, index) => () => {
            this.woken.push(index);
            this.parent?.();
        });
    }

    /**
     * The children to poll now: all of them the first time, then those woken since, in the
     * order they were woken.
     * @param {() => void} waker the combinator's own waker
     * @returns {number[]}
     */
    toPoll(waker) {
        this.parent = waker;
        const woken = this.woken;
        this.woken = [];
        if (this.polledOnce) {
            return woken;
        }
        this.polledOnce = true;
        return this.wakers.map((_, index) => index);
    }

    /** Forgets the wake-ups: the next poll polls every child again. */
    reset() {
        this.woken = [];
        this.parent = null;
        this.polledOnce = false;
    }
}

/** The task of {@link Task.all}. */
export class WhenAllTask extends Task {
    /** @param {Task[]} tasks */
    constructor(tasks) {
        super();
        this._tasks = tasks;
        this._done = tasks.map(() => false);
        this._remaining = tasks.length;
        this._readiness = new Readiness(tasks.length);
    }

    _advance(waker) {
        for (const index of this._readiness.toPoll(waker)) {
            if (this._done[index]) {
                continue;
            }
            const task = this._tasks[index];
            if (!task._poll(this._readiness.wakers[index])) {
                continue;
            }
            if (task._status === FAILED) {
                this._giveUpOthers();
                return this._fail(task._error);
            }
            this._done[index] = true;
            this._remaining--;
        }
        if (this._remaining > 0) {
            return false;
        }
        return this._succeed(this._tasks.map((task) => task._value));
    }

    _giveUpOthers() {
        this._tasks.forEach((task, index) => {
            if (!this._done[index] && task._status === PENDING) {
                task._detach();
            }
        });
    }

    _detach() {
        this._giveUpOthers();
        this._readiness.reset();
    }
}

/** The task of {@link Task.any}. */
export class WhenAnyTask extends Task {
    /** @param {Task[]} tasks */
    constructor(tasks) {
        super();
        this._tasks = tasks;
        this._readiness = new Readiness(tasks.length);
    }

    _advance(waker) {
        // Of tasks woken by the same event, the first in the list wins.
        const candidates = [...new Set(this._readiness.toPoll(waker))].sort((a, b) => a - b);
        for (const index of candidates) {
            const task = this._tasks[index];
            if (task._poll(this._readiness.wakers[index])) {
                // Giving the losers up now unregisters their waiters, so an event that
                // arrives later is buffered for the next wait instead of lost.
                this._tasks.forEach((other) => {
                    if (other !== task && other._status === PENDING) {
                        other._detach();
                    }
                });
                return this._succeed(task);
            }
        }
        return false;
    }

    _detach() {
        for (const task of this._tasks) {
            if (task._status === PENDING) {
                task._detach();
            }
        }
        this._readiness.reset();
    }
}
