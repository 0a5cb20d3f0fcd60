#!/usr/bin/env node
// Drives the JavaScript examples end to end over HTTP, as tests/e2e/examples.rs and
// tests/e2e/entities.rs drive the Rust ones: builds them (build.sh), starts a `durable`
// host on 127.0.0.1:0 with a fresh store, and checks outputs, custom status and failures.
//
//   node examples/js/e2e.mjs [--durable PATH] [--keep DIR]
//
// PATH defaults to $DURABLE_BIN, else target/release/durable. Exits non-zero on the first
// failed check. Also reports the host's first start (compiling the components) and second
// start (from the component cache).

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(dirname(here));
const PREFIX = "/runtime/webhooks/durabletask";

const args = process.argv.slice(2);
const option = (name) => {
    const index = args.indexOf(name);
    return index >= 0 ? args[index + 1] : undefined;
};
const durable = option("--durable") ?? process.env.DURABLE_BIN ?? join(root, "target/release/durable");
const work = option("--keep") ?? mkdtempSync(join(tmpdir(), "durable-js-e2e-"));

const apps = execFileSync("bash", [join(here, "build.sh")], { stdio: ["ignore", "pipe", "inherit"] })
    .toString()
    .trim()
    .split("\n");
// The SDK features the examples do not use, in an app of their own.
const checksApp = join(work, "sdk_checks.wasm");
execFileSync(join(root, "guest-sdk/js/build-app.sh"), [join(root, "guest-sdk/js/fixtures/sdk_checks"), checksApp, join(root, "wit")], {
    stdio: ["ignore", "inherit", "inherit"],
});
apps.push(checksApp);

