// The state one orchestration shares between its context, its tasks and the executor that
// feeds it history events.
//
// Invariants (the same as the Rust SDK's):
// 1. Every action that takes a sequence number gets it when the task is created, from one
//    counter starting at 0; the action is recorded at the same moment.
// 2. Pending tasks, event waiters and buffered events are kept in the order they were
//    created or received (Maps iterate in insertion order; ids only grow), so every
//    "first" or "oldest" below is the one created or received first.
// 3. A waiter that is given up before it returned its event (the loser of Task.any, the
//    rest of a failed Task.all, anything still waiting when the orchestrator returns)
//    unregisters itself; an event it was handed goes back to the next waiter or the buffer.
// 4. Nothing here reads a clock or a random source: time is the current episode's
//    orchestrator-started timestamp.

/**
 * The kind of action a pending sequence number belongs to; a completion of another kind
 * for that number is ignored.
 */
export const PendingKind = Object.freeze({
    activity: "activity",
    subOrchestration: "sub-orchestration",
    timer: "timer",
    entity: "entity",
    lock: "lock",
});

/**
 * @typedef {{ok: true, value: string | undefined} | {ok: false, failure: {errorType: string, message: string, details?: string}}} Outcome
 * @typedef {{arrival: number, name: string, input: string | undefined}} RaisedEvent
 * @typedef {() => void} Waker
 */

export class State {
    /**
     * @param {string} name
     * @param {string} instanceId
     */
    constructor(name, instanceId) {
        this.name = name;
        this.instanceId = instanceId;
        /** @type {string | undefined} */
        this.input = undefined;
        /** @type {string | undefined} */
        this.parentInstanceId = undefined;
        this.isReplaying = false;
        /** The timestamp of the current episode's orchestrator-started event, in microseconds. */
        this.now = 0;
        /** @type {string | undefined} */
        this.customStatus = undefined;
        /** The encoded input once the orchestrator called continueAsNew. @type {string | undefined} */
        this.continueAsNew = undefined;
        this.guidCounter = 0;
        /** Whether the orchestration requested entity locks it has not released yet. */
        this.lockHeld = false;
        /** Granted locks not released yet, released when the orchestrator returns. @type {Set<{_unlock(): void}>} */
        this.heldLocks = new Set();
        this.nextSequence = 0;
        /** @type {{id: number, kind: object}[]} */
        this.actions = [];
        /** @type {Map<number, {kind: string, outcome: Outcome | undefined, waker: Waker | null}>} */
        this.pending = new Map();
        this.nextWaiter = 0;
        /** @type {Map<number, {key: string, delivered: RaisedEvent | undefined, waker: Waker | null}>} */
        this.waiters = new Map();
        this.nextArrival = 0;
        /** Raised events no waiter has taken, by arrival. @type {RaisedEvent[]} */
        this.buffered = [];
    }

    /**
     * Records an action that takes a sequence number and returns that number.
     * @param {object} kind the WIT action-kind variant
     * @returns {number}
     */
    issue(kind) {
        const id = this.nextSequence++;
        this.actions.push({ id, kind });
        return id;
    }

    /**
     * Records an action whose completion a task waits for; returns its sequence number.
     * @param {object} kind
     * @param {string} pendingKind
     * @returns {number}
     */
    schedule(kind, pendingKind) {
        const id = this.issue(kind);
        this.pending.set(id, { kind: pendingKind, outcome: undefined, waker: null });
        return id;
    }

    /**
     * Hands an outcome to the pending task `id`; ignored when no task of that kind waits for it.
     * @param {number} id
     * @param {string} pendingKind
     * @param {Outcome} outcome
     */
    complete(id, pendingKind, outcome) {
        const task = this.pending.get(id);
        if (task !== undefined && task.kind === pendingKind && task.outcome === undefined) {
            task.outcome = outcome;
            wake(task);
        }
    }

    /**
     * Takes the outcome of task `id` if it arrived; else remembers who to wake when it does.
     * @param {number} id
     * @param {Waker} waker
     * @returns {Outcome | undefined}
     */
    takeOutcome(id, waker) {
        const task = this.pending.get(id);
        if (task === undefined) {
            return undefined;
        }
        if (task.outcome !== undefined) {
            this.pending.delete(id);
            return task.outcome;
        }
        task.waker = waker;
        return undefined;
    }

    /**
     * Stops waking anyone for task `id` (its waiter gave up; a late outcome is kept).
     * @param {number} id
     */
    forgetWaker(id) {
        const task = this.pending.get(id);
        if (task !== undefined) {
            task.waker = null;
        }
    }

    /**
     * An external event arrived.
     * @param {string} name
     * @param {string | undefined} input
     */
    raise(name, input) {
        this.dispatch({ arrival: this.nextArrival++, name, input });
    }

    /**
     * Gives the event to the oldest waiter for its name that has none yet, or buffers it.
     * @param {RaisedEvent} event
     */
    dispatch(event) {
        const key = event.name.toLowerCase();
        for (const waiter of this.waiters.values()) {
            if (waiter.delivered === undefined && waiter.key === key) {
                waiter.delivered = event;
                wake(waiter);
                return;
            }
        }
        let index = this.buffered.length;
        while (index > 0 && this.buffered[index - 1].arrival > event.arrival) {
            index--;
        }
        this.buffered.splice(index, 0, event);
    }

    /**
     * Registers a waiter for an event; it takes the oldest buffered event of that name at
     * once if there is one. Returns the waiter's id.
     * @param {string} name
     * @returns {number}
     */
    wait(name) {
        const key = name.toLowerCase();
        const index = this.buffered.findIndex((event) => event.name.toLowerCase() === key);
        const delivered = index >= 0 ? this.buffered.splice(index, 1)[0] : undefined;
        const id = this.nextWaiter++;
        this.waiters.set(id, { key, delivered, waker: null });
        return id;
    }

    /**
     * Takes the event handed to waiter `id`, which then leaves; else remembers who to wake.
     * @param {number} id
     * @param {Waker} waker
     * @returns {RaisedEvent | undefined}
     */
    takeDelivered(id, waker) {
        const waiter = this.waiters.get(id);
        if (waiter === undefined) {
            return undefined;
        }
        if (waiter.delivered !== undefined) {
            this.waiters.delete(id);
            return waiter.delivered;
        }
        waiter.waker = waker;
        return undefined;
    }

    /**
     * Unregisters waiter `id`; an event it was handed goes to the next waiter or the buffer.
     * @param {number} id
     */
    unwait(id) {
        const waiter = this.waiters.get(id);
        this.waiters.delete(id);
        if (waiter?.delivered !== undefined) {
            this.dispatch(waiter.delivered);
        }
    }

    /**
     * The actions issued since the last call.
     * @returns {{id: number, kind: object}[]}
     */
    takeActions() {
        const actions = this.actions;
        this.actions = [];
        return actions;
    }

    /**
     * Every raised event that no waiter took, in arrival order, as WIT carried events.
     * @returns {{name: string, input: string | undefined}[]}
     */
    unconsumedEvents() {
        return this.buffered.map((event) => ({ name: event.name, input: event.input }));
    }
}

function wake(slot) {
    const waker = slot.waker;
    slot.waker = null;
    waker?.();
}
