// Retry policies for activity and sub-orchestration calls.

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * How to retry a failed activity or sub-orchestration, as in Durable Functions.
 *
 * After failed attempt k (counting from 1) the call is tried again if
 * k < maxNumberOfAttempts and, when a retry timeout is set, the next attempt would start
 * before first attempt + retryTimeoutInMilliseconds. The wait before it is a durable timer
 * of firstRetryIntervalInMilliseconds * backoffCoefficient^(k-1), capped at
 * maxRetryIntervalInMilliseconds.
 *
 * ```js
 * const retry = new df.RetryOptions(5000, 3);
 * retry.backoffCoefficient = 2;
 * yield context.df.callActivityWithRetry("Flaky", retry, input);
 * ```
 */
export class RetryOptions {
    /**
     * @param {number} firstRetryIntervalInMilliseconds the wait before the first retry
     * @param {number} maxNumberOfAttempts how many attempts in all, the first one included
     */
    constructor(firstRetryIntervalInMilliseconds, maxNumberOfAttempts) {
        if (typeof firstRetryIntervalInMilliseconds !== "number" || !(firstRetryIntervalInMilliseconds >= 0)) {
            throw new TypeError("firstRetryIntervalInMilliseconds must be a number of milliseconds, 0 or more");
        }
        if (typeof maxNumberOfAttempts !== "number" || Number.isNaN(maxNumberOfAttempts)) {
            throw new TypeError("maxNumberOfAttempts must be a number");
        }
        /** The wait before the first retry. */
        this.firstRetryIntervalInMilliseconds = firstRetryIntervalInMilliseconds;
        /** How many attempts in all, the first one included. */
        this.maxNumberOfAttempts = maxNumberOfAttempts;
        /** What each wait is multiplied by for the next one; 1 keeps it fixed. */
        this.backoffCoefficient = 1;
        /** The longest wait between attempts; no limit when undefined. @type {number | undefined} */
        this.maxRetryIntervalInMilliseconds = undefined;
        /** No attempt starts later than this after the first one; no limit when undefined. @type {number | undefined} */
        this.retryTimeoutInMilliseconds = undefined;
    }
}

/**
 * The wait after failed attempt `attempt` (1-based), in microseconds.
 *
 * Repeated multiplication rather than Math.pow, the same IEEE arithmetic as the Rust SDK.
 * @param {RetryOptions} retry
 * @param {number} attempt
 * @returns {number}
 */
export function delayMicros(retry, attempt) {
    const cap = retry.maxRetryIntervalInMilliseconds === undefined ? Infinity : Math.max(0, millisToMicros(retry.maxRetryIntervalInMilliseconds));
    let delay = millisToMicros(retry.firstRetryIntervalInMilliseconds);
    for (let k = 1; k < attempt; k++) {
        delay *= retry.backoffCoefficient;
        if (delay >= cap) {
            break;
        }
    }
    if (Number.isNaN(delay) || delay <= 0) {
        return 0;
    }
    if (delay >= cap) {
        return Math.min(cap, MAX_SAFE);
    }
    return Math.min(Math.trunc(delay), MAX_SAFE);
}

/**
 * When to fire the timer before the next attempt, after failed attempt `attempt` (1-based)
 * was observed at `now`, for a call whose first attempt started at `firstAttempt` (all in
 * microseconds); `undefined` when the call should fail instead.
 * @param {RetryOptions} retry
 * @param {number} attempt
 * @param {number} firstAttempt
 * @param {number} now
 * @returns {number | undefined}
 */
export function retryAt(retry, attempt, firstAttempt, now) {
    if (attempt >= retry.maxNumberOfAttempts) {
        return undefined;
    }
    const fireAt = now + delayMicros(retry, attempt);
    if (retry.retryTimeoutInMilliseconds !== undefined && fireAt >= firstAttempt + millisToMicros(retry.retryTimeoutInMilliseconds)) {
        return undefined;
    }
    return fireAt;
}

function millisToMicros(millis) {
    return Math.trunc(millis * 1000);
}
