// Human interaction (Durable Functions sample E4): waits for an "Approval" event, racing it
// against a durable timer. Returns "approved" or "timeout".
//
// Input: the timeout in seconds, as a number or as {"timeoutSeconds": n}; 300 if absent.

import * as df from "durable-functions";

const DEFAULT_TIMEOUT_SECONDS = 300;

df.app.orchestration("E4_Approval", function* (context) {
    const timeout = timeoutSeconds(context.df.getInput());
    context.df.setCustomStatus("waiting for approval");

    const deadline = new Date(context.df.currentUtcDateTime.getTime() + timeout * 1000);
    const approval = context.df.waitForExternalEvent("Approval");
    const timer = context.df.createTimer(deadline);
    const winner = yield context.df.Task.any([approval, timer]);
    if (winner === approval) {
        timer.cancel();
        return "approved";
    }
    return "timeout";
});

function timeoutSeconds(input) {
    if (input === null || input === undefined || input === "") {
        return DEFAULT_TIMEOUT_SECONDS;
    }
    const seconds = typeof input === "object" && !Array.isArray(input) ? input.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS : input;
    const number = typeof seconds === "string" && seconds.trim() !== "" ? Number(seconds) : seconds;
    if (!Number.isSafeInteger(number) || number < 0) {
        throw new TypeError(`the timeout must be a number of seconds or {"timeoutSeconds": n}, got ${JSON.stringify(input)}`);
    }
    return number;
}
