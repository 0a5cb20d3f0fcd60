"""The shared protocol corpus (``tests/protocol/*.json``, described in its README) run
against this SDK's executor and entity batch runner: one test per case.

Every case names one of the fixed test orchestrators or entities below; the Rust and
JavaScript SDKs implement the same ones under the same names, and run the same cases.
"""

import glob
import json
import os
import unittest
from datetime import timedelta

from support import dumps  # noqa: F401 - support puts the SDK on the path

import durable_functions as df
from durable_functions import _model as m

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "protocol")

# ---- the test orchestrators, by corpus name ----


def sequence(context):
    out = []
    for city in ["Tokyo", "Seattle", "London"]:
        out.append((yield context.call_activity("SayHello", city)))
    return out


def fan_out(context):
    n = context.get_input()
    squares = yield context.task_all([context.call_activity("Square", i) for i in range(1, n + 1)])
    return sum(squares)


def all_after_gate(context):
    tasks = [context.call_activity("A"), context.call_activity("B")]
    yield context.call_activity("Gate")
    return (yield context.task_all(tasks))


def all_or_timeout(context):
    both = context.task_all([context.call_activity("Square", 2), context.call_activity("Square", 3)])
    timeout = context.create_timer(context.current_utc_datetime + timedelta(seconds=864_000))
    winner = yield context.task_any([both, timeout])
    return winner.result if winner is both else "timeout"


def sender(context):
    context.send_event("other", "Ping", 1)
    yield context.call_activity("A")


def child(context):
    return (yield context.call_sub_orchestrator("Child", 5))


def status(context):
    yield context.call_activity("A")
    context.set_custom_status("working")
    yield context.call_activity("B")


def observe_replaying(context):
    seen = [context.is_replaying]
    yield context.call_activity("A")
    seen.append(context.is_replaying)
    return seen


def approval(context):
    deadline = context.current_utc_datetime + timedelta(seconds=60)
    timeout = context.create_timer(deadline)
    approved = context.wait_for_external_event("Approval")
    winner = yield context.task_any([timeout, approved])
    if winner is approved:
        return f"approved={dumps(approved.result)}"
    return "timeout"


def two_events(context):
    yield context.call_activity("Prepare")
    first = yield context.wait_for_external_event("E")
    second = yield context.wait_for_external_event("e")
    return [first, second]


def two_waiters(context):
    first = context.wait_for_external_event("E")
    second = context.wait_for_external_event("E")
    return (yield context.task_all([second, first]))


def race_then_wait(context):
    timeout = context.create_timer(context.current_utc_datetime)
    event = context.wait_for_external_event("E")
    winner = yield context.task_any([timeout, event])
    if winner is not timeout:
        raise AssertionError("the timer should have won")
    # A waiter keeps its claim until cancelled (see wait_for_external_event).
    event.cancel()
    return (yield context.wait_for_external_event("E"))


def first_in_list(context):
    yield context.call_activity("Prepare")
    a = context.wait_for_external_event("A")
    b = context.wait_for_external_event("B")
    winner = yield context.task_any([b, a])
    return winner.result


def continue_counter(context):
    total = context.get_input()
    add = yield context.wait_for_external_event("Add")
    context.continue_as_new(total + add)


def carry_unyielded(context):
    # Kept, never yielded: it is handed "Late" and gives it back when the run ends.
    context.wait_for_external_event("Late")
    yield context.wait_for_external_event("Go")
    context.continue_as_new(None)


def wait_event(context):
    return (yield context.wait_for_external_event("E"))


def echo_input(context):
    return context.get_input()
    yield


def retry(context):
    options = df.RetryOptions(5000, 3, backoff_coefficient=2.0)
    return (yield context.call_activity_with_retry("Flaky", options, "x"))


def retry_capped(context):
    options = df.RetryOptions(1000, 5, backoff_coefficient=2.0, max_retry_interval_in_milliseconds=3000)
    return (yield context.call_activity_with_retry("Flaky", options))


def retry_timeout(context):
    options = df.RetryOptions(5000, 10, retry_timeout_in_milliseconds=8000)
    return (yield context.call_activity_with_retry("Flaky", options))


def sub_retry(context):
    return (yield context.call_sub_orchestrator_with_retry("Child", df.RetryOptions(1000, 2), 5, "child-1"))


def retry_awaited_later(context):
    retried = context.call_activity_with_retry("Flaky", df.RetryOptions(1000, 2))
    yield context.call_activity("Other")
    return (yield retried)


def timer(context):
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=10))
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=10))
    return "done"


def guid(context):
    guids = [context.new_guid(), context.new_guid()]
    yield context.create_timer(context.current_utc_datetime)
    guids.append(context.new_guid())
    return guids


