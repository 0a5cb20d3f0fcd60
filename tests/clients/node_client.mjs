// Drives every method of the official JavaScript Durable Functions client (npm
// `durable-functions` v3) against our host.
//
//     node tests/clients/node_client.mjs http://127.0.0.1:PORT
//
// The packages come from target/clients/node (tests/clients/setup.sh installs them; set
// DURABLE_CLIENTS_NODE_DIR to use another directory). The DurableClient is obtained the way
// a v3 app gets it: `df.getClient(context)` on an InvocationContext whose options list the
// `durableClient` input and whose extraInputs hold the binding data the Durable extension
// sends (task hub, creation and management URL templates, rpcBaseUrl). Here rpcBaseUrl is
// `{BASE_URL}/runtime/webhooks/durabletask/`, where every client call goes. WEBSITE_HOSTNAME
// is set to the host's address, as the Functions host sets it (without it getClient rewrites
// the management URLs to http://localhost:7071). The script prints one line per check and
// exits 1 at the first failure with the client's last HTTP exchanges. Instance ids carry a
// random suffix, so it can run again and again against the same host.

import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = process.env.DURABLE_CLIENTS_NODE_DIR || path.join(here, "..", "..", "target", "clients", "node");
const require = createRequire(path.join(nodeDir, "package.json"));
const df = require("durable-functions");
const { InvocationContext, HttpRequest } = require("@azure/functions");

const BASE = (process.argv[2] || "").replace(/\/+$/, "");
if (!BASE.startsWith("http")) {
    console.error("usage: node_client.mjs http://127.0.0.1:PORT");
    process.exit(2);
}
const WEBHOOK = `${BASE}/runtime/webhooks/durabletask`;
const RUN = randomUUID().replace(/-/g, "").slice(0, 8);
const PREFIX = `js-${RUN}-`;
const HELLO = ["Hello Tokyo!", "Hello Seattle!", "Hello London!"];
const TERMINAL = ["Completed", "Failed", "Terminated", "Canceled"];
const TASK_HUB = "DurableFunctionsHub";
const ID_PLACEHOLDER = "INSTANCEID";
// More instances than the extension's default page of 100, so listing must page.
const PAGING_INSTANCES = Number(process.env.PAGING_INSTANCES || 101);

const exchanges = [];
let checks = 0;
let lastOk = "(none)";

