"""The per-orchestration runner: feeds history events into the shared state, drives the
orchestrator generator after each one and collects the actions it issues.

Every task an orchestrator can yield resolves from the shared state alone, so driving the
generator after each event takes it as far as that event allows. The order in which tasks
complete is therefore the order of their events in the history, on the first run and on
every replay.
"""

import inspect
from typing import Callable, List, Optional

from . import _json
from ._context import DurableOrchestrationContext
from ._errors import failure_from_exception
from ._model import (
    Action,
    Complete,
    ContinueAsNew,
    EntityLockGranted,
    EntityOperationCompleted,
    EntityOperationFailed,
    EpisodeResult,
    EventRaised,
    ExecutionStarted,
    Fail,
    FailureDetails,
    HistoryEvent,
    OrchestratorStarted,
    SubOrchestrationCompleted,
    SubOrchestrationFailed,
    TaskCompleted,
    TaskFailed,
    TimerFired,
)
from ._state import ACTIVITY, ENTITY, LOCK, SUB_ORCHESTRATION, TIMER, State
from ._task import Task

# Where the orchestrator code is.
_NOT_STARTED = "not-started"  # waiting for its execution-started event
_RUNNING = "running"
# Returned (or failed) during the current apply; the final action is issued at its end, so
# that it carries the events raised later in the same episode.
_RETURNED = "returned"
_DONE = "done"  # the final action has been issued


class OrchestratorNotFound(Exception):
    """The host asked for an orchestrator this app does not have."""


class Executor:
    """One execution of one orchestrator for one instance.

    ``orchestrator`` is a callable taking the context; it is a generator function (each
    ``yield`` waits for a task) or a plain function whose return value is the output.
    ``None`` means the app has no orchestrator of that name: the first ``apply`` fails the
    execution.
    """

    def __init__(self, orchestrator: Optional[Callable], name: str, instance_id: str):
        self._state = State(name, instance_id)
        self._function = orchestrator
        self._generator = None
        self._awaiting: Optional[Task] = None
        # The final action: Complete/ContinueAsNew's output or a Fail's FailureDetails.
        self._outcome = None
        if orchestrator is None:
            self._phase = _RETURNED
            self._outcome = FailureDetails(
                "OrchestratorNotFound", f"this app has no orchestrator named '{name}'", None
            )
        else:
            self._phase = _NOT_STARTED

    def apply(self, events: List[HistoryEvent], replaying: bool) -> EpisodeResult:
        """Feeds the events of one episode and returns the actions issued meanwhile."""
        state = self._state
        state.is_replaying = replaying
        for event in events:
            if self._phase == _DONE:
                break
            if self._handle(event):
                self._drive()
        actions = state.take_actions()
        if self._phase == _RETURNED:
            self._phase = _DONE
            outcome = self._outcome
            if isinstance(outcome, FailureDetails):
                kind = Fail(outcome)
            elif state.continue_as_new is not None:
                kind = ContinueAsNew(state.continue_as_new, state.unconsumed_events())
            else:
                kind = Complete(outcome)
            actions.append(Action(-1, kind))
        return EpisodeResult(actions, state.custom_status)

    def _handle(self, event: HistoryEvent) -> bool:
        """Applies one event to the state; returns whether the orchestrator may have
        progressed."""
        state = self._state
        kind = event.kind
        kind_type = type(kind)
        if kind_type is TaskCompleted:
            state.complete(kind.task_scheduled_id, ACTIVITY, (True, kind.result))
        elif kind_type is TaskFailed:
            state.complete(kind.task_scheduled_id, ACTIVITY, (False, kind.failure))
        elif kind_type is TimerFired:
            state.complete(kind.timer_id, TIMER, (True, None))
        elif kind_type is EventRaised:
            state.raise_event(kind.name, kind.input)
        elif kind_type is OrchestratorStarted:
            state.now = event.timestamp
            return False
        elif kind_type is ExecutionStarted:
            if self._phase != _NOT_STARTED:
                return False
            state.name = kind.name
            state.instance_id = kind.instance_id
            state.input = kind.input
            state.parent_instance_id = None if kind.parent is None else kind.parent.instance_id
            self._phase = _RUNNING
        elif kind_type is SubOrchestrationCompleted:
            state.complete(kind.task_scheduled_id, SUB_ORCHESTRATION, (True, kind.result))
        elif kind_type is SubOrchestrationFailed:
            state.complete(kind.task_scheduled_id, SUB_ORCHESTRATION, (False, kind.failure))
        elif kind_type is EntityOperationCompleted:
            state.complete(kind.task_scheduled_id, ENTITY, (True, kind.result))
        elif kind_type is EntityOperationFailed:
            state.complete(kind.task_scheduled_id, ENTITY, (False, kind.failure))
        elif kind_type is EntityLockGranted:
            state.complete(kind.task_scheduled_id, LOCK, (True, None))
        else:
            return False
        return True

    def _drive(self) -> None:
        """Runs the orchestrator code as far as the state allows."""
        if self._phase != _RUNNING:
            return
        if self._generator is None:
            context = DurableOrchestrationContext(self._state)
            try:
                started = self._function(context)
            except BaseException as error:  # noqa: BLE001 - every failure is reported
                self._finish(error=error)
                return
            if inspect.iscoroutine(started):
                started.close()
                self._finish(
                    error=TypeError(
                        "an orchestrator must be a generator function (yield tasks), not async"
                    )
                )
                return
            if not inspect.isgenerator(started):
                self._finish(value=started)
                return
            self._generator = started
            send, throw = None, None
        elif self._awaiting is None:
            return
        else:
            if not self._awaiting._poll():
                return
            task, self._awaiting = self._awaiting, None
            send, throw = task._value, task._error
        while True:
            try:
                if throw is not None:
                    yielded = self._generator.throw(throw)
                else:
                    yielded = self._generator.send(send)
            except StopIteration as stop:
                self._finish(value=stop.value)
                return
            except BaseException as error:  # noqa: BLE001 - every failure is reported
                self._finish(error=error)
                return
            if not isinstance(yielded, Task):
                send, throw = None, TypeError(
                    f"an orchestrator must yield durable tasks (from the context), "
                    f"not {type(yielded).__name__}"
                )
                continue
            if not yielded._poll():
                self._awaiting = yielded
                return
            send, throw = yielded._value, yielded._error

    def _finish(self, value=None, error: Optional[BaseException] = None) -> None:
        """Notes how the orchestrator ended and lets go of what it still waited for, as the
        Rust SDK does when it drops the finished future."""
        if error is None:
            try:
                self._outcome = _json.encode(value, "the orchestrator output")
            except Exception as encoding_error:  # noqa: BLE001
                error = encoding_error
        if error is not None:
            self._outcome = failure_from_exception(error)
        self._phase = _RETURNED
        self._generator = None
        self._awaiting = None
        state = self._state
        state.unwait_all()
        if state.active_lock is not None:
            state.active_lock.release()
