"""The componentize glue: the WIT world ``app`` exported for the app in ``function_app.py``.

This is the module componentize-py wraps (``componentize durable_functions.component``).
It imports the user's ``function_app`` module (found on the ``-p`` path), takes its ``app``
and converts between the types componentize-py generates and the plain-Python model of the
replay core. It only imports inside a component build: ``wit_world`` exists nowhere else.

Everything here runs once at build time (componentize-py snapshots the initialised
interpreter), so registering the functions costs nothing when the host instantiates the
component.
"""

import hashlib  # noqa: F401 - see _warm_up
import os
import random
import sys
import traceback  # noqa: F401 - see _warm_up
import types as _python_types
import uuid  # noqa: F401 - see _warm_up
from typing import List, Optional

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.exports import entity as wit_entity
from wit_world.exports import orchestrator as wit_orchestrator
from wit_world.exports import registry as wit_registry
from wit_world.imports import types as wit

from . import _model as m
from ._app import ACTIVITY, ENTITY, ORCHESTRATOR, DFApp
from ._entity import run_batch
from ._errors import TaskFailedError
from ._executor import Executor

# The build imports the app inside the component's interpreter, with the app directory
# mounted writable: without this, it would leave a __pycache__ directory there.
sys.dont_write_bytecode = True
try:
    import function_app as _function_app
except ModuleNotFoundError as missing:
    if missing.name != "function_app":
        raise
    raise ImportError(
        "no function_app module: pass the app directory (holding function_app.py) "
        "to componentize-py with -p"
    ) from None

_app = getattr(_function_app, "app", None)
if not isinstance(_app, DFApp):
    raise TypeError("function_app.py must define `app = durable_functions.DFApp()`")
# Freezing now makes a duplicate function name fail the build, not the first call.
_registry = _app._registry()

_KINDS = {
    ORCHESTRATOR: wit_registry.FunctionKind.ORCHESTRATOR,
    ACTIVITY: wit_registry.FunctionKind.ACTIVITY,
    ENTITY: wit_registry.FunctionKind.ENTITY,
}


def _warm_up() -> None:
    """Runs the SDK's own code paths once while the component is built.

    A component holds only the Python modules imported while it was built (componentize-py
    snapshots the initialised interpreter), and the standard library imports some modules
    lazily: `uuid.uuid5` and `random.seed` import hashlib, traceback formatting imports
    helpers for its suggestions. Exercising the paths here puts those modules in the
    component, so they cannot be missing when an orchestration first needs them.
    """
    started = m.HistoryEvent(-1, 0, m.OrchestratorStarted())

    def run(orchestrator, *events) -> None:
        execution = m.HistoryEvent(-1, 0, m.ExecutionStarted("WarmUp", "warm-up", '"{\\"a\\":[1]}"'))
        Executor(orchestrator, "WarmUp", "warm-up").apply([started, execution, *events], False)

    def catches_then_fails(context):
        context.get_input()
        context.new_uuid()
        context.set_custom_status({"up": [1, 2.5, None, True, "é"]})
        try:
            yield context.call_activity("Warm")
        except TaskFailedError:
            pass
        return undefined_name  # noqa: F821 - a NameError, whose traceback looks for suggestions

    def lets_it_fail(context):
        yield context.call_activity("Warm")

    failed = m.HistoryEvent(-1, 0, m.TaskFailed(0, m.FailureDetails("E", "m", "details")))
    run(catches_then_fails, failed)
    run(lets_it_fail, failed)
    run(lambda context: context.missing_attribute)

    def entity(context):
        context.set_state(context.get_input())
        raise KeyError("warm-up")

    run_batch(entity, m.WitEntityId("warm", "up"), None, [m.Operation("op", "1")])
    random.seed(int.from_bytes(os.urandom(16), "little"))
    random.random()
    uuid.uuid4()


_warm_up()

# ---- conversions: WIT to plain ----


def _failure_in(failure: wit.FailureDetails) -> m.FailureDetails:
    return m.FailureDetails(failure.error_type, failure.message, failure.details)