function fail(name, detail) {
    console.log(`FAIL ${name}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    if (exchanges.length) {
        console.log("last HTTP exchanges of the client (oldest first):");
        for (const line of exchanges) console.log(`  ${line}`);
    }
    process.exit(1);
}

function check(name, condition, detail = "") {
    if (!condition) fail(name, detail);
    checks += 1;
    lastOk = name;
    console.log(`ok   ${name}`);
}

const equal = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function clientBindingData() {
    const query = `taskHub=${TASK_HUB}&connection=Storage`;
    const instance = `${WEBHOOK}/instances/${ID_PLACEHOLDER}`;
    const orchestrators = `${WEBHOOK}/orchestrators/{functionName}[/{instanceId}]`;
    return {
        taskHubName: TASK_HUB,
        creationUrls: {
            createNewInstancePostUri: `${orchestrators}?${query}`,
            createAndWaitOnNewInstancePostUri: `${orchestrators}?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&${query}`,
        },
        managementUrls: {
            id: ID_PLACEHOLDER,
            statusQueryGetUri: `${instance}?${query}`,
            sendEventPostUri: `${instance}/raiseEvent/{eventName}?${query}`,
            terminatePostUri: `${instance}/terminate?reason={text}&${query}`,
            rewindPostUri: `${instance}/rewind?reason={text}&${query}`,
            purgeHistoryDeleteUri: `${instance}?${query}`,
            restartPostUri: `${instance}/restart?${query}`,
            suspendPostUri: `${instance}/suspend?reason={text}&${query}`,
            resumePostUri: `${instance}/resume?reason={text}&${query}`,
        },
        baseUrl: WEBHOOK,
        requiredQueryStringParameters: query,
        rpcBaseUrl: `${WEBHOOK}/`,
        httpBaseUrl: "",
    };
}

function makeClient() {
    process.env.WEBSITE_HOSTNAME = new URL(BASE).host;
    const clientInput = df.input.durableClient();
    const context = new InvocationContext({
        invocationId: randomUUID(),
        functionName: "officialClientCheck",
        options: { trigger: { type: "httpTrigger", name: "request" }, extraInputs: [clientInput] },
    });
    // The worker parses the binding's JSON string into this object before the handler runs.
    context.extraInputs.set(clientInput, clientBindingData());
    return df.getClient(context);
}

/** Observation only: records each request the client's axios instance makes. */
function recordExchanges(client) {
    const requests = [];
    const axios = client.axiosInstance;
    axios.interceptors.request.use((config) => {
        requests.push(config);
        return config;
    });
    const describe = (config, outcome) => {
        const token = config.headers?.["x-ms-continuation-token"];
        const body = config.data === undefined ? "" : ` body=${JSON.stringify(config.data)}`;
        exchanges.push(
            `${config.method.toUpperCase()} ${config.url}${token ? ` [x-ms-continuation-token: ${token}]` : ""}${body} -> ${outcome}`,
        );
        if (exchanges.length > 8) exchanges.shift();
    };
    axios.interceptors.response.use(
        (response) => {
            const token = response.headers["x-ms-continuation-token"];
            describe(
                response.config,
                `${response.status} ${JSON.stringify(response.data).slice(0, 400)}${token ? ` [x-ms-continuation-token: ${token}]` : ""}`,
            );
            return response;
        },
        (error) => {
            if (error.config) describe(error.config, `error ${error.message}`);
            return Promise.reject(error);
        },
    );
    return requests;
}

const request = (url, method = "POST") => new HttpRequest({ method, url });

async function plainGet(url) {
    const response = await fetch(url);
    return { status: response.status, body: await response.text() };
}

async function waitFor(client, id, done, what, options = {}, timeoutMs = 60000) {
    const deadline = Date.now() + timeoutMs;
    let status;
    let lastError;
    while (Date.now() < deadline) {
        try {
            status = await client.getStatus(id, options);
            lastError = undefined;
        } catch (error) {
            status = undefined;
            lastError = error;
        }
        if (status && done(status)) return status;
        await sleep(100);
    }
    const last = lastError ? `getStatus rejected: ${lastError.message}` : `last status ${JSON.stringify(status)}`;
    fail(what, `instance ${id} did not get there within ${timeoutMs} ms; ${last}`);
}

const waitTerminal = (client, id, what, options) =>
    waitFor(client, id, (s) => TERMINAL.includes(s.runtimeStatus), what, options);
const waitRunning = (client, id, what) =>
    waitFor(client, id, (s) => s.runtimeStatus === "Running" && s.customStatus !== null, what);

async function raises(promise) {
    try {
        await promise;
    } catch (error) {
        return error;
    }
    return undefined;
}

async function drive() {
    const started = Date.now();
    const client = makeClient();
    const requests = recordExchanges(client);
    const runStart = new Date(Date.now() - 1000);
    console.log(`node client against ${WEBHOOK}/ (run ${RUN})`);

    // --- startNew ------------------------------------------------------------------------
    const helloId = await client.startNew("E1_HelloSequence");
    check("startNew E1_HelloSequence (no input, no id) returns a generated id", typeof helloId === "string" && helloId !== "", helloId);
    let status = await waitTerminal(client, helloId, "E1_HelloSequence completes");
    check("E1_HelloSequence Completed with the three greetings", status.runtimeStatus === "Completed" && equal(status.output, HELLO), status);

    const fanId = await client.startNew("E2_FanOutFanIn", { input: 3 });
    status = await waitTerminal(client, fanId, "E2_FanOutFanIn completes");
    check("startNew E2_FanOutFanIn with input 3 -> 14", status.runtimeStatus === "Completed" && status.output === 14, status);

    const namedId = `${PREFIX}hello`;
    const returned = await client.startNew("E1_HelloSequence", { instanceId: namedId });
    check("startNew with an explicit instanceId returns that id", returned === namedId, returned);
    await waitTerminal(client, namedId, "named E1_HelloSequence completes");

    let error = await raises(client.startNew("NoSuchOrchestrator"));
    check("startNew of an unknown orchestrator rejects (400)", error && /400/.test(error.message), String(error));

    // --- getStatus -----------------------------------------------------------------------
    status = await client.getStatus(namedId);
    check(
        "getStatus: a DurableOrchestrationStatus with name, instanceId, Date times",
        status.constructor.name === "DurableOrchestrationStatus" &&
            status.name === "E1_HelloSequence" &&
            status.instanceId === namedId &&
            status.createdTime instanceof Date &&
            !isNaN(status.createdTime) &&
            !isNaN(status.lastUpdatedTime) &&
            status.createdTime <= status.lastUpdatedTime &&
            status.runtimeStatus === df.OrchestrationRuntimeStatus.Completed,
        status,
    );

    // DurableOrchestrationStatus keeps only its known fields and reads `history`, while the
    // extension answers with `historyEvents`: the history is on the wire (checked in the
    // exchange) but not on the returned object.
    const before = requests.length;
    status = await client.getStatus(namedId, { showHistory: true, showHistoryOutput: true, showInput: true });
    const historyRequest = requests[before];
    check(
        "getStatus({showHistory, showHistoryOutput, showInput}) sends the three flags",
        /showHistory=true/.test(historyRequest.url) && /showHistoryOutput=true/.test(historyRequest.url) && /showInput=true/.test(historyRequest.url),
        historyRequest.url,
    );
    const raw = await plainGet(historyRequest.url);
    const events = JSON.parse(raw.body).historyEvents || [];
    const kinds = events.map((e) => e.EventType);
    check(
        "... and the host answers with historyEvents carrying the activity results",
        kinds[0] === "ExecutionStarted" &&
            kinds.at(-1) === "ExecutionCompleted" &&
            equal(events.filter((e) => e.EventType === "TaskCompleted").map((e) => e.Result), HELLO),
        raw.body,
    );

    status = await client.getStatus(fanId, { showInput: true });
    check("getStatus({showInput}) returns the input", status.input === 3, status);

    error = await raises(client.getStatus(`${PREFIX}does-not-exist`));
    check("getStatus of an unknown id (404) rejects", error && /404/.test(error.message), String(error));

    // --- raiseEvent ----------------------------------------------------------------------
    const approvalId = await client.startNew("E4_Approval", { instanceId: `${PREFIX}approval`, input: 300 });
    status = await waitRunning(client, approvalId, "E4_Approval starts waiting");
    check("E4_Approval is Running with its custom status", status.customStatus === "waiting for approval", status);
    error = await raises(client.startNew("E4_Approval", { instanceId: approvalId, input: 300 }));
    check("startNew with the id of a running instance rejects (409)", error && /409/.test(error.message), String(error));
    await client.raiseEvent(approvalId, "Approval", true);
    status = await waitTerminal(client, approvalId, "E4_Approval completes after the event");
    check("raiseEvent Approval -> E4_Approval Completed 'approved'", status.runtimeStatus === "Completed" && status.output === "approved", status);

    const ticketId = await client.startNew("ReserveTicket", { instanceId: `${PREFIX}ticket`, input: "user-1" });
    const discount = { discount: 10, discountTimeout: 60, bookingUrl: "https://www.myawesomebookingweb.com" };
    const sameKeys = (a, b) => a && typeof a === "object" && Object.keys(b).every((k) => a[k] === b[k]) && Object.keys(a).length === Object.keys(b).length;
    status = await waitFor(client, ticketId, (s) => sameKeys(s.customStatus, discount), "ReserveTicket shows its discount");
    check("ReserveTicket is Running with the discount custom status", status.runtimeStatus === "Running", status);
    await client.raiseEvent(ticketId, "BookingConfirmed", true);
    status = await waitTerminal(client, ticketId, "ReserveTicket completes");
    check("raiseEvent BookingConfirmed true -> output true", status.runtimeStatus === "Completed" && status.output === true, status);
    check(
        "ReserveTicket's final custom status",
        equal(status.customStatus, { message: "Thank you for confirming your booking." }),
        status,
    );

    error = await raises(client.raiseEvent(ticketId, "BookingConfirmed", true));
    check("raiseEvent on a completed instance (410) resolves", error === undefined, String(error));
    error = await raises(client.raiseEvent(`${PREFIX}does-not-exist`, "Approval", true));
    check("raiseEvent on an unknown instance (404) rejects 'No instance'", error && /No instance/.test(error.message), String(error));

    // --- terminate -----------------------------------------------------------------------
    const doomedId = await client.startNew("E4_Approval", { instanceId: `${PREFIX}terminate`, input: 300 });
    await waitRunning(client, doomedId, "E4_Approval (terminate) starts waiting");
    const reason = "no longer needed by the node client";
    await client.terminate(doomedId, reason);
    status = await waitTerminal(client, doomedId, "terminated instance stops");
    check("terminate(reason with spaces) -> Terminated", status.runtimeStatus === "Terminated", status);
    check("the termination reason is the output", status.output === reason, status);
    error = await raises(client.terminate(doomedId, "again"));
    check("terminate of a finished instance (410) resolves", error === undefined, String(error));
    error = await raises(client.terminate(`${PREFIX}does-not-exist`, "why not"));
    check("terminate of an unknown instance (404) rejects", error && /No instance/.test(error.message), String(error));

    // --- suspend / resume ----------------------------------------------------------------
    const pausedId = await client.startNew("E4_Approval", { instanceId: `${PREFIX}suspend`, input: 3600 });
    await waitRunning(client, pausedId, "E4_Approval (suspend) starts waiting");
    await client.suspend(pausedId, "pausing for a while");
    status = await waitFor(client, pausedId, (s) => s.runtimeStatus === "Suspended", "instance is Suspended");
    check("suspend(reason) -> Suspended", status.runtimeStatus === "Suspended", status);
    await client.raiseEvent(pausedId, "Approval", true);
    await sleep(500);
    status = await client.getStatus(pausedId);
    check("an event raised while suspended waits: still Suspended", status.runtimeStatus === "Suspended", status);
    await client.resume(pausedId, "carry on");
    status = await waitTerminal(client, pausedId, "resumed instance completes");
    check("resume(reason) -> the kept event completes it 'approved'", status.runtimeStatus === "Completed" && status.output === "approved", status);
    error = await raises(client.suspend(`${PREFIX}does-not-exist`, "x"));
    check("suspend of an unknown instance (404) rejects", error && /No instance/.test(error.message), String(error));
    error = await raises(client.resume(`${PREFIX}does-not-exist`, "x"));
    check("resume of an unknown instance (404) rejects", error && /No instance/.test(error.message), String(error));

    // --- rewind --------------------------------------------------------------------------
    const failingId = await client.startNew("FailAlways", { instanceId: `${PREFIX}rewind` });
    status = await waitTerminal(client, failingId, "FailAlways fails");
    check("FailAlways ends Failed", status.runtimeStatus === "Failed", status);
    const lastUpdated = status.lastUpdatedTime;
    await client.rewind(failingId, "the activity is fixed now");
    check("rewind(reason with spaces) of a Failed instance is accepted (202)", true);
    status = await waitFor(
        client,
        failingId,
        (s) => s.runtimeStatus === "Failed" && s.lastUpdatedTime > lastUpdated,
        "rewound instance runs the activity again and fails again",
    );
    check("the rewound instance ran again and is Failed again", status.runtimeStatus === "Failed", status);
    error = await raises(client.rewind(namedId, "it did not fail"));
    check("rewind of a Completed instance rejects", error !== undefined, String(error));
    error = await raises(client.rewind(`${PREFIX}does-not-exist`, "x"));
    check("rewind of an unknown instance (404) rejects", error !== undefined, String(error));

    // --- getStatusAll / getStatusBy (paging through x-ms-continuation-token) --------------
    const waitingId = await client.startNew("E4_Approval", { instanceId: `${PREFIX}list-running`, input: 300 });
    await waitRunning(client, waitingId, "E4_Approval (list) starts waiting");
    const many = [];
    for (let n = 0; n < PAGING_INSTANCES; n += 1) {
        many.push(await client.startNew("E1_HelloSequence", { instanceId: `${PREFIX}page-${String(n).padStart(3, "0")}` }));
    }
    for (const id of many) await waitTerminal(client, id, "paging instances complete");
    const ours = [helloId, fanId, namedId, approvalId, ticketId, doomedId, pausedId, failingId, waitingId, ...many];

    let first = requests.length;
    const everything = await client.getStatusAll();
    let pages = requests.slice(first);
    check(
        "getStatusAll returns the raw status objects",
        Array.isArray(everything) && everything.every((s) => typeof s.instanceId === "string" && typeof s.runtimeStatus === "string"),
        everything.slice(0, 3),
    );
    check(
        `getStatusAll followed x-ms-continuation-token (${pages.length} requests for ${everything.length} instances)`,
        pages.length > 1 && pages.slice(1).every((config) => config.headers["x-ms-continuation-token"]),
        pages.map((config) => `${config.url} token=${config.headers?.["x-ms-continuation-token"]}`),
    );
    const listed = everything.map((s) => s.instanceId);
    check("getStatusAll: no instance twice across the pages", new Set(listed).size === listed.length, listed.length);
    const missing = ours.filter((id) => !listed.includes(id));
    check("getStatusAll lists every instance of this run", missing.length === 0, missing);

    const now = new Date(Date.now() + 1000);
    first = requests.length;
    const completed = await client.getStatusBy({ createdTimeFrom: runStart, createdTimeTo: now, runtimeStatus: [df.OrchestrationRuntimeStatus.Completed] });
    pages = requests.slice(first);
    const completedIds = completed.map((s) => s.instanceId);
    const wantCompleted = [helloId, fanId, namedId, approvalId, ticketId, pausedId, ...many];
    check(
        `getStatusBy(createdTimeFrom/To, [Completed]) has this run's completed instances (${pages.length} pages)`,
        wantCompleted.every((id) => completedIds.includes(id)),
        wantCompleted.filter((id) => !completedIds.includes(id)),
    );
    check(
        "... and only Completed ones",
        completed.every((s) => s.runtimeStatus === "Completed") && ![doomedId, failingId, waitingId].some((id) => completedIds.includes(id)),
        completed.filter((s) => s.runtimeStatus !== "Completed"),
    );
    const several = await client.getStatusBy({ createdTimeFrom: runStart, createdTimeTo: now, runtimeStatus: ["Running", "Failed", "Terminated"] });
    const severalIds = several.map((s) => s.instanceId);
    check(
        "getStatusBy with a runtimeStatus list [Running, Failed, Terminated]",
        [waitingId, failingId, doomedId].every((id) => severalIds.includes(id)) &&
            several.every((s) => ["Running", "Failed", "Terminated"].includes(s.runtimeStatus)),
        several.map((s) => [s.instanceId, s.runtimeStatus]),
    );
    const earlier = await client.getStatusBy({
        createdTimeFrom: new Date(runStart.getTime() - 86400000),
        createdTimeTo: new Date(runStart.getTime() - 3600000),
    });
    check(
        "getStatusBy with a created-time window before this run has none of its instances",
        !earlier.some((s) => ours.includes(s.instanceId)),
        earlier.map((s) => s.instanceId),
    );

    // --- HTTP helpers ----------------------------------------------------------------------
    let response = client.createCheckStatusResponse(request(`${BASE}/api/orchestrators/E1_HelloSequence`), helloId);
    let payload = await response.json();
    check(
        "createCheckStatusResponse: 202, Location = statusQueryGetUri, Retry-After",
        response.status === 202 && response.headers.get("location") === payload.statusQueryGetUri && response.headers.get("retry-after") === "10",
        { status: response.status, headers: Object.fromEntries(response.headers) },
    );
    check(
        "... its payload has the id and every management URL for this instance",
        payload.id === helloId && Object.entries(payload).every(([k, v]) => k === "id" || v.includes(`/instances/${helloId}`)),
        payload,
    );
    let got = await plainGet(payload.statusQueryGetUri);
    check("GET statusQueryGetUri from the payload -> 200 Completed", got.status === 200 && JSON.parse(got.body).runtimeStatus === "Completed", got);

    const management = client.createHttpManagementPayload(fanId);
    check(
        "createHttpManagementPayload: id and URLs on the binding's base",
        management.id === fanId &&
            management.statusQueryGetUri.startsWith(`${WEBHOOK}/instances/${fanId}?`) &&
            management.sendEventPostUri.startsWith(`${WEBHOOK}/instances/${fanId}/raiseEvent/{eventName}`) &&
            ["terminatePostUri", "rewindPostUri", "purgeHistoryDeleteUri", "suspendPostUri", "resumePostUri"].every((k) => management[k]),
        management,
    );
    got = await plainGet(management.statusQueryGetUri);
    check("GET its statusQueryGetUri -> 200 output 14", got.status === 200 && JSON.parse(got.body).output === 14, got);

    const quickId = await client.startNew("E1_HelloSequence", { instanceId: `${PREFIX}wait-done` });
    response = await client.waitForCompletionOrCreateCheckStatusResponse(request(`${BASE}/api/start`), quickId, {
        timeoutInMilliseconds: 20000,
        retryIntervalInMilliseconds: 200,
    });
    check(
        "waitForCompletionOrCreateCheckStatusResponse (completes) -> 200 with the output",
        response.status === 200 && equal(await response.json(), HELLO),
        response.status,
    );

    const slowId = await client.startNew("E4_Approval", { instanceId: `${PREFIX}wait-timeout`, input: 300 });
    await waitRunning(client, slowId, "E4_Approval (wait) starts waiting");
    response = await client.waitForCompletionOrCreateCheckStatusResponse(request(`${BASE}/api/start`), slowId, {
        timeoutInMilliseconds: 1500,
        retryIntervalInMilliseconds: 300,
    });
    payload = await response.json();
    check(
        "waitForCompletionOrCreateCheckStatusResponse (times out) -> 202 payload",
        response.status === 202 && payload.id === slowId && response.headers.get("location") === payload.statusQueryGetUri,
        { status: response.status, payload },
    );
    await client.terminate(slowId, "done waiting");

    response = await client.waitForCompletionOrCreateCheckStatusResponse(request(`${BASE}/api/start`), failingId, {
        timeoutInMilliseconds: 5000,
        retryIntervalInMilliseconds: 200,
    });
    payload = await response.json();
    check(
        "waitForCompletionOrCreateCheckStatusResponse (Failed) -> 500 with the status",
        response.status === 500 && payload.runtimeStatus === "Failed" && payload.instanceId === failingId,
        { status: response.status, payload },
    );

    response = await client.waitForCompletionOrCreateCheckStatusResponse(request(`${BASE}/api/start`), doomedId, {
        timeoutInMilliseconds: 5000,
        retryIntervalInMilliseconds: 200,
    });
    payload = await response.json();
    check(
        "waitForCompletionOrCreateCheckStatusResponse (Terminated) -> 200 with the status",
        response.status === 200 && payload.runtimeStatus === "Terminated" && payload.instanceId === doomedId,
        { status: response.status, payload },
    );

    // --- purgeInstanceHistory / purgeInstanceHistoryBy ------------------------------------
    let result = await client.purgeInstanceHistory(helloId);
    check("purgeInstanceHistory of a completed instance -> instancesDeleted 1", result.instancesDeleted === 1, result);
    error = await raises(client.getStatus(helloId));
    check("getStatus after the purge -> 404", error && /404/.test(error.message), String(error));
    result = await client.purgeInstanceHistory(helloId);
    check("purgeInstanceHistory of a purged instance (404) -> instancesDeleted 0", result.instancesDeleted === 0, result);

    await waitTerminal(client, slowId, "terminated wait-timeout instance stops");
    const batchFrom = new Date(Date.now() - 1);
    const batch = [];
    for (let n = 0; n < 3; n += 1) batch.push(await client.startNew("E1_HelloSequence", { instanceId: `${PREFIX}purge-${n}` }));
    const keepId = await client.startNew("E4_Approval", { instanceId: `${PREFIX}purge-running`, input: 300 });
    for (const id of batch) await waitTerminal(client, id, "purge batch completes");
    await waitRunning(client, keepId, "E4_Approval (purge) starts waiting");
    const batchTo = new Date(Date.now() + 1);
    result = await client.purgeInstanceHistoryBy({
        createdTimeFrom: batchFrom,
        createdTimeTo: batchTo,
        runtimeStatus: [df.OrchestrationRuntimeStatus.Completed],
    });
    check("purgeInstanceHistoryBy(created time window, [Completed]) -> instancesDeleted 3", result.instancesDeleted === 3, result);
    const gone = await Promise.all(batch.map((id) => raises(client.getStatus(id))));
    const kept = await client.getStatus(keepId);
    check(
        "the purged instances are gone, the running one in the window is kept",
        gone.every((e) => e && /404/.test(e.message)) && kept.runtimeStatus === "Running",
        { gone: gone.map(String), kept },
    );
    result = await client.purgeInstanceHistoryBy({ createdTimeFrom: batchFrom, createdTimeTo: batchTo, runtimeStatus: ["Completed"] });
    check("purgeInstanceHistoryBy matching nothing (404) -> instancesDeleted 0", result.instancesDeleted === 0, result);
    await client.terminate(keepId, "cleanup");

    // --- startNew without input ------------------------------------------------------------
    // With no input the client still sends a body: JSON.stringify'd "" (the two bytes `""`).
    // E4_Approval treats a missing input as its default timeout of 300 s.
    const defaultId = await client.startNew("E4_Approval", { instanceId: `${PREFIX}no-input` });
    status = await waitFor(client, defaultId, (s) => s.runtimeStatus !== "Pending" && (s.runtimeStatus !== "Running" || s.customStatus !== null), "E4_Approval without input runs");
    check(
        "startNew E4_Approval without input (body \"\") waits for approval with its default timeout",
        status.runtimeStatus === "Running" && status.customStatus === "waiting for approval",
        status,
    );
    await client.terminate(defaultId, "cleanup");

    // --- entities: signalEntity and readEntityState on the Counter example -------------------
    const counter = new df.EntityId("Counter", `${PREFIX}counter`);
    const absent = await client.readEntityState(counter);
    check("readEntityState of an entity that does not exist (404) -> entityExists false", !absent.entityExists, absent);
    await client.signalEntity(counter, "add", 5);
    await client.signalEntity(new df.EntityId("counter", `${PREFIX}counter`), "add", 2);
    const entityDeadline = Date.now() + 30000;
    let entity = await client.readEntityState(counter);
    while (!(entity.entityExists && entity.entityState === 7) && Date.now() < entityDeadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        entity = await client.readEntityState(counter);
    }
    check("signalEntity add 5 and add 2 (names ignore case) -> readEntityState 7", entity.entityExists && entity.entityState === 7, entity);
    const unknownEntity = await raises(client.signalEntity(new df.EntityId("NoSuchEntity", "k"), "add", 1));
    check("signalEntity to an unknown entity name (404) rejects", unknownEntity !== undefined, String(unknownEntity));

    console.log(`node client: all ${checks} checks passed in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

try {
    await drive();
} catch (error) {
    fail(`the client threw after the check ${JSON.stringify(lastOk)}`, `\n${error && error.stack ? error.stack : error}`);
}