def mixed(context):
    uuid = context.new_guid()
    context.set_custom_status({"step": 1})
    greeting = yield context.call_activity("SayHello", "Tokyo")
    context.send_event("other", "Ping", uuid)
    squares = yield context.task_all([context.call_activity("Square", 2), context.call_activity("Square", 3)])
    total = sum(squares)
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=30))
    result = yield context.call_sub_orchestrator("Child", total, instance_id="child-1")
    approved = yield context.wait_for_external_event("Approval")
    context.set_custom_status({"step": 2})
    return [uuid, greeting, total, result, approved, context.new_guid()]


def fail_unhandled(context):
    return (yield context.call_activity("Fail"))


def catch_activity(context):
    try:
        return (yield context.call_activity("Fail"))
    except df.TaskFailedError as error:
        return {"task": error.task_name, "error_type": error.error_type, "message": error.message, "details": error.details}


def entity_call(context):
    counter = df.EntityId("Counter", "k")
    yield context.call_entity(counter, "add", 5)
    return (yield context.call_entity(counter, "get"))


def catch_entity(context):
    try:
        yield context.call_entity(df.EntityId("Account", "a"), "withdraw", 100)
        return "withdrawn"
    except df.TaskFailedError as error:
        return {
            "task": error.task_name,
            "entity": str(error.entity),
            "error_type": error.error_type,
            "message": error.message,
            "details": error.details,
        }


def signaller(context):
    counter = df.EntityId("Counter", "k")
    for _ in range(2):
        context.signal_entity(counter, "add", 1)
    later = context.current_utc_datetime + timedelta(seconds=10)
    context.signal_entity(df.EntityId("counter", "other"), "reset", scheduled_time=later)
    yield context.call_activity("A")
    context.signal_entity(counter, "add", 1)
    return 3


def transfer(context):
    source, target = df.EntityId("Account", "b"), df.EntityId("Account", "a")
    held = yield context.lock_entities([source, target, source])
    balance = yield context.call_entity(source, "balance")
    if balance < 10:
        return False
    yield context.call_entity(source, "withdraw", 10)
    yield context.call_entity(target, "deposit", 10)
    held.release()
    return True


def nested_locks(context):
    errors = []
    try:
        yield context.lock_entities([])
    except df.TaskFailedError as error:
        errors.append(error.error_type)
    outer = yield context.lock_entities(df.EntityId("Account", "a"))
    try:
        yield context.lock_entities(df.EntityId("Account", "b"))
    except df.TaskFailedError as error:
        errors.append(error.error_type)
    outer.release()
    again = yield context.lock_entities(df.EntityId("Account", "b"))
    again.release()
    return errors


def entity_mix(context):
    counter = df.EntityId("Counter", "k")
    context.signal_entity(counter, "reset")
    held = yield context.lock_entities([df.EntityId("Account", "a")])
    values = yield context.task_all(
        [context.call_entity(counter, "get"), context.call_entity(df.EntityId("Account", "a"), "balance")]
    )
    held.release()
    context.signal_entity(counter, "add", sum(values))
    return sum(values)


class NegativeAmount(Exception):
    pass


class UnknownOperation(Exception):
    pass


def counter(context: df.EntityContext):
    """Signals the counter `echo` with what it adds, and fails on negative amounts after
    changing its state and signalling."""
    operation = context.operation_name.lower()
    if operation == "add":
        amount = int(context.get_input())
        context.set_state(context.get_state(lambda: 0) + amount)
        context.signal_entity(df.EntityId("Counter", "echo"), "add", amount)
        if amount < 0:
            raise NegativeAmount("cannot add a negative amount")
    elif operation == "reset":
        context.set_state(0)
    elif operation == "get":
        context.set_result(context.get_state(lambda: 0))
    elif operation == "delete":
        context.delete_state()
    elif operation == "peek":
        context.set_result(context.has_state)
    elif operation == "echo":
        context.set_result(context.get_input())
    else:
        raise UnknownOperation(f"no operation '{operation}'")


ORCHESTRATORS = [
    sequence, fan_out, all_or_timeout, all_after_gate, sender, child, status, observe_replaying, approval,
    two_events, two_waiters, race_then_wait, first_in_list, continue_counter, carry_unyielded, wait_event,
    echo_input, retry, retry_capped, retry_timeout, sub_retry, retry_awaited_later, timer, guid, mixed,
    fail_unhandled, catch_activity, entity_call, catch_entity, signaller, transfer, nested_locks, entity_mix,
]  # fmt: skip


def registry():
    app = df.DFApp()
    for orchestrator in ORCHESTRATORS:
        app.function_name(orchestrator.__name__)(app.orchestration_trigger(context_name="context")(orchestrator))
    app.function_name("counter")(app.entity_trigger(context_name="context")(counter))
    return app._registry()


