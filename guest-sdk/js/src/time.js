// Conversions between WIT timestamps (microseconds since the Unix epoch, UTC, an s64 that
// arrives as a BigInt) and JavaScript Dates and numbers.

const MICROS_PER_DAY = 86_400_000_000;
const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);

/**
 * A WIT timestamp as a number of microseconds; exact for the next 285 years, since it
 * stays below 2^53.
 * @param {bigint | number} timestamp
 * @returns {number}
 */
export function toMicros(timestamp) {
    return Number(timestamp);
}

/**
 * Microseconds as a WIT timestamp, truncated to an integer and saturated to the s64 range.
 * @param {number} micros
 * @returns {bigint}
 */
export function toTimestamp(micros) {
    if (Number.isNaN(micros)) {
        throw new TypeError("a timestamp must be a number, not NaN");
    }
    if (micros === Infinity) {
        return I64_MAX;
    }
    if (micros === -Infinity) {
        return I64_MIN;
    }
    const value = BigInt(Math.trunc(micros));
    return value > I64_MAX ? I64_MAX : value < I64_MIN ? I64_MIN : value;
}

/**
 * A Date (or milliseconds since the epoch) as microseconds.
 * @param {Date | number} date
 * @param {string} what what the value is, for the error message
 * @returns {number}
 */
export function dateToMicros(date, what) {
    const millis = date instanceof Date ? date.getTime() : date;
    if (typeof millis !== "number" || !Number.isFinite(millis)) {
        throw new TypeError(`${what} must be a valid Date, got ${String(date)}`);
    }
    return Math.trunc(millis * 1000);
}

/**
 * Microseconds as a Date (which keeps milliseconds only).
 * @param {number} micros
 * @returns {Date}
 */
export function microsToDate(micros) {
    return new Date(Math.floor(micros / 1000));
}

/**
 * `yyyy-MM-ddTHH:mm:ss.fffffffZ`, the .NET round-trip ("o") format that Durable Functions
 * uses when it derives GUIDs from the orchestration time.
 * @param {number} micros
 * @returns {string}
 */
export function toIso8601(micros) {
    const days = Math.floor(micros / MICROS_PER_DAY);
    const inDay = micros - days * MICROS_PER_DAY;
    const [year, month, day] = civilFromDays(days);
    const seconds = Math.floor(inDay / 1_000_000);
    const fraction = inDay - seconds * 1_000_000;
    return (
        `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T` +
        `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}` +
        `.${pad(fraction, 6)}0Z`
    );
}

function pad(value, width) {
    return String(value).padStart(width, "0");
}

/** Howard Hinnant's civil_from_days: the proleptic Gregorian date of a day count from 1970-01-01. */
function civilFromDays(days) {
    const z = days + 719_468;
    const era = Math.floor(z / 146_097);
    const dayOfEra = z - era * 146_097;
    const yearOfEra =
        Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
    const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
    const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
    const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
    const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
    const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
    return [year, month, day];
}