def _execution_started(value: wit.ExecutionStarted):
    parent = value.parent
    if parent is not None:
        parent = m.ParentInstance(parent.instance_id, parent.name, parent.task_scheduled_id)
    return m.ExecutionStarted(value.name, value.instance_id, value.input, parent)


_ORCHESTRATOR_STARTED = m.OrchestratorStarted()
_OTHER = m.OtherEvent()

_EVENT_KINDS = {
    wit.EventKind_ExecutionStarted: lambda kind: _execution_started(kind.value),
    wit.EventKind_OrchestratorStarted: lambda kind: _ORCHESTRATOR_STARTED,
    wit.EventKind_TaskCompleted: lambda kind: m.TaskCompleted(kind.value.task_scheduled_id, kind.value.result),
    wit.EventKind_TaskFailed: lambda kind: m.TaskFailed(
        kind.value.task_scheduled_id, _failure_in(kind.value.failure)
    ),
    wit.EventKind_TimerFired: lambda kind: m.TimerFired(kind.value.timer_id, kind.value.fire_at),
    wit.EventKind_EventRaised: lambda kind: m.EventRaised(kind.value.name, kind.value.input),
    wit.EventKind_SubOrchestrationInstanceCompleted: lambda kind: m.SubOrchestrationCompleted(
        kind.value.task_scheduled_id, kind.value.result
    ),
    wit.EventKind_SubOrchestrationInstanceFailed: lambda kind: m.SubOrchestrationFailed(
        kind.value.task_scheduled_id, _failure_in(kind.value.failure)
    ),
    wit.EventKind_EntityOperationCompleted: lambda kind: m.EntityOperationCompleted(
        kind.value.task_scheduled_id, kind.value.result
    ),
    wit.EventKind_EntityOperationFailed: lambda kind: m.EntityOperationFailed(
        kind.value.task_scheduled_id, _failure_in(kind.value.failure)
    ),
    wit.EventKind_EntityLockGranted: lambda kind: m.EntityLockGranted(kind.value),
}


def _event_in(event: wit.HistoryEvent) -> m.HistoryEvent:
    convert = _EVENT_KINDS.get(type(event.kind))
    kind = _OTHER if convert is None else convert(event.kind)
    return m.HistoryEvent(event.event_id, event.timestamp, kind)


# ---- conversions: plain to WIT ----


def _failure_out(failure: m.FailureDetails) -> wit.FailureDetails:
    return wit.FailureDetails(failure.error_type, failure.message, failure.details)


def _entity_out(entity: m.WitEntityId) -> wit.EntityId:
    return wit.EntityId(entity.name, entity.key)


def _signal_out(signal: m.SignalEntity) -> wit.EntityOperationSignaled:
    return wit.EntityOperationSignaled(
        _entity_out(signal.entity), signal.operation, signal.input, signal.scheduled_time
    )


_ACTION_KINDS = {
    m.ScheduleTask: lambda a: wit.ActionKind_ScheduleTask(wit.ScheduleTask(a.name, a.input)),
    m.CreateTimer: lambda a: wit.ActionKind_CreateTimer(wit.CreateTimer(a.fire_at)),
    m.CallSubOrchestration: lambda a: wit.ActionKind_CallSubOrchestration(
        wit.CallSubOrchestration(a.name, a.instance_id, a.input)
    ),
    m.SendEvent: lambda a: wit.ActionKind_SendEvent(wit.SendEvent(a.instance_id, a.name, a.input)),
    m.Complete: lambda a: wit.ActionKind_Complete(a.output),
    m.Fail: lambda a: wit.ActionKind_Fail(_failure_out(a.failure)),
    m.ContinueAsNew: lambda a: wit.ActionKind_ContinueAsNew(
        wit.ContinueAsNew(a.input, [wit.CarriedEvent(e.name, e.input) for e in a.carried_events])
    ),
    m.CallEntity: lambda a: wit.ActionKind_CallEntity(
        wit.EntityOperationCalled(_entity_out(a.entity), a.operation, a.input)
    ),
    m.SignalEntity: lambda a: wit.ActionKind_SignalEntity(_signal_out(a)),
    m.LockEntities: lambda a: wit.ActionKind_LockEntities([_entity_out(e) for e in a.entities]),
    m.UnlockEntities: lambda a: wit.ActionKind_UnlockEntities([_entity_out(e) for e in a.entities]),
}


