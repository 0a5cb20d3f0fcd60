"""Drives every method of the official Python Durable Functions client against our host.

    target/clients/venv/bin/python tests/clients/python_client.py http://127.0.0.1:PORT

`azure.durable_functions.DurableOrchestrationClient` is built exactly as the Functions
Python worker builds it for a `durableClient` input binding: from the binding's JSON
string, which the Durable extension fills with the task hub name, the creation and
management URL templates and `rpcBaseUrl` (the base URL every client call is sent to),
plus the invocation id. Here `rpcBaseUrl` is `{BASE_URL}/runtime/webhooks/durabletask/`;
nothing else about the client is changed. The script runs the example apps through
every client method, prints one line per check, and exits 1 at the first failure,
printing the client's last HTTP exchanges. Instance ids carry a random suffix, so it can
run again and again against the same host.
"""

import asyncio
import collections
import json
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import azure.functions as func
from azure.durable_functions.models.utils import http_utils
from azure.durable_functions import DurableOrchestrationClient, EntityId, OrchestrationRuntimeStatus
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

Status = OrchestrationRuntimeStatus
TERMINAL = (Status.Completed, Status.Failed, Status.Terminated, Status.Canceled)
HELLO = ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
TASK_HUB = "DurableFunctionsHub"
ID_PLACEHOLDER = "INSTANCEID"

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else ""
if not BASE.startswith("http"):
    sys.exit("usage: python_client.py http://127.0.0.1:PORT")
WEBHOOK = f"{BASE}/runtime/webhooks/durabletask"
RUN = uuid.uuid4().hex[:8]
PREFIX = f"py-{RUN}-"

# The client's recent HTTP exchanges, printed when a check fails.
EXCHANGES = collections.deque(maxlen=8)
CHECKS = 0
LAST_OK = "(none)"


def fail(name, detail):
    print(f"FAIL {name}: {detail}", flush=True)
    if EXCHANGES:
        print("last HTTP exchanges of the client (oldest first):", flush=True)
        for line in EXCHANGES:
            print(f"  {line}", flush=True)
    sys.exit(1)


def check(name, condition, detail=""):
    global CHECKS, LAST_OK
    if not condition:
        fail(name, detail)
    CHECKS += 1
    LAST_OK = name
    print(f"ok   {name}", flush=True)


def client_binding_json():
    """The durableClient binding data, shaped like the one the Durable extension sends."""
    query = f"taskHub={TASK_HUB}&connection=Storage"
    instance = f"{WEBHOOK}/instances/{ID_PLACEHOLDER}"
    orchestrators = f"{WEBHOOK}/orchestrators/{{functionName}}[/{{instanceId}}]"
    return json.dumps(
        {
            "taskHubName": TASK_HUB,
            "creationUrls": {
                "createNewInstancePostUri": f"{orchestrators}?{query}",
                "createAndWaitOnNewInstancePostUri": (
                    f"{orchestrators}?timeout={{timeoutInSeconds}}"
                    f"&pollingInterval={{intervalInSeconds}}&{query}"
                ),
            },
            "managementUrls": {
                "id": ID_PLACEHOLDER,
                "statusQueryGetUri": f"{instance}?{query}",
                "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
                "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
                "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
                "purgeHistoryDeleteUri": f"{instance}?{query}",
                "restartPostUri": f"{instance}/restart?{query}",
                "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
                "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
            },
            "baseUrl": WEBHOOK,
            "requiredQueryStringParameters": query,
            "rpcBaseUrl": f"{WEBHOOK}/",
            "httpBaseUrl": "",
        }
    )


def record_exchanges(client):
    """Wraps the client's three HTTP helpers to remember each request and its response.

    Observation only: the original helper still makes the request and its result is
    passed through untouched."""

    def wrap(method, original):
        async def recorded(url, *args, **kwargs):
            body = args[0] if args and method == "POST" else kwargs.get("data")
            try:
                response = await original(url, *args, **kwargs)
            except Exception as error:  # noqa: BLE001 - recorded and re-raised
                EXCHANGES.append(f"{method} {url} body={body!r} -> raised {error!r}")
                raise
            EXCHANGES.append(f"{method} {url} body={body!r} -> {response[0]} {response[1]!r:.400}")
            return response

        return recorded

    client._post_async_request = wrap("POST", client._post_async_request)
    client._get_async_request = wrap("GET", client._get_async_request)
    client._delete_async_request = wrap("DELETE", client._delete_async_request)


