// Activities: JSON in, the author's function, JSON out, and errors as failure details.

import { toFailure } from "./errors.js";
import { decode } from "./json.js";
import { invocationLog } from "./log.js";

/**
 * Runs activity `name`. Returns its output as JSON text (or a promise of it, for an async
 * activity: the component runs the event loop until it settles) and throws (or rejects
 * with) WIT failure details.
 * @param {import("./registry.js").Registry} registry
 * @param {string} name
 * @param {string | undefined} input
 * @param {{instanceId: string, taskScheduledId: number}} call
 * @returns {string | Promise<string>}
 */
export function runActivity(registry, name, input, call) {
    const handler = registry.activityHandler(name);
    if (handler === undefined) {
        throw { errorType: "ActivityNotFound", message: `this app has no activity named '${name}'`, details: undefined };
    }
    let decoded;
    try {
        decoded = decode(input);
    } catch (error) {
        throw { errorType: "DeserializationError", message: `the activity input could not be decoded: ${error}`, details: undefined };
    }
    const context = {
        functionName: name,
        invocationId: `${call.instanceId}:${call.taskScheduledId}`,
        /** The orchestration instance that scheduled the activity. */
        instanceId: call.instanceId,
        /** The sequence number of the call in that orchestration: with the instance id, it identifies the call. */
        taskScheduledId: call.taskScheduledId,
        ...invocationLog,
    };
    let output;
    try {
        output = handler(decoded, context);
    } catch (error) {
        throw toFailure(error);
    }
    if (output !== null && typeof output === "object" && typeof output.then === "function") {
        return Promise.resolve(output).then(encodeOutput, (error) => {
            throw toFailure(error);
        });
    }
    return encodeOutput(output);
}

function encodeOutput(output) {
    let text;
    try {
        text = JSON.stringify(output);
    } catch (error) {
        throw { errorType: "SerializationError", message: `the activity output could not be encoded as JSON: ${error}`, details: undefined };
    }
    return text ?? "null";
}