/** Starts the host; resolves with its base URL once it listens, and the time that took. */
function startHost(label) {
    const started = Date.now();
    const child = spawn(
        durable,
        ["serve", "--listen", "127.0.0.1:0", "--store", join(work, "store.redb"), "--component-cache", join(work, "cache"), ...apps.flatMap((app) => ["--app", app])],
        { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (chunk) => {
        stderr += chunk;
    });
    return new Promise((resolve, reject) => {
        let stdout = "";
        let listening = false;
        const onData = (chunk) => {
            stdout += chunk;
            const match = /listening on (http:\/\/[0-9.:]+)/.exec(stdout + stderr);
            if (match && !listening) {
                listening = true;
                child.stdout.off("data", onData);
                const seconds = (Date.now() - started) / 1000;
                console.log(`${label}: host listening after ${seconds.toFixed(2)} s`);
                resolve({ child, base: match[1], seconds, stderr: () => stderr });
            }
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        child.on("exit", (code) => {
            if (!listening) {
                reject(new Error(`the host exited with ${code}:\n${stderr}`));
            }
        });
    });
}

async function request(base, method, path, body) {
    const response = await fetch(base + path, {
        method,
        body,
        headers: body === undefined ? {} : { "content-type": "application/json" },
    });
    const text = await response.text();
    return { status: response.status, text, json: () => JSON.parse(text) };
}

async function start(base, name, input, id) {
    const path = `${PREFIX}/orchestrators/${name}${id ? `/${id}` : ""}`;
    const response = await request(base, "POST", path, input);
    assert.equal(response.status, 202, response.text);
    return response.json().id;
}

async function waitFor(base, id, predicate, seconds = 30) {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
        // 202 while the instance runs, 200 once it finished.
        const response = await request(base, "GET", `${PREFIX}/instances/${id}`);
        if (response.status === 200 || response.status === 202) {
            const status = response.json();
            if (predicate(status)) {
                return status;
            }
        }
        if (Date.now() > deadline) {
            throw new Error(`${id} never got there; last: ${response.status} ${response.text}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
}

const finished = (status) => !["Running", "Pending", "Suspended"].includes(status.runtimeStatus);

async function raise(base, id, event, body) {
    const response = await request(base, "POST", `${PREFIX}/instances/${id}/raiseEvent/${event}`, body);
    assert.equal(response.status, 202, response.text);
}

async function waitForState(base, name, key, expected, seconds = 30) {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
        const response = await request(base, "GET", `${PREFIX}/entities/${name}/${key}`);
        if (response.status === 200 && JSON.stringify(response.json()) === JSON.stringify(expected)) {
            return;
        }
        if (Date.now() > deadline) {
            throw new Error(`${name}/${key} never reached ${JSON.stringify(expected)}; last: ${response.status} ${response.text}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
}

const checks = {
    async helloSequence(base) {
        const id = await start(base, "E1_HelloSequence");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.deepEqual(status.output, ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]);
        const history = (await request(base, "GET", `${PREFIX}/instances/${id}?showHistory=true&showHistoryOutput=true`)).json();
        assert.deepEqual(
            history.historyEvents.map((event) => event.EventType),
            ["ExecutionStarted", "TaskCompleted", "TaskCompleted", "TaskCompleted", "ExecutionCompleted"],
        );
        assert.equal(history.historyEvents[1].Result, "Hello Tokyo!");
    },
    async fanOutFanIn(base) {
        let id = await start(base, "E2_FanOutFanIn", "10");
        let status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.equal(status.output, 385);
        id = await start(base, "E2_FanOutFanIn", '"4"');
        assert.equal((await waitFor(base, id, finished)).output, 30);
    },
    async approvalEvent(base) {
        const id = await start(base, "E4_Approval", "300");
        const waiting = await waitFor(base, id, (status) => status.runtimeStatus === "Running" && status.customStatus !== null);
        assert.equal(waiting.customStatus, "waiting for approval");
        await raise(base, id, "Approval", "true");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.equal(status.output, "approved");
    },
    async approvalTimer(base) {
        const id = await start(base, "E4_Approval", '{"timeoutSeconds": 1}');
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.equal(status.output, "timeout");
    },
    async reserveTicket(base) {
        const id = await start(base, "ReserveTicket", '"user-42"');
        const waiting = await waitFor(base, id, (status) => status.customStatus !== null);
        assert.equal(waiting.runtimeStatus, "Running");
        assert.deepEqual(waiting.customStatus, { discount: 10, discountTimeout: 60, bookingUrl: "https://www.myawesomebookingweb.com" });
        await raise(base, id, "BookingConfirmed", "true");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed");
        assert.equal(status.output, true);
        assert.deepEqual(status.customStatus, { message: "Thank you for confirming your booking." });
    },
    async earlyEvent(base) {
        const id = await start(base, "ReserveTicket", "7", "early");
        await raise(base, id, "BookingConfirmed", "false");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.equal(status.output, false);
        assert.deepEqual(status.customStatus, { message: "The booking was not confirmed on time. Please try again." });
    },
    async cityRecommender(base) {
        const cases = [
            ["1", { recommendedCities: ["Tokyo", "Seattle"], recommendedSeasons: ["Spring", "Summer"] }],
            ["2", { recommendedCities: ["Seattle", "London"], recommendedSeasons: ["Summer"] }],
            ['"3"', { recommendedCities: ["Tokyo", "London"], recommendedSeasons: ["Spring", "Summer"] }],
        ];
        for (const [input, expected] of cases) {
            const id = await start(base, "CityRecommender", input);
            const waiting = await waitFor(base, id, (status) => status.customStatus !== null);
            assert.deepEqual(waiting.customStatus, expected, `input ${input}`);
            assert.equal(waiting.runtimeStatus, "Running");
            await raise(base, id, "UserChoice", '{"city": "Tokyo"}');
            const status = await waitFor(base, id, finished);
            assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
            assert.deepEqual(status.output, { city: "Tokyo" });
        }
        const id = await start(base, "CityRecommender", "4");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Failed");
        assert.match(JSON.stringify(status.output), /unknown user choice 4: expected 1, 2 or 3/);
    },
    async failAlways(base) {
        const id = await start(base, "FailAlways");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Failed", JSON.stringify(status));
        assert.ok(typeof status.output === "string" && status.output.includes("Fail always fails"), JSON.stringify(status));
        const response = await request(base, "GET", `${PREFIX}/instances/${id}?returnInternalServerErrorOnFailure=true`);
        assert.equal(response.status, 500);
        const history = (await request(base, "GET", `${PREFIX}/instances/${id}?showHistory=true`)).json();
        console.log(`  FailAlways failed with: ${JSON.stringify(history.historyEvents.at(-1))}`);
    },
    async counterOverHttp(base) {
        const signal = (name, key, op, body) => request(base, "POST", `${PREFIX}/entities/${name}/${key}?op=${op}`, body);
        assert.equal((await signal("Counter", "steps", "add", "5")).status, 202);
        await waitForState(base, "Counter", "steps", 5);
        assert.equal((await signal("counter", "steps", "add", "2")).status, 202);
        await waitForState(base, "COUNTER", "steps", 7);
        assert.equal((await signal("Counter", "steps", "reset")).status, 202);
        await waitForState(base, "Counter", "steps", 0);
        assert.equal((await request(base, "GET", `${PREFIX}/entities/Counter/never-touched`)).status, 404);
        assert.equal((await signal("Counter", "k", "add", "{oops")).status, 400);
    },
    async counterCaller(base) {
        const id = await start(base, "CounterCaller", '"called"');
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.equal(status.output, 5);
        await waitForState(base, "Counter", "called", 5);
    },
    async retrying(base) {
        const id = await start(base, "Retrying");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.equal(status.output, 4);
    },
    async subOrchestrations(base) {
        const id = await start(base, "Parent", undefined, "parent-1");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.deepEqual(status.output, {
            square: 49,
            caught: { name: "RangeError", message: "sub-orchestration 'Child' failed: no square for -1 today (parent parent-1)" },
        });
    },
    async continueAsNew(base) {
        const id = await start(base, "Eternal", "0");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.equal(status.output, "finished at 3");
    },
    async asyncActivities(base) {
        const id = await start(base, "AsyncActivities");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.deepEqual(status.output, { doubled: 42, name: "OutOfStock", message: "activity 'AsyncFail' failed: no tickets left" });
    },
    async thrower(base) {
        const id = await start(base, "Thrower");
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Failed", JSON.stringify(status));
        assert.equal(status.output, "the orchestrator threw");
    },
    async lockedTally(base) {
        const id = await start(base, "LockedTally", '"t"');
        const status = await waitFor(base, id, finished);
        assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
        assert.equal(status.output, 5);
        await waitForState(base, "Tally", "t", 5);
    },
    async determinismBeforeRestart(base) {
        const id = await start(base, "Determinism", undefined, "determinism-1");
        const waiting = await waitFor(base, id, (status) => status.customStatus !== null);
        recorded.determinism = waiting.customStatus;
        assert.equal(waiting.customStatus.dateNow, waiting.customStatus.current, "Date.now() is the episode's time");
        assert.equal(waiting.customStatus.newDate, waiting.customStatus.current);
    },
    async counterSignallers(base) {
        const ids = [];
        for (let index = 0; index < 20; index++) {
            ids.push(await start(base, "CounterSignaller", JSON.stringify({ key: "shared", count: 100 }), `shared-signaller-${index}`));
        }
        for (const id of ids) {
            assert.equal((await waitFor(base, id, finished, 120)).runtimeStatus, "Completed");
        }
        await waitForState(base, "Counter", "shared", 2000, 120);
    },
};

/** What the first host run saw, for the checks after the restart. */
const recorded = {};
let failed = false;
let host = await startHost("first start (compiles the components)");
try {
    for (const [name, check] of Object.entries(checks)) {
        const begun = Date.now();
        try {
            await check(host.base);
            console.log(`ok   ${name} (${Date.now() - begun} ms)`);
        } catch (error) {
            failed = true;
            console.log(`FAIL ${name}: ${error.stack ?? error}`);
        }
    }
} finally {
    host.child.kill("SIGTERM");
}
await new Promise((resolve) => host.child.once("exit", resolve));
host = await startHost("second start (component cache)");
try {
    await checks.helloSequence(host.base);
    console.log("ok   helloSequence after a restart");
    // The restarted host replays Determinism's first episode to rebuild it.
    await raise(host.base, "determinism-1", "Go", "null");
    const status = await waitFor(host.base, "determinism-1", finished);
    assert.equal(status.runtimeStatus, "Completed", JSON.stringify(status));
    assert.deepEqual(status.output.first, recorded.determinism, "replayed Date, Math.random, crypto and newGuid values");
    assert.equal(status.output.second.dateNow, status.output.second.current);
    assert.notEqual(status.output.second.random, status.output.first.random[0]);
    console.log(`ok   determinism across a replay: ${JSON.stringify(status.output)}`);
} catch (error) {
    failed = true;
    console.log(`FAIL after the restart: ${error.stack ?? error}`);
} finally {
    host.child.kill("SIGTERM");
}
if (option("--keep") === undefined) {
    rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