def http_request(url, method="POST"):
    """An azure.functions.HttpRequest as the Functions worker hands one to an HTTP trigger."""
    return func.HttpRequest(
        method=method,
        url=url,
        headers={"Content-Type": "application/json"},
        params={},
        route_params={},
        body=b"",
    )


def plain_get(url):
    """GET a management URL the way an HTTP caller polling statusQueryGetUri would."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def utc_now():
    return datetime.now(timezone.utc)


async def wait_for(client, instance_id, done, what, timeout=60.0):
    """Polls get_status until `done(status)` holds."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = await client.get_status(instance_id)
        if status and done(status):
            return status
        await asyncio.sleep(0.1)
    last = status.to_json() if status else status
    fail(what, f"instance {instance_id} did not get there within {timeout}s; last status {last}")


async def wait_terminal(client, instance_id, what):
    return await wait_for(client, instance_id, lambda s: s.runtime_status in TERMINAL, what)


async def wait_running(client, instance_id, what):
    """Until the orchestrator has run its first episode (it sets a custom status then)."""
    return await wait_for(
        client,
        instance_id,
        lambda s: s.runtime_status == Status.Running and s.custom_status is not None,
        what,
    )


async def raises(awaitable):
    try:
        await awaitable
    except Exception as error:  # noqa: BLE001 - the client raises plain Exception
        return error
    return None


async def main():
    try:
        await drive()
    except Exception:  # noqa: BLE001 - any client exception is a failed check
        fail(f"the client raised after the check {LAST_OK!r}", "\n" + traceback.format_exc())
    finally:
        # The client keeps one aiohttp session per process; close it before the loop ends.
        await http_utils._close_session()


