// The logging methods of an invocation context (context.log, context.error, ...), as in
// the Azure Functions programming model. Everything goes to stderr, which the host keeps
// (and echoes) for orchestrators and entities; activities' stdout is the host's.

/* eslint-disable no-console */
export const invocationLog = Object.freeze({
    /** Logs at information level. */
    log: (...args) => console.error(...args),
    /** Logs at trace level. */
    trace: (...args) => console.error(...args),
    /** Logs at debug level. */
    debug: (...args) => console.error(...args),
    /** Logs at information level. */
    info: (...args) => console.error(...args),
    /** Logs a warning. */
    warn: (...args) => console.error(...args),
    /** Logs an error. */
    error: (...args) => console.error(...args),
});
