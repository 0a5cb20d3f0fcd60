// The pure helpers: JSON encoding, SHA-1, the .NET time format, timestamps, retry limits,
// failure conversion and UTF-8 ordering. Tolerant decoding, GUIDs and retry delays are
// corpus cases (tests/protocol/json.json, determinism.json, retries.json).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { toFailure } from "../src/errors.js";
import { sha1 } from "../src/guid.js";
import { encode } from "../src/json.js";
import { RetryOptions, retryAt } from "../src/retry.js";
import { toIso8601, toTimestamp } from "../src/time.js";
import { compareUtf8, utf8 } from "../src/utf8.js";

const SECOND = 1_000_000;

test("encoding turns undefined into null and reports what could not be encoded", () => {
    assert.equal(encode(undefined, "x"), "null");
    assert.equal(encode({ a: [1] }, "x"), '{"a":[1]}');
    assert.throws(() => encode(1n, "the input"), (error) => error.name === "SerializationError" && /^the input could not be encoded as JSON/.test(error.message));
});

test("sha1 matches node's", () => {
    for (const text of ["", "abc", "a".repeat(55), "a".repeat(56), "a".repeat(64), "é€😀".repeat(30)]) {
        const bytes = utf8(text);
        assert.equal(Buffer.from(sha1(bytes)).toString("hex"), createHash("sha1").update(text).digest("hex"), text);
    }
});

test("ISO 8601 matches the .NET round-trip format", () => {
    assert.equal(toIso8601(0), "1970-01-01T00:00:00.0000000Z");
    assert.equal(toIso8601(1_709_214_330_123_456), "2024-02-29T13:45:30.1234560Z");
    assert.equal(toIso8601(-1), "1969-12-31T23:59:59.9999990Z");
});

test("timestamps saturate to the s64 range", () => {
    assert.equal(toTimestamp(1.9), 1n);
    assert.equal(toTimestamp(Infinity), 2n ** 63n - 1n);
    assert.equal(toTimestamp(1e300), 2n ** 63n - 1n);
});

test("no retry after the last attempt or past the timeout", () => {
    const retry = new RetryOptions(10_000, 3);
    retry.retryTimeoutInMilliseconds = 15_000;
    assert.equal(retryAt(retry, 1, 0, 0), 10 * SECOND);
    assert.equal(retryAt(retry, 2, 0, 5 * SECOND), undefined);
    assert.equal(retryAt(new RetryOptions(1000, 2), 2, 0, 0), undefined);
});

test("failure details take the error's name, else its class name, and its stack", () => {
    class OutOfStock extends Error {}
    const failure = toFailure(new OutOfStock("gone"));
    assert.equal(failure.errorType, "OutOfStock");
    assert.equal(failure.message, "gone");
    assert.match(failure.details, /OutOfStock|test/);
    assert.equal(toFailure(new TypeError("t")).errorType, "TypeError");
    assert.deepEqual(toFailure(42), { errorType: "Error", message: "42", details: undefined });
    assert.equal(toFailure({ message: "plain object" }).errorType, "Error");
});

test("strings compare by UTF-8 bytes, as Rust orders them", () => {
    assert.ok(compareUtf8("\uffff", "😀") < 0, "U+FFFF sorts before U+1F600 in UTF-8");
    assert.ok("\uffff" > "😀", "but after it in UTF-16");
    assert.equal(compareUtf8("a", "a"), 0);
    assert.ok(compareUtf8("a", "ab") < 0);
});
