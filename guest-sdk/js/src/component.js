// The component glue: the WIT exports of world `app` (durable:functions@0.2.0), as
// componentize-js expects them, over the app's registry.

import { runActivity } from "./activity.js";
import { runBatch } from "./entity.js";
import { toFailure } from "./errors.js";
import { Executor } from "./executor.js";
import { defaultRegistry } from "./registry.js";

/** `interface registry`: every function this app implements. */
export const registry = {
    functions() {
        return defaultRegistry.functions();
    },
};

/**
 * The `orchestration` resource: one execution of one orchestrator for one instance. The
 * host keeps it between episodes, and replays recorded episodes into a new one when it has
 * lost it.
 */
class Orchestration {
    /**
     * @param {string} name
     * @param {string} instanceId
     */
    constructor(name, instanceId) {
        this._executor = new Executor(defaultRegistry, name, instanceId);
    }

    /**
     * @param {object[]} events
     * @param {boolean} replaying
     */
    apply(events, replaying) {
        try {
            return this._executor.apply(events, replaying);
        } catch (error) {
            // Only a bug in this SDK gets here (orchestrator errors are caught where they
            // happen); failing the orchestration keeps the other ones of this instance alive,
            // where an exception escaping into the component would trap it.
            const failure = toFailure(error);
            return {
                actions: [{ id: -1, kind: { tag: "fail", val: { ...failure, errorType: "DurableSdkError" } } }],
                customStatus: undefined,
            };
        }
    }
}

/** `interface orchestrator`. */
export const orchestrator = { Orchestration };

/** `interface activity`. */
export const activity = {
    run(name, input, context) {
        return runActivity(defaultRegistry, name, input ?? undefined, context);
    },
};

/** `interface entity`. */
export const entity = {
    run(id, state, operations) {
        return runBatch(defaultRegistry.entityHandler(id.name), id, state ?? undefined, operations);
    },
};