# ---- corpus JSON to model values ----


def payload(value: dict, key: str):
    """Absent is ``None``; anything else (null included) is its compact JSON text."""
    return dumps(value[key]) if key in value else None


def failure(value: dict) -> m.FailureDetails:
    f = value["failure"]
    return m.FailureDetails(f.get("error-type", ""), f.get("message", ""), f.get("details"))


def event_kind(e: dict):
    kind = e["kind"]
    if kind == "orchestrator-started":
        return m.OrchestratorStarted()
    if kind == "execution-started":
        parent = e.get("parent")
        if parent is not None:
            parent = m.ParentInstance(parent["instance-id"], parent["name"], parent["task-scheduled-id"])
        return m.ExecutionStarted(e["name"], e["instance-id"], payload(e, "input"), parent)
    if kind == "task-completed":
        return m.TaskCompleted(e["task-scheduled-id"], payload(e, "result"))
    if kind == "task-failed":
        return m.TaskFailed(e["task-scheduled-id"], failure(e))
    if kind == "timer-fired":
        return m.TimerFired(e["timer-id"], e["fire-at"])
    if kind == "event-raised":
        return m.EventRaised(e["name"], payload(e, "input"))
    if kind == "sub-orchestration-instance-completed":
        return m.SubOrchestrationCompleted(e["task-scheduled-id"], payload(e, "result"))
    if kind == "sub-orchestration-instance-failed":
        return m.SubOrchestrationFailed(e["task-scheduled-id"], failure(e))
    if kind == "entity-operation-completed":
        return m.EntityOperationCompleted(e["task-scheduled-id"], payload(e, "result"))
    if kind == "entity-operation-failed":
        return m.EntityOperationFailed(e["task-scheduled-id"], failure(e))
    if kind == "entity-lock-granted":
        return m.EntityLockGranted(e["task-scheduled-id"])
    # Every other kind (the events actions created, episode ends) the replay core ignores.
    return m.OtherEvent(kind)


def history_events(events: list) -> list:
    """The events of one episode; an event without a timestamp has the episode's."""
    time = events[0].get("timestamp", 0) if events else 0
    return [m.HistoryEvent(e.get("event-id", -1), e.get("timestamp", time), event_kind(e)) for e in events]


# ---- model values to corpus JSON ----


def value(text):
    return None if text is None else json.loads(text)


def failure_json(f: m.FailureDetails) -> dict:
    return {"error-type": f.error_type, "message": f.message, "details": f.details}


def entity_json(entity: m.WitEntityId) -> dict:
    return {"name": entity.name, "key": entity.key}


def action_json(action: m.Action) -> dict:
    k = action.kind
    if isinstance(k, m.ScheduleTask):
        body = {"kind": "schedule-task", "name": k.name, "input": value(k.input)}
    elif isinstance(k, m.CreateTimer):
        body = {"kind": "create-timer", "fire-at": k.fire_at}
    elif isinstance(k, m.CallSubOrchestration):
        body = {"kind": "call-sub-orchestration", "name": k.name, "instance-id": k.instance_id, "input": value(k.input)}
    elif isinstance(k, m.SendEvent):
        body = {"kind": "send-event", "instance-id": k.instance_id, "name": k.name, "input": value(k.input)}
    elif isinstance(k, m.Complete):
        body = {"kind": "complete", "output": value(k.output)}
    elif isinstance(k, m.Fail):
        body = {"kind": "fail", "failure": failure_json(k.failure)}
    elif isinstance(k, m.ContinueAsNew):
        carried = [{"name": c.name, "input": value(c.input)} for c in k.carried_events]
        body = {"kind": "continue-as-new", "input": value(k.input), "carried-events": carried}
    elif isinstance(k, m.CallEntity):
        body = {"kind": "call-entity", "entity": entity_json(k.entity), "operation": k.operation, "input": value(k.input)}
    elif isinstance(k, m.SignalEntity):
        body = signal_json(k)
    elif isinstance(k, m.LockEntities):
        body = {"kind": "lock-entities", "entities": [entity_json(e) for e in k.entities]}
    elif isinstance(k, m.UnlockEntities):
        body = {"kind": "unlock-entities", "entities": [entity_json(e) for e in k.entities]}
    else:
        raise TypeError(f"unknown action {k!r}")
    body["id"] = action.id
    return body


def signal_json(k) -> dict:
    return {
        "kind": "signal-entity",
        "entity": entity_json(k.entity),
        "operation": k.operation,
        "input": value(k.input),
        "scheduled-time": k.scheduled_time,
    }


def entity_action_json(action) -> dict:
    if isinstance(action, m.SignalEntity):
        return signal_json(action)
    return {"kind": "start-orchestration", "name": action.name, "instance-id": action.instance_id, "input": value(action.input)}


