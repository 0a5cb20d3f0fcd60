"""Test support: the SDK on the import path, history-event and action builders, and
``Host``, a host in miniature.

``Host`` prepends orchestrator-started to every episode, records the events the actions
create (as the real host does) and replays the recorded history into a fresh executor, one
``apply`` per episode or all at once.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import durable_functions as df  # noqa: E402
from durable_functions import _model as m  # noqa: E402

# 2023-11-14T22:13:20Z, in microseconds.
T0 = 1_700_000_000_000_000
SECOND = 1_000_000


def dumps(value) -> str:
    """Compact JSON, as the SDK writes it."""
    return json.dumps(value, separators=(",", ":"))


# ---- history events ----


def event(kind, timestamp=T0, event_id=-1) -> m.HistoryEvent:
    return m.HistoryEvent(event_id, timestamp, kind)


def orchestrator_started(time) -> m.HistoryEvent:
    return event(m.OrchestratorStarted(), time)


def execution_started(name, input=None, instance_id="instance-1", parent=None) -> m.HistoryEvent:
    return event(m.ExecutionStarted(name, instance_id, input, parent))


def task_completed(sequence, result) -> m.HistoryEvent:
    return event(m.TaskCompleted(sequence, dumps(result)))


def failure(error_type, message, details=None) -> m.FailureDetails:
    return m.FailureDetails(error_type, message, details)


def task_failed(sequence, message) -> m.HistoryEvent:
    return event(m.TaskFailed(sequence, failure("FailAlwaysError", message, "trace")))


def timer_fired(sequence, fire_at) -> m.HistoryEvent:
    return event(m.TimerFired(sequence, fire_at))


def event_raised(name, payload) -> m.HistoryEvent:
    return event(m.EventRaised(name, dumps(payload)))


def sub_failed(sequence, error_type, message) -> m.HistoryEvent:
    return event(m.SubOrchestrationFailed(sequence, failure(error_type, message)))


def entity_completed(sequence, result=None) -> m.HistoryEvent:
    return event(m.EntityOperationCompleted(sequence, None if result is None else dumps(result)))


def entity_failed(sequence, error_type, message) -> m.HistoryEvent:
    return event(m.EntityOperationFailed(sequence, failure(error_type, message, "entity trace")))


def lock_granted(sequence) -> m.HistoryEvent:
    return event(m.EntityLockGranted(sequence))


# ---- actions ----


def schedule(sequence, name, input) -> m.Action:
    return m.Action(sequence, m.ScheduleTask(name, dumps(input)))


def timer(sequence, fire_at) -> m.Action:
    return m.Action(sequence, m.CreateTimer(fire_at))


def complete(output) -> m.Action:
    return m.Action(-1, m.Complete(dumps(output)))


def wit_id(name, key) -> m.WitEntityId:
    return m.WitEntityId(name, key)


def call_entity(sequence, name, key, operation, input) -> m.Action:
    return m.Action(sequence, m.CallEntity(wit_id(name, key), operation, dumps(input)))


def signal_entity(sequence, name, key, operation, input, at=None) -> m.Action:
    return m.Action(sequence, m.SignalEntity(wit_id(name, key), operation, dumps(input), at))


def lock(sequence, name, *keys) -> m.Action:
    return m.Action(sequence, m.LockEntities([wit_id(name, key) for key in keys]))


def unlock(sequence, name, *keys) -> m.Action:
    return m.Action(sequence, m.UnlockEntities([wit_id(name, key) for key in keys]))


def failure_of(result: m.EpisodeResult) -> m.FailureDetails:
    """The failure of an episode that must end with exactly one fail action."""
    assert len(result.actions) == 1, result.actions
    action = result.actions[0]
    assert action.id == -1 and isinstance(action.kind, m.Fail), result.actions
    return action.kind.failure


def output_of(result: m.EpisodeResult):
    """The decoded output of an episode whose last action is complete."""
    action = result.actions[-1]
    assert action.id == -1 and isinstance(action.kind, m.Complete), result.actions
    return json.loads(action.kind.output)


def created_event(action: m.Action):
    """The history event a host records for an action that takes a sequence number."""
    kind = action.kind
    if isinstance(kind, (m.Complete, m.Fail, m.ContinueAsNew)):
        return None
    # The replay core ignores these events; their content only has to exist.
    return event(m.OtherEvent(type(kind).__name__), T0, action.id)


# ---- the host in miniature ----


class Host:
    """Runs one orchestration of a one-orchestrator app through episodes, and replays it."""

    def __init__(self, name, orchestrator, app=None):
        if app is None:
            app = df.DFApp()
            app.function_name(name)(app.orchestration_trigger(context_name="context")(orchestrator))
        self.registry = app._registry()
        self.name = name
        self.executor = self.registry.executor(name, "instance-1")
        self.history = []
        self.actions = []

    @classmethod
    def start(cls, name, orchestrator, input=None, app=None):
        """Creates the orchestration and runs its first episode; ``input`` is a Python value
        (encoded as JSON) or ``None``."""
        host = cls(name, orchestrator, app)
        encoded = None if input is None else dumps(input)
        first = host.episode(T0, [execution_started(name, encoded)])
        return host, first

    def episode(self, time, events, replaying=False) -> m.EpisodeResult:
        """Runs one episode that starts at ``time``."""
        inbound = [orchestrator_started(time)] + list(events)
        result = self.executor.apply(list(inbound), replaying)
        inbound += [e for e in map(created_event, result.actions) if e is not None]
        inbound.append(event(m.OtherEvent("OrchestratorCompleted")))
        self.history.append(inbound)
        self.actions += result.actions
        return result

    def replay_by_episode(self):
        executor = self.registry.executor(self.name, "instance-1")
        actions = []
        for episode in self.history:
            actions += executor.apply(list(episode), True).actions
        return actions

    def replay_at_once(self):
        executor = self.registry.executor(self.name, "instance-1")
        return executor.apply([e for episode in self.history for e in episode], True).actions

    def assert_replay_matches(self, case):
        case.assertEqual(self.replay_by_episode(), self.actions)
        case.assertEqual(self.replay_at_once(), self.actions)
