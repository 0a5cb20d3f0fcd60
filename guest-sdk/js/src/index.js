// durable-functions for the durable host: write orchestrators, activities and entities in
// JavaScript, in the style of the durable-functions npm package (v3), and build them into
// a WebAssembly component with `durable build`.

export { app, Registry } from "./registry.js";
export { RetryOptions } from "./retry.js";
export { EntityContext, EntityId } from "./entity.js";
export { DurableOrchestrationContext, EntityLock } from "./context.js";
export { Task } from "./task.js";
export { DeserializationError, LockingRulesViolation, SerializationError, TaskFailedError, TaskKind } from "./errors.js";
