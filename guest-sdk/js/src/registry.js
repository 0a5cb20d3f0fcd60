// The function registry of an app: orchestrators, activities and entities by name, filled
// by df.app.orchestration / activity / entity when the app module is evaluated (at build
// time, inside the component's snapshot).

import { compareUtf8 } from "./utf8.js";

/** The orchestrators, activities and entities of an app, by name. */
export class Registry {
    constructor() {
        /** @type {Map<string, Function>} */
        this._orchestrators = new Map();
        /** @type {Map<string, Function>} */
        this._activities = new Map();
        /** By lowercased name (entity names are case-insensitive). @type {Map<string, {name: string, handler: Function}>} */
        this._entities = new Map();
    }

    /**
     * Registers an orchestrator: a generator function `function* (context) {...}` that
     * yields tasks from `context.df` and returns the output.
     * @param {string} name
     * @param {Function | {handler: Function}} handlerOrOptions
     */
    orchestration(name, handlerOrOptions) {
        this._checkUnique(name);
        this._orchestrators.set(name, handlerOf(handlerOrOptions, name));
    }

    /**
     * Registers an activity: `(input, context) => output`, sync or async.
     * @param {string} name
     * @param {{handler: Function} | Function} options
     */
    activity(name, options) {
        this._checkUnique(name);
        this._activities.set(name, handlerOf(options, name));
    }

    /**
     * Registers an entity: `(context) => void`, running one operation through `context.df`.
     * Entity names are case-insensitive.
     * @param {string} name
     * @param {Function | {handler: Function}} handlerOrOptions
     */
    entity(name, handlerOrOptions) {
        checkName(name);
        const key = name.toLowerCase();
        const taken = [...this._orchestrators.keys(), ...this._activities.keys()].some((other) => other.toLowerCase() === key);
        if (taken || this._entities.has(key)) {
            throw new Error(`durable function '${name}' is registered twice`);
        }
        this._entities.set(key, { name, handler: handlerOf(handlerOrOptions, name) });
    }

    /**
     * @param {string} name
     * @returns {Function | undefined}
     */
    orchestrator(name) {
        return this._orchestrators.get(name);
    }

    /**
     * @param {string} name
     * @returns {Function | undefined}
     */
    activityHandler(name) {
        return this._activities.get(name);
    }

    /**
     * @param {string} name any case
     * @returns {Function | undefined}
     */
    entityHandler(name) {
        return this._entities.get(name.toLowerCase())?.handler;
    }

    /**
     * Every function, as the WIT registry lists them: orchestrators, activities, entities,
     * each kind sorted by name.
     * @returns {{name: string, kind: string}[]}
     */
    functions() {
        const sorted = (names) => [...names].sort(compareUtf8);
        return [
            ...sorted(this._orchestrators.keys()).map((name) => ({ name, kind: "orchestrator" })),
            ...sorted(this._activities.keys()).map((name) => ({ name, kind: "activity" })),
            ...sorted(this._entities.keys()).map((key) => ({ name: /** @type {any} */ (this._entities.get(key)).name, kind: "entity" })),
        ];
    }

    _checkUnique(name) {
        checkName(name);
        if (this._orchestrators.has(name) || this._activities.has(name) || this._entities.has(name.toLowerCase())) {
            throw new Error(`durable function '${name}' is registered twice`);
        }
    }
}

function checkName(name) {
    if (typeof name !== "string" || name === "") {
        throw new TypeError("a durable function name must be a non-empty string");
    }
}

function handlerOf(handlerOrOptions, name) {
    if (typeof handlerOrOptions === "function") {
        return handlerOrOptions;
    }
    if (handlerOrOptions !== null && typeof handlerOrOptions === "object" && typeof handlerOrOptions.handler === "function") {
        return handlerOrOptions.handler;
    }
    throw new TypeError(`durable function '${name}' needs a handler function (or an options object with one)`);
}

/** The registry of the app being built; df.app registers into it. */
export const defaultRegistry = new Registry();

/**
 * Registration in the style of the durable-functions v3 package (the Azure Functions v4
 * programming model).
 *
 * ```js
 * import * as df from "durable-functions";
 *
 * df.app.orchestration("E1_HelloSequence", function* (context) {
 *     const output = [];
 *     output.push(yield context.df.callActivity("E1_SayHello", "Tokyo"));
 *     return output;
 * });
 * df.app.activity("E1_SayHello", { handler: (city) => `Hello ${city}!` });
 * df.app.entity("Counter", (context) => { ... });
 * ```
 *
 * Registering one name twice (for entities, in any case) throws, which fails the build.
 */
export const app = Object.freeze({
    /**
     * Registers an orchestrator (a generator function, or `{ handler }`).
     * @param {string} name
     * @param {Function | {handler: Function}} handlerOrOptions
     */
    orchestration(name, handlerOrOptions) {
        defaultRegistry.orchestration(name, handlerOrOptions);
    },
    /**
     * Registers an activity (`{ handler: (input, context) => output }`, or the function).
     * @param {string} name
     * @param {{handler: Function} | Function} options
     */
    activity(name, options) {
        defaultRegistry.activity(name, options);
    },
    /**
     * Registers an entity (`(context) => void`, or `{ handler }`).
     * @param {string} name
     * @param {Function | {handler: Function}} handlerOrOptions
     */
    entity(name, handlerOrOptions) {
        defaultRegistry.entity(name, handlerOrOptions);
    },
});