def _episode_out(result: m.EpisodeResult) -> wit.EpisodeResult:
    actions = [wit.Action(action.id, _ACTION_KINDS[type(action.kind)](action.kind)) for action in result.actions]
    return wit.EpisodeResult(actions, result.custom_status)


def _entity_action_out(action) -> wit_entity.EntityAction:
    if isinstance(action, m.SignalEntity):
        return wit_entity.EntityAction_SignalEntity(
            wit_entity.SignalEntity(
                _entity_out(action.entity), action.operation, action.input, action.scheduled_time
            )
        )
    return wit_entity.EntityAction_StartOrchestration(
        wit_entity.StartOrchestration(action.name, action.instance_id, action.input)
    )


# ---- the exports ----


class Registry(exports.Registry):
    """The ``registry`` export: every function of the app."""

    def functions(self) -> List[wit_registry.FunctionInfo]:
        """Orchestrators, activities and entities, each kind sorted by name."""
        return [wit_registry.FunctionInfo(name, _KINDS[kind]) for name, kind in _registry.functions()]


class Orchestrator(exports.Orchestrator):
    """The ``orchestrator`` export; its resource is ``Orchestration``."""


class Orchestration(wit_orchestrator.Orchestration):
    """One execution of one orchestrator for one instance."""

    def __init__(self, name: str, instance_id: str) -> None:
        """An execution of orchestrator ``name``; an unknown name fails the first episode."""
        self._executor = _registry.executor(name, instance_id)

    def apply(self, events: List[wit.HistoryEvent], replaying: bool) -> wit.EpisodeResult:
        """Feeds one episode's events and returns the actions it produced."""
        # The interpreter's Mersenne Twister is shared by every orchestration of this
        # instance and was seeded at build time. Reseeding it from the host's random source,
        # which the host keeps per orchestration and replays identically, makes `random`
        # inside an orchestrator return the recorded values on replay.
        random.seed(int.from_bytes(os.urandom(16), "little"))
        result = self._executor.apply([_event_in(event) for event in events], replaying)
        return _episode_out(result)


class Activity(exports.Activity):
    """The ``activity`` export."""

    def run(self, name: str, input: Optional[str], context: wit.ActivityContext) -> Optional[str]:
        """Runs activity ``name``; a failure is raised as ``Err(FailureDetails)``."""
        outcome = _registry.run_activity(name, input, context.instance_id, context.task_scheduled_id)
        if isinstance(outcome, m.FailureDetails):
            raise Err(_failure_out(outcome))
        return outcome


class Entity(exports.Entity):
    """The ``entity`` export."""

    def run(
        self, id: wit.EntityId, state: Optional[str], operations: List[wit_entity.Operation]
    ) -> wit_entity.BatchResult:
        """Runs a batch of operations on one entity."""
        batch = _registry.run_entity(
            m.WitEntityId(id.name, id.key),
            state,
            [m.Operation(operation.name, operation.input) for operation in operations],
        )
        results = []
        for result in batch.results:
            if isinstance(result, m.FailureDetails):
                results.append(Err(_failure_out(result)))
            else:
                results.append(Ok(result))
        return wit_entity.BatchResult(results, batch.state, [_entity_action_out(a) for a in batch.actions])


# componentize-py looks the resource class up in a top-level module named after the
# interface that exports it; registering this module under that name keeps the glue in the
# SDK (an app module called `orchestrator` would clash, and is refused here).
if "orchestrator" in sys.modules and getattr(sys.modules["orchestrator"], "Orchestration", None) is not Orchestration:
    raise ImportError("a module named 'orchestrator' clashes with the component glue; rename it")
_resource_module = _python_types.ModuleType("orchestrator")
_resource_module.Orchestration = Orchestration
sys.modules["orchestrator"] = _resource_module