async def drive():
    started = time.monotonic()
    # The worker passes the invocation id too; the client then sends it as the
    # X-Azure-Functions-InvocationId header on start, raise, terminate, suspend, ...
    client = DurableOrchestrationClient(client_binding_json(), str(uuid.uuid4()))
    record_exchanges(client)
    run_start = utc_now() - timedelta(seconds=1)
    print(f"python client against {WEBHOOK}/ (run {RUN})", flush=True)

    # --- start_new ---------------------------------------------------------------------
    hello_id = await client.start_new("E1_HelloSequence")
    check("start_new E1_HelloSequence (no input, no id) returns a generated id",
          isinstance(hello_id, str) and hello_id != "", repr(hello_id))
    status = await wait_terminal(client, hello_id, "E1_HelloSequence completes")
    check("E1_HelloSequence Completed with the three greetings",
          status.runtime_status == Status.Completed and status.output == HELLO, status.to_json())

    fan_id = await client.start_new("E2_FanOutFanIn", client_input=3)
    status = await wait_terminal(client, fan_id, "E2_FanOutFanIn completes")
    check("start_new E2_FanOutFanIn with input 3 (double-encoded by the client) -> 14",
          status.runtime_status == Status.Completed and status.output == 14, status.to_json())

    named_id = f"{PREFIX}hello"
    returned = await client.start_new("E1_HelloSequence", instance_id=named_id)
    check("start_new with an explicit instance id returns that id", returned == named_id, repr(returned))
    await wait_terminal(client, named_id, "named E1_HelloSequence completes")

    error = await raises(client.start_new("NoSuchOrchestrator"))
    check("start_new of an unknown orchestrator raises with the host's ExceptionMessage",
          error is not None and "NoSuchOrchestrator" in str(error), repr(error))

    # --- get_status --------------------------------------------------------------------
    status = await client.get_status(named_id)
    check("get_status: name, instance_id, times, runtime status",
          status.name == "E1_HelloSequence" and status.instance_id == named_id
          and status.created_time is not None and status.last_updated_time is not None
          and status.created_time <= status.last_updated_time
          and status.runtime_status == Status.Completed, status.to_json())
    check("get_status without show_history carries no history",
          status.history is None and getattr(status, "historyEvents", None) is None, vars(status))

    status = await client.get_status(named_id, show_history=True, show_history_output=True,
                                     show_input=True)
    # The extension answers with `historyEvents`; the Python client has no field of that
    # name and keeps it as a plain attribute (its own `history` stays None).
    events = getattr(status, "historyEvents", None)
    check("get_status(show_history, show_history_output, show_input) returns historyEvents",
          isinstance(events, list) and len(events) >= 5, vars(status))
    kinds = [event.get("EventType") for event in events]
    check("historyEvents: ExecutionStarted, three TaskCompleted, ExecutionCompleted",
          kinds[0] == "ExecutionStarted" and kinds.count("TaskCompleted") == 3
          and kinds[-1] == "ExecutionCompleted", kinds)
    results = [event.get("Result") for event in events if event.get("EventType") == "TaskCompleted"]
    check("historyEvents include the activity outputs (show_history_output)", results == HELLO, results)

    status = await client.get_status(fan_id, show_input=True)
    check("get_status(show_input) returns the input the client sent",
          status.input_ in (3, "3"), repr(status.input_))

    status = await client.get_status(f"{PREFIX}does-not-exist")
    check("get_status of an unknown id (404) returns a falsy status, no exception",
          not status and status.runtime_status is None, vars(status))

    # --- raise_event -------------------------------------------------------------------
    approval_id = await client.start_new("E4_Approval", f"{PREFIX}approval", 300)
    status = await wait_running(client, approval_id, "E4_Approval starts waiting")
    check("E4_Approval is Running with its custom status",
          status.custom_status == "waiting for approval", status.to_json())
    error = await raises(client.start_new("E4_Approval", approval_id, 300))
    check("start_new with the id of a running instance raises (409)", error is not None, repr(error))
    await client.raise_event(approval_id, "Approval", True)
    status = await wait_terminal(client, approval_id, "E4_Approval completes after the event")
    check("raise_event Approval -> E4_Approval Completed 'approved'",
          status.runtime_status == Status.Completed and status.output == "approved", status.to_json())

    ticket_id = await client.start_new("ReserveTicket", f"{PREFIX}ticket", "user-1")
    expected_custom = {"discount": 10, "discountTimeout": 60,
                       "bookingUrl": "https://www.myawesomebookingweb.com"}
    status = await wait_for(client, ticket_id, lambda s: s.custom_status == expected_custom,
                            "ReserveTicket shows its discount")
    check("ReserveTicket is Running with the discount custom status",
          status.runtime_status == Status.Running, status.to_json())
    await client.raise_event(ticket_id, "BookingConfirmed", True)
    status = await wait_terminal(client, ticket_id, "ReserveTicket completes")
    check("raise_event BookingConfirmed true (sent as the JSON string \"true\") -> output true",
          status.runtime_status == Status.Completed and status.output is True, status.to_json())
    check("ReserveTicket's final custom status",
          status.custom_status == {"message": "Thank you for confirming your booking."},
          status.to_json())

    error = await raises(client.raise_event(ticket_id, "BookingConfirmed", True))
    check("raise_event on a completed instance (410) raises 'is gone'",
          error is not None and "gone" in str(error), repr(error))
    error = await raises(client.raise_event(f"{PREFIX}does-not-exist", "Approval", True))
    check("raise_event on an unknown instance (404) raises 'No instance'",
          error is not None and "No instance" in str(error), repr(error))

    # --- terminate ---------------------------------------------------------------------
    doomed_id = await client.start_new("E4_Approval", f"{PREFIX}terminate", 300)
    await wait_running(client, doomed_id, "E4_Approval (terminate) starts waiting")
    reason = "no longer needed by the python client"
    await client.terminate(doomed_id, reason)
    status = await wait_terminal(client, doomed_id, "terminated instance stops")
    check("terminate(reason with spaces) -> Terminated",
          status.runtime_status == Status.Terminated, status.to_json())
    check("the termination reason is the output", status.output == reason, repr(status.output))
    error = await raises(client.terminate(doomed_id, "again"))
    check("terminate of a finished instance (410) does not raise", error is None, repr(error))
    error = await raises(client.terminate(f"{PREFIX}does-not-exist", "why not"))
    check("terminate of an unknown instance (404) raises", error is not None, repr(error))

    # --- suspend / resume --------------------------------------------------------------
    paused_id = await client.start_new("E4_Approval", f"{PREFIX}suspend", 3600)
    await wait_running(client, paused_id, "E4_Approval (suspend) starts waiting")
    await client.suspend(paused_id, "pausing for a while")
    status = await wait_for(client, paused_id, lambda s: s.runtime_status == Status.Suspended,
                            "instance is Suspended")
    check("suspend(reason) -> Suspended", status.runtime_status == Status.Suspended, status.to_json())
    await client.raise_event(paused_id, "Approval", True)
    await asyncio.sleep(0.5)
    status = await client.get_status(paused_id)
    check("an event raised while suspended waits: still Suspended",
          status.runtime_status == Status.Suspended, status.to_json())
    await client.resume(paused_id, "carry on")
    status = await wait_terminal(client, paused_id, "resumed instance completes")
    check("resume(reason) -> the kept event completes it 'approved'",
          status.runtime_status == Status.Completed and status.output == "approved", status.to_json())
    error = await raises(client.suspend(f"{PREFIX}does-not-exist", "x"))
    check("suspend of an unknown instance (404) raises", error is not None, repr(error))
    error = await raises(client.resume(f"{PREFIX}does-not-exist", "x"))
    check("resume of an unknown instance (404) raises", error is not None, repr(error))

    # --- rewind ------------------------------------------------------------------------
    failing_id = await client.start_new("FailAlways", f"{PREFIX}rewind")
    status = await wait_terminal(client, failing_id, "FailAlways fails")
    check("FailAlways ends Failed", status.runtime_status == Status.Failed, status.to_json())
    failed_at = status.last_updated_time
    await client.rewind(failing_id, "the activity is fixed now")
    check("rewind(reason with spaces) of a Failed instance is accepted", True)
    status = await wait_for(
        client, failing_id,
        lambda s: s.runtime_status == Status.Failed and s.last_updated_time > failed_at,
        "rewound instance runs the activity again and fails again")
    check("the rewound instance ran again and is Failed again",
          status.runtime_status == Status.Failed, status.to_json())
    error = await raises(client.rewind(named_id, "it did not fail"))
    check("rewind of a Completed instance raises", error is not None, repr(error))
    error = await raises(client.rewind(f"{PREFIX}does-not-exist", "x"))
    check("rewind of an unknown instance (404) raises 'No instance'",
          error is not None and "No instance" in str(error), repr(error))

    # --- restart -----------------------------------------------------------------------
    restarted = await client.restart(named_id, restart_with_new_instance_id=True)
    # The extension answers a restart with the check-status payload; the Python client
    # returns that body as is (a dict), or the old id when the body is empty.
    new_id = restarted.get("id") if isinstance(restarted, dict) else restarted
    check("restart(restart_with_new_instance_id=True) gives a new instance id",
          isinstance(new_id, str) and new_id not in ("", named_id), repr(restarted))
    status = await wait_terminal(client, new_id, "restarted (new id) instance completes")
    check("the restarted instance (new id) completes with the same output",
          status.runtime_status == Status.Completed and status.output == HELLO
          and status.name == "E1_HelloSequence", status.to_json())
    old = await client.get_status(named_id)
    restarted = await client.restart(named_id, restart_with_new_instance_id=False)
    same_id = restarted.get("id") if isinstance(restarted, dict) else restarted
    check("restart(restart_with_new_instance_id=False) keeps the id", same_id == named_id, repr(restarted))
    status = await wait_for(client, named_id,
                            lambda s: s.runtime_status == Status.Completed
                            and s.created_time > old.created_time,
                            "restarted (same id) instance completes again")
    check("the instance restarted in place completes again", status.output == HELLO, status.to_json())

    # --- get_status_all / get_status_by ------------------------------------------------
    waiting_id = await client.start_new("E4_Approval", f"{PREFIX}list-running", 300)
    await wait_running(client, waiting_id, "E4_Approval (list) starts waiting")
    ours = {hello_id, fan_id, named_id, approval_id, ticket_id, doomed_id, paused_id,
            failing_id, new_id, waiting_id}

    everything = await client.get_status_all()
    check("get_status_all returns DurableOrchestrationStatus objects",
          isinstance(everything, list) and everything
          and all(isinstance(s, DurableOrchestrationStatus) and s.instance_id and s.runtime_status
                  for s in everything), [vars(s) for s in everything[:3]])
    listed = {s.instance_id for s in everything}
    code, headers, _ = plain_get(f"{WEBHOOK}/instances/")
    token = {k.lower(): v for k, v in headers.items()}.get("x-ms-continuation-token")
    if token:
        # The Python client reads only the first page: it never sends the token back.
        check("get_status_all with more than one page: the client returns the first page only",
              len(everything) >= 1, len(everything))
    else:
        check("get_status_all lists every instance of this run", ours <= listed, sorted(ours - listed))

    now = utc_now() + timedelta(seconds=1)
    completed = await client.get_status_by(created_time_from=run_start, created_time_to=now,
                                           runtime_status=[Status.Completed])
    completed_ids = {s.instance_id for s in completed}
    check("get_status_by(created_time_from/to, [Completed]) has this run's completed instances",
          {hello_id, fan_id, named_id, approval_id, ticket_id, paused_id, new_id} <= completed_ids,
          sorted({hello_id, fan_id, named_id, approval_id, ticket_id, paused_id, new_id} - completed_ids))
    check("... and only Completed ones",
          all(s.runtime_status == Status.Completed for s in completed)
          and not {doomed_id, failing_id, waiting_id} & completed_ids,
          [(s.instance_id, s.runtime_status) for s in completed])

    several = await client.get_status_by(created_time_from=run_start, created_time_to=now,
                                         runtime_status=[Status.Running, Status.Failed,
                                                         Status.Terminated])
    several_ids = {s.instance_id for s in several}
    check("get_status_by with a runtime_status list [Running, Failed, Terminated]",
          {waiting_id, failing_id, doomed_id} <= several_ids
          and all(s.runtime_status in (Status.Running, Status.Failed, Status.Terminated)
                  for s in several), [(s.instance_id, s.runtime_status) for s in several])

    before_run = await client.get_status_by(created_time_from=run_start - timedelta(days=1),
                                            created_time_to=run_start - timedelta(hours=1))
    check("get_status_by with a created-time window before this run has none of its instances",
          not ours & {s.instance_id for s in before_run}, [s.instance_id for s in before_run])

    by_prefix = await client.get_status_by(instance_id_prefix=PREFIX)
    expected = {named_id, approval_id, ticket_id, doomed_id, paused_id, failing_id, waiting_id}
    check("get_status_by(instance_id_prefix) returns exactly this run's named instances",
          {s.instance_id for s in by_prefix} == expected,
          sorted(s.instance_id for s in by_prefix))

    # --- HTTP helpers: create_check_status_response & co --------------------------------
    request = http_request(f"{BASE}/api/orchestrators/E1_HelloSequence")
    response = client.create_check_status_response(request, hello_id)
    payload = json.loads(response.get_body())
    check("create_check_status_response: 202, Location = statusQueryGetUri, Retry-After",
          response.status_code == 202
          and response.headers.get("Location") == payload["statusQueryGetUri"]
          and response.headers.get("Retry-After") == "10", (response.status_code, dict(response.headers)))
    check("... its payload has the id and every management URL for this instance",
          payload["id"] == hello_id
          and all(f"/instances/{hello_id}" in payload[k] for k in payload if k != "id"), payload)
    code, _, body = plain_get(payload["statusQueryGetUri"])
    check("GET statusQueryGetUri from the payload -> 200 Completed",
          code == 200 and json.loads(body).get("runtimeStatus") == "Completed", (code, body))

    management = client.create_http_management_payload(fan_id)
    check("create_http_management_payload: id and URLs on the binding's base",
          management["id"] == fan_id
          and management["statusQueryGetUri"].startswith(f"{WEBHOOK}/instances/{fan_id}?")
          and management["sendEventPostUri"].startswith(f"{WEBHOOK}/instances/{fan_id}/raiseEvent/{{eventName}}")
          and set(management) >= {"statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                                  "rewindPostUri", "purgeHistoryDeleteUri", "suspendPostUri",
                                  "resumePostUri"}, management)
    code, _, body = plain_get(management["statusQueryGetUri"])
    check("GET its statusQueryGetUri -> 200 output 14",
          code == 200 and json.loads(body).get("output") == 14, (code, body))

    links = client.get_client_response_links(http_request("https://functions.example.com/api/start"),
                                             fan_id)
    check("get_client_response_links takes the request's origin",
          links["statusQueryGetUri"].startswith(
              f"https://functions.example.com/runtime/webhooks/durabletask/instances/{fan_id}?"), links)

    quick_id = await client.start_new("E1_HelloSequence", f"{PREFIX}wait-done")
    response = await client.wait_for_completion_or_create_check_status_response(
        http_request(f"{BASE}/api/start"), quick_id, timeout_in_milliseconds=20000,
        retry_interval_in_milliseconds=200)
    check("wait_for_completion_or_create_check_status_response (completes) -> 200 with the output",
          response.status_code == 200 and json.loads(response.get_body()) == HELLO,
          (response.status_code, response.get_body()))

    slow_id = await client.start_new("E4_Approval", f"{PREFIX}wait-timeout", 300)
    response = await client.wait_for_completion_or_create_check_status_response(
        http_request(f"{BASE}/api/start"), slow_id, timeout_in_milliseconds=1500,
        retry_interval_in_milliseconds=300)
    body = json.loads(response.get_body())
    check("wait_for_completion_or_create_check_status_response (times out) -> 202 payload",
          response.status_code == 202 and body.get("id") == slow_id
          and response.headers.get("Location") == body.get("statusQueryGetUri"),
          (response.status_code, body))
    await client.terminate(slow_id, "done waiting")

    response = await client.wait_for_completion_or_create_check_status_response(
        http_request(f"{BASE}/api/start"), failing_id, timeout_in_milliseconds=5000,
        retry_interval_in_milliseconds=200)
    check("wait_for_completion_or_create_check_status_response (Failed) -> 500 with the status",
          response.status_code == 500
          and json.loads(response.get_body()).get("runtimeStatus") == "Failed",
          (response.status_code, response.get_body()))

    response = await client.wait_for_completion_or_create_check_status_response(
        http_request(f"{BASE}/api/start"), doomed_id, timeout_in_milliseconds=5000,
        retry_interval_in_milliseconds=200)
    check("wait_for_completion_or_create_check_status_response (Terminated) -> 200 with the status",
          response.status_code == 200
          and json.loads(response.get_body()).get("runtimeStatus") == "Terminated",
          (response.status_code, response.get_body()))

    # --- purge_instance_history / purge_instance_history_by ----------------------------
    result = await client.purge_instance_history(hello_id)
    check("purge_instance_history of a completed instance -> instances_deleted 1",
          result.instances_deleted == 1, vars(result))
    status = await client.get_status(hello_id)
    check("get_status after the purge -> not found (falsy)", not status, vars(status))
    result = await client.purge_instance_history(hello_id)
    check("purge_instance_history of a purged instance (404) -> instances_deleted 0",
          result.instances_deleted == 0, vars(result))

    await wait_terminal(client, slow_id, "terminated wait-timeout instance stops")
    batch_from = utc_now() - timedelta(milliseconds=1)
    batch = [await client.start_new("E1_HelloSequence", f"{PREFIX}purge-{n}") for n in range(3)]
    keep_id = await client.start_new("E4_Approval", f"{PREFIX}purge-running", 300)
    for instance_id in batch:
        await wait_terminal(client, instance_id, "purge batch completes")
    await wait_running(client, keep_id, "E4_Approval (purge) starts waiting")
    batch_to = utc_now() + timedelta(milliseconds=1)
    result = await client.purge_instance_history_by(created_time_from=batch_from,
                                                    created_time_to=batch_to,
                                                    runtime_status=[Status.Completed])
    check("purge_instance_history_by(created time window, [Completed]) -> instances_deleted 3",
          result.instances_deleted == 3, vars(result))
    gone = [await client.get_status(instance_id) for instance_id in batch]
    kept = await client.get_status(keep_id)
    check("the purged instances are gone, the running one in the window is kept",
          not any(gone) and kept and kept.runtime_status == Status.Running,
          ([vars(s) for s in gone], vars(kept)))
    result = await client.purge_instance_history_by(created_time_from=batch_from,
                                                    created_time_to=batch_to,
                                                    runtime_status=[Status.Completed])
    check("purge_instance_history_by matching nothing (404) -> instances_deleted 0",
          result.instances_deleted == 0, vars(result))
    await client.terminate(keep_id, "cleanup")

    # Entities: signal_entity and read_entity_state on the Counter example.
    counter = EntityId("Counter", f"{PREFIX}counter")
    missing = await client.read_entity_state(counter)
    check("read_entity_state of an entity that does not exist (404) -> entity_exists False",
          not missing.entity_exists, vars(missing))
    await client.signal_entity(counter, "add", 5)
    await client.signal_entity(EntityId("counter", f"{PREFIX}counter"), "add", 2)
    deadline = time.monotonic() + 30
    state = await client.read_entity_state(counter)
    while not (state.entity_exists and state.entity_state == 7) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        state = await client.read_entity_state(counter)
    check("signal_entity add 5 and add 2 (names ignore case) -> read_entity_state 7",
          state.entity_exists and state.entity_state == 7, vars(state))
    error = await raises(client.signal_entity(EntityId("NoSuchEntity", "k"), "add", 1))
    check("signal_entity to an unknown entity name (404) raises", error is not None, repr(error))

    print(f"python client: all {CHECKS} checks passed in {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
