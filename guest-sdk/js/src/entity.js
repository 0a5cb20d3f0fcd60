// Durable entities: EntityId, the context an entity function runs with, and the batch
// runner behind the WIT `entity` export.

import { DeserializationError, SerializationError, toFailure } from "./errors.js";
import { decodeTolerant, encode } from "./json.js";
import { dateToMicros, toTimestamp } from "./time.js";
import { invocationLog } from "./log.js";

/**
 * The address of an entity: its name and its key. Names are case-insensitive, so the name
 * is lowercased, as Durable Functions does; keys are case-sensitive. Prints as `@name@key`.
 */
export class EntityId {
    /**
     * @param {string} name the entity's name (its function name)
     * @param {string} key the key of this instance of the entity
     */
    constructor(name, key) {
        if (typeof name !== "string" || name === "") {
            throw new TypeError("an entity name must be a non-empty string");
        }
        if (typeof key !== "string") {
            throw new TypeError("an entity key must be a string");
        }
        /** The entity's name, lowercased. */
        this.name = name.toLowerCase();
        /** The entity's key. */
        this.key = key;
    }

    /** `@name@key`. */
    toString() {
        return `@${this.name}@${this.key}`;
    }
}

/**
 * An EntityId from an EntityId or anything with string `name` and `key`.
 * @param {unknown} entityId
 * @returns {EntityId}
 */
export function toEntityId(entityId) {
    if (entityId instanceof EntityId) {
        return entityId;
    }
    if (entityId !== null && typeof entityId === "object") {
        const { name, key } = /** @type {any} */ (entityId);
        return new EntityId(name, key);
    }
    throw new TypeError(`not an entity id: ${String(entityId)} (use new df.EntityId(name, key))`);
}

/**
 * The WIT entity-id record of an id.
 * @param {EntityId} id
 */
export function witEntityId(id) {
    return { name: id.name, key: id.key };
}

/**
 * The WIT signal record, shared by orchestrations and entities.
 * @param {unknown} entityId
 * @param {string} operationName
 * @param {unknown} operationInput
 * @param {Date | undefined} scheduledTime
 */
export function signalRecord(entityId, operationName, operationInput, scheduledTime) {
    const id = toEntityId(entityId);
    if (typeof operationName !== "string") {
        throw new TypeError("an operation name must be a string");
    }
    return {
        entity: witEntityId(id),
        operation: operationName,
        input: encode(operationInput, "the signal input"),
        scheduledTime: scheduledTime === undefined ? undefined : toTimestamp(dateToMicros(scheduledTime, "the scheduled time")),
    };
}

/**
 * What an entity function gets as `context.df`: the operation, its input, the state and
 * the ways to answer and to send messages.
 *
 * An entity without state (never set, or deleted) reads as the `getState` initializer's
 * value and stays without state until an operation calls `setState`. An operation that
 * throws leaves no trace: its state change and its signals are dropped and its caller gets
 * the error; the other operations of the batch are unaffected.
 */
export class EntityContext {
    /**
     * @param {EntityId} id
     * @param {string} operationName
     * @param {string | undefined} input
     * @param {unknown} state the decoded state
     * @param {boolean} hasState
     */
    constructor(id, operationName, input, state, hasState) {
        this._id = id;
        this._operationName = operationName;
        this._input = input;
        this._state = state;
        this._hasState = hasState;
        this._isNewlyConstructed = !hasState;
        /** @type {string | undefined} */
        this._result = undefined;
        /** @type {object[]} */
        this._actions = [];
    }

    /** The entity's name, lowercased. */
    get entityName() {
        return this._id.name;
    }

    /** The entity's key. */
    get entityKey() {
        return this._id.key;
    }

    /** The entity's id. */
    get entityId() {
        return this._id;
    }

    /** The name of the operation to run, as the caller spelled it. */
    get operationName() {
        return this._operationName;
    }

    /** Whether the entity had no state when this operation started. */
    get isNewlyConstructed() {
        return this._isNewlyConstructed;
    }

    /** Whether the entity has state now. */
    get hasState() {
        return this._hasState;
    }

    /**
     * The operation's input; an absent input reads as null. Tolerant of double-encoded JSON
     * strings, like every input a client sends.
     * @returns {any}
     */
    getInput() {
        try {
            return decodeTolerant(this._input);
        } catch (error) {
            throw new DeserializationError(
                `the input of operation '${this._operationName}' of entity '${this._id}' could not be decoded: ${error}`,
            );
        }
    }

