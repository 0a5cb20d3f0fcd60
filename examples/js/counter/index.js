// Durable entities: the Counter entity of the Durable Functions documentation (an integer
// with the operations add, reset, get and delete), and two orchestrators that use it:
// CounterSignaller signals it (one-way), CounterCaller calls it and reads the result.

import * as df from "durable-functions";

/** An operation the Counter does not have. */
class UnknownOperation extends Error {}

// The counter: its state is an integer, 0 until the first operation sets it.
df.app.entity("Counter", (context) => {
    const current = context.df.getState(() => 0);
    const operation = context.df.operationName;
    switch (operation.toLowerCase()) {
        case "add":
            context.df.setState(current + toInteger(context.df.getInput(), "the amount to add"));
            break;
        case "reset":
            context.df.setState(0);
            break;
        case "get":
            context.df.return(current);
            break;
        case "delete":
            context.df.destructOnExit();
            break;
        default:
            throw new UnknownOperation(`Counter has no operation '${operation}'`);
    }
});

// Input {"key": "k", "count": 100}: signals `add 1` to Counter/key `count` times, then
// returns `count`.
df.app.orchestration("CounterSignaller", function* (context) {
    const { key, count } = context.df.getInput();
    const counter = new df.EntityId("Counter", String(key));
    const times = toInteger(count, "count");
    for (let i = 0; i < times; i++) {
        context.df.signalEntity(counter, "add", 1);
    }
    return times;
});

// Input: a key. Adds 5 to Counter/key, then returns the value it reads back.
df.app.orchestration("CounterCaller", function* (context) {
    const counter = new df.EntityId("Counter", String(context.df.getInput()));
    yield context.df.callEntity(counter, "add", 5);
    return yield context.df.callEntity(counter, "get");
});

function toInteger(value, what) {
    const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
    if (!Number.isSafeInteger(number)) {
        throw new TypeError(`${what} must be an integer, got ${JSON.stringify(value)}`);
    }
    return number;
}