def batch_json(batch: m.BatchResult) -> dict:
    results = [
        {"err": failure_json(r)} if isinstance(r, m.FailureDetails) else {"ok": value(r)} for r in batch.results
    ]
    return {"results": results, "state": value(batch.state), "actions": [entity_action_json(a) for a in batch.actions]}


# ---- comparison ----


def normalize(v):
    """Drops every object member whose value is null: ``none``, ``some("null")`` and an
    absent member compare equal."""
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [normalize(x) for x in v]
    return v


def same(a, b) -> bool:
    """JSON equality: booleans are not numbers."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def matches(expected, actual) -> bool:
    """Equal, except that a ``failure`` or ``err`` object is checked only for the members the
    expectation names, where ``m-contains: [..]`` asks that member ``m`` contain every
    string listed."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return False
        return all(
            (matches_loosely if key in ("failure", "err") else matches)(want, actual[key])
            for key, want in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(matches(w, h) for w, h in zip(expected, actual))
    if isinstance(expected, (dict, list)) or isinstance(actual, (dict, list)):
        return False
    return same(expected, actual)


def matches_loosely(expected, actual) -> bool:
    if not isinstance(expected, dict) or not isinstance(actual, dict):
        return False
    for key, want in expected.items():
        if key.endswith("-contains"):
            text = actual.get(key[: -len("-contains")]) or ""
            if not all(part in text for part in want):
                return False
        elif key not in actual or not matches(want, actual[key]):
            return False
    return True


# ---- running cases ----


def run_orchestration(reg, case: dict, replay: bool) -> list:
    """Runs the episodes of a case in one fresh executor; ``replay`` forces
    ``replaying = true`` and feeds each episode's recorded action events after its events,
    as a replay of the stored history would (the guest must ignore them)."""
    executor = reg.executor(case["orchestrator"], case.get("instance-id", "instance-1"))
    problems = []
    name = "replay" if replay else "live"
    for index, episode in enumerate(case["episodes"]):
        raw = list(episode["events"])
        if replay and "recorded" in episode:
            time = raw[0].get("timestamp", 0)
            raw += [dict(e, timestamp=e.get("timestamp", time)) for e in episode["recorded"]]
            raw.append({"kind": "orchestrator-completed", "timestamp": time})
        replaying = replay or episode.get("replaying", False)
        result = executor.apply(history_events(raw), replaying)
        actual = [normalize(action_json(a)) for a in result.actions]
        expected = normalize(episode["actions"])
        if not matches(expected, actual):
            problems.append(f"{name} episode {index}: expected actions {json.dumps(expected)}, got {json.dumps(actual)}")
        if "custom-status" in episode:
            got = value(result.custom_status)
            if normalize([episode["custom-status"]]) != normalize([got]):
                problems.append(f"{name} episode {index}: expected custom status {episode['custom-status']!r}, got {got!r}")
    return problems


def run_batch_case(reg, case: dict) -> list:
    operations = [m.Operation(op["name"], payload(op, "input")) for op in case["operations"]]
    state = None if case.get("state") is None else dumps(case["state"])
    batch = reg.run_entity(m.WitEntityId(case["id"]["name"], case["id"]["key"]), state, operations)
    actual = normalize(batch_json(batch))
    expected = normalize(case["expect"])
    return [] if matches(expected, actual) else [f"expected {json.dumps(expected)}, got {json.dumps(actual)}"]


def run_case(case: dict) -> list:
    reg = registry()
    if "entity" in case:
        return run_batch_case(reg, case)
    if case.get("mode", "live") == "replay":
        return run_orchestration(reg, case, True)
    problems = run_orchestration(reg, case, False)
    if case.get("replay-check", True):
        problems += run_orchestration(reg, case, True)
    return problems


def load():
    cases = []
    for path in sorted(glob.glob(os.path.join(CORPUS, "*.json"))):
        with open(path, encoding="utf-8") as file:
            for case in json.load(file)["cases"]:
                cases.append((os.path.basename(path), case))
    return cases


class Protocol(unittest.TestCase):
    """One test per corpus case, named ``test_<file>__<case>``."""

    def test_the_corpus_is_there_and_case_names_are_unique(self):
        cases = load()
        self.assertGreaterEqual(len(cases), 50)
        names = [case["name"] for _, case in cases]
        self.assertEqual(len(names), len(set(names)))


def _add_case_test(file: str, case: dict):
    def test(self):
        problems = run_case(case)
        self.assertEqual(problems, [], f"{file}: {case['name']}:\n" + "\n".join(problems))

    stem = file[: -len(".json")]
    setattr(Protocol, f"test_{stem}__{case['name']}", test)


for _file, _case in load():
    _add_case_test(_file, _case)


if __name__ == "__main__":
    unittest.main()
