// JSON in and out of the host. Every payload crosses the WIT boundary as JSON text.

import { SerializationError } from "./errors.js";

/**
 * Encodes a value as JSON text. `undefined` (and anything else JSON.stringify drops, such
 * as a function) encodes as `null`, so a payload is always present, as in the Rust SDK.
 * @param {unknown} value
 * @param {string} what what the value is, for the error message
 * @returns {string}
 * @throws {SerializationError} when the value cannot be encoded (a BigInt, a cycle)
 */
export function encode(value, what) {
    let text;
    try {
        text = JSON.stringify(value);
    } catch (error) {
        throw new SerializationError(`${what} could not be encoded as JSON: ${messageOf(error)}`);
    }
    return text === undefined ? "null" : text;
}

/**
 * Decodes a payload; an absent payload decodes as `null`.
 * @param {string | undefined | null} text
 * @returns {unknown}
 */
export function decode(text) {
    return JSON.parse(text ?? "null");
}

/**
 * Decodes a payload that a client may have sent JSON-encoded twice: the official Python
 * client sends `{"a":1}` as a JSON string holding that text. A JSON string whose content
 * is itself a JSON string, object or array decodes as that content; any other string
 * (`"3"`, `""`) stays a string, as the Rust SDK does for an untyped `serde_json::Value`.
 *
 * Used for what clients send (orchestration inputs, external events, entity operation
 * inputs), not for activity inputs and task results, which only SDKs encode and where a
 * string holding JSON text is more likely meant as text.
 * @param {string | undefined | null} text
 * @returns {unknown}
 */
export function decodeTolerant(text) {
    const value = decode(text);
    if (typeof value === "string") {
        const start = value.trimStart()[0];
        if (start === '"' || start === "{" || start === "[") {
            try {
                return JSON.parse(value);
            } catch {
                // Not JSON after all: the string is the payload.
            }
        }
    }
    return value;
}

function messageOf(error) {
    return error instanceof Error ? error.message : String(error);
}
