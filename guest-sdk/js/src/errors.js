// Errors the SDK raises, and the conversion of any thrown value into the WIT
// failure-details record (error-type, message, details).

/** An input, event payload, result or state could not be decoded. */
export class DeserializationError extends Error {
    /** @param {string} message */
    constructor(message) {
        super(message);
        this.name = "DeserializationError";
    }
}

/** A value could not be encoded as JSON. */
export class SerializationError extends Error {
    /** @param {string} message */
    constructor(message) {
        super(message);
        this.name = "SerializationError";
    }
}

/** Entity locks were misused: nothing to lock, or a lock requested while holding one. */
export class LockingRulesViolation extends Error {
    /** @param {string} message */
    constructor(message) {
        super(message);
        this.name = "LockingRulesViolation";
    }
}

/** What a task belongs to, as it appears in the message of a {@link TaskFailedError}. */
export const TaskKind = Object.freeze({
    activity: "activity",
    subOrchestration: "sub-orchestration",
    externalEvent: "external event",
    entity: "entity operation",
});

/**
 * Why a yielded task failed: the activity, sub-orchestration or entity operation reported a
 * failure. Its `name` is the failure's error type (so an uncaught one fails the orchestration
 * with the same type), its message names the task and contains the task's own message, and
 * `details` keeps the task's details (typically the remote stack).
 */
export class TaskFailedError extends Error {
    /**
     * @param {string} taskKind one of the {@link TaskKind} values
     * @param {string} taskName the activity, sub-orchestrator or operation name
     * @param {{errorType: string, message: string, details?: string}} failure
     * @param {{name: string, key: string} | undefined} entityId for entity operations
     */
    constructor(taskKind, taskName, failure, entityId) {
        const message =
            entityId === undefined
                ? `${taskKind} '${taskName}' failed: ${failure.message}`
                : `operation '${taskName}' of entity '@${entityId.name}@${entityId.key}' failed: ${failure.message}`;
        super(message);
        this.name = failure.errorType;
        this.taskKind = taskKind;
        this.taskName = taskName;
        this.entityId = entityId;
        this.failure = { errorType: failure.errorType, message: failure.message, details: failure.details ?? undefined };
        this.details = failure.details ?? undefined;
    }
}

/**
 * The error type of a thrown value: its `name` unless that is the generic "Error", else its
 * class name (so `class OutOfStock extends Error {}` reports "OutOfStock"), else "Error".
 * @param {unknown} error
 * @returns {string}
 */
export function errorTypeOf(error) {
    if (error !== null && typeof error === "object") {
        const name = /** @type {any} */ (error).name;
        if (typeof name === "string" && name !== "" && name !== "Error") {
            return name;
        }
        const constructorName = /** @type {any} */ (error).constructor?.name;
        if (typeof constructorName === "string" && constructorName !== "" && constructorName !== "Object") {
            return constructorName;
        }
    }
    return "Error";
}

/**
 * Converts anything a function threw into failure details: error type as
 * {@link errorTypeOf}, the message, and as details the error's own `details` if it has
 * some (a {@link TaskFailedError} passes on the task's), else its stack.
 * @param {unknown} error
 * @returns {{errorType: string, message: string, details: string | undefined}}
 */
export function toFailure(error) {
    if (error !== null && typeof error === "object") {
        const any = /** @type {any} */ (error);
        const message = typeof any.message === "string" ? any.message : safeString(error);
        // A task failure passes the failed function's details on, not the SDK's own stack.
        let details = error instanceof TaskFailedError ? any.details : (any.details ?? any.stack);
        if (details !== undefined && details !== null && typeof details !== "string") {
            details = safeString(details);
        }
        return { errorType: errorTypeOf(error), message, details: details || undefined };
    }
    return { errorType: "Error", message: safeString(error), details: undefined };
}

function safeString(value) {
    try {
        if (value !== null && typeof value === "object") {
            const json = JSON.stringify(value);
            if (json !== undefined) {
                return json;
            }
        }
        return String(value);
    } catch {
        return Object.prototype.toString.call(value);
    }
}