    /**
     * The state; without state, `initializer()` (or undefined without an initializer),
     * which does not create the state: only setState does.
     * @param {() => any} [initializer]
     * @returns {any}
     */
    getState(initializer) {
        if (this._hasState) {
            return this._state;
        }
        return initializer === undefined ? undefined : initializer();
    }

    /**
     * Replaces the state; the entity has state from now on. The value is encoded as JSON
     * when the operation ends, so later changes to the same object count.
     * @param {any} state
     */
    setState(state) {
        this._state = state;
        this._hasState = true;
    }

    /** Deletes the state: unless this operation sets it again, the entity ends without state. */
    destructOnExit() {
        this._state = undefined;
        this._hasState = false;
    }

    /**
     * Sets the operation's result, what a caller's callEntity gets. Without it the result is
     * absent (null).
     * @param {any} value
     */
    return(value) {
        this._result = encode(value, "the operation result");
    }

    /**
     * Signals an operation of another entity (or this one), one-way; sent only if this
     * operation succeeds. With `scheduledTime`, delivered at that time.
     * @param {EntityId} entityId
     * @param {string} operationName
     * @param {any} [operationInput]
     * @param {Date} [scheduledTime]
     */
    signalEntity(entityId, operationName, operationInput, scheduledTime) {
        this._actions.push({ tag: "signal-entity", val: signalRecord(entityId, operationName, operationInput, scheduledTime) });
    }

    /**
     * Starts an orchestration; with no instance id the host picks a random one. Started only
     * if this operation succeeds.
     * @param {string} name
     * @param {any} [input]
     * @param {string} [instanceId]
     */
    startNewOrchestration(name, input, instanceId) {
        if (typeof name !== "string") {
            throw new TypeError("an orchestrator name must be a string");
        }
        this._actions.push({
            tag: "start-orchestration",
            val: { name, instanceId: instanceId ?? undefined, input: encode(input, "the orchestration input") },
        });
    }
}

/**
 * Runs one operation against a state given as JSON text.
 * @param {(context: any) => unknown} handler
 * @param {EntityId} id
 * @param {string | undefined} state
 * @param {{name: string, input?: string}} operation
 * @returns {{ok: true, state: string | undefined, result: string | undefined, actions: object[]} | {ok: false, failure: object}}
 */
export function runOperation(handler, id, state, operation) {
    try {
        let decoded;
        if (state !== undefined && state !== null) {
            try {
                // State is only ever written by this SDK, so it is decoded strictly.
                decoded = JSON.parse(state);
            } catch (error) {
                throw new DeserializationError(`the state of entity '${id}' could not be decoded: ${error}`);
            }
        }
        const df = new EntityContext(id, operation.name, operation.input ?? undefined, decoded, state !== undefined && state !== null);
        const context = { df, functionName: id.name, invocationId: `${id}`, ...invocationLog };
        const returned = handler(context);
        if (returned !== null && typeof returned === "object" && typeof (/** @type {any} */ (returned).then) === "function") {
            throw new TypeError(`entity '${id.name}' returned a promise: entity functions must be synchronous`);
        }
        let newState;
        if (df._hasState) {
            try {
                newState = JSON.stringify(df._state) ?? "null";
            } catch (error) {
                throw new SerializationError(`the state of entity '${id}' could not be encoded as JSON: ${error}`);
            }
        }
        return { ok: true, state: newState, result: df._result, actions: df._actions };
    } catch (error) {
        return { ok: false, failure: toFailure(error) };
    }
}

/**
 * Runs a batch: each operation in order against the state the previous ones left. A failed
 * operation changes nothing and reports its error in its slot.
 * @param {((context: any) => unknown) | undefined} handler undefined for an unknown entity
 * @param {{name: string, key: string}} witId
 * @param {string | undefined} state
 * @param {{name: string, input?: string}[]} operations
 */
export function runBatch(handler, witId, state, operations) {
    const id = new EntityId(witId.name, witId.key);
    let current = state ?? undefined;
    const results = [];
    const actions = [];
    for (const operation of operations) {
        const outcome =
            handler === undefined
                ? { ok: false, failure: { errorType: "EntityNotFound", message: `this app has no entity named '${id.name}'`, details: undefined } }
                : runOperation(handler, id, current, operation);
        if (outcome.ok) {
            current = outcome.state;
            actions.push(...outcome.actions);
            results.push({ tag: "ok", val: outcome.result });
        } else {
            results.push({ tag: "err", val: outcome.failure });
        }
    }
    return { results, state: current, actions };
}
