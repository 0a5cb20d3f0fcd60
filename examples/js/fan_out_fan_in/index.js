// Fan-out/fan-in (Durable Functions sample E2): squares 1..n in parallel activities and
// returns the sum, so n = 3 gives 14.

import * as df from "durable-functions";

df.app.orchestration("E2_FanOutFanIn", function* (context) {
    // Some clients send the number as a string ("4").
    const n = toInteger(context.df.getInput(), "E2_FanOutFanIn's input");
    const tasks = [];
    for (let i = 1; i <= n; i++) {
        tasks.push(context.df.callActivity("E2_Square", i));
    }
    const squares = yield context.df.Task.all(tasks);
    const sum = squares.reduce((total, square) => total + square, 0);
    if (!Number.isSafeInteger(sum)) {
        throw new RangeError("the sum of the squares overflows");
    }
    return sum;
});

df.app.activity("E2_Square", {
    handler: (input) => {
        const x = toInteger(input, "E2_Square's input");
        const square = x * x;
        if (!Number.isSafeInteger(square)) {
            throw new RangeError(`${x} squared overflows`);
        }
        return square;
    },
});

function toInteger(value, what) {
    const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
    if (!Number.isSafeInteger(number)) {
        throw new TypeError(`${what} must be an integer, got ${JSON.stringify(value)}`);
    }
    return number;
}
