"""Durable tasks: what an orchestrator yields.

A task's action (scheduling the activity, creating the timer) is issued when the task is
created, not when it is first yielded, so tasks created before any of them is yielded run
in parallel.

Tasks resolve by polling, as Rust futures do: the executor polls the task the orchestrator
is waiting on after every history event, and a composite task polls its children. A task
that nobody waits on is not polled, so a retrying call that is not being waited on makes
its next attempt only once it is (exactly when the Rust SDK would). To keep polling cheap,
a task's completion wakes its parents, which then poll only the children that woke.
"""

from typing import Any, List, Optional

from . import _json
from ._errors import TaskCancelledError, TaskFailedError
from ._model import CreateTimer
from ._state import ENTITY, LOCK, TIMER, State

_ACTIVITY_KIND = "activity"
_SUB_ORCHESTRATION_KIND = "sub-orchestration"
_ENTITY_KIND = "entity operation"


class Task:
    """The pending result of an activity, sub-orchestration, timer, external event, entity
    call or entity lock. Yield it from an orchestrator to wait for it: ``yield`` returns its
    result or raises its exception.

    Yielding a task that already completed returns the same result again.
    """

    def __init__(self, state: Optional[State]):
        self._state = state
        self._done = False
        self._value: Any = None
        self._error: Optional[BaseException] = None
        self._listeners: List["_CompositeTask"] = []

    # ---- public ----

    @property
    def is_completed(self) -> bool:
        """Whether the task completed (successfully or not) and the orchestrator saw it."""
        return self._done

    @property
    def is_faulted(self) -> bool:
        """Whether the task completed with an exception."""
        return self._done and self._error is not None

    @property
    def is_cancelled(self) -> bool:
        """Whether ``cancel`` stopped the task."""
        return isinstance(self._error, TaskCancelledError)

    @property
    def result(self) -> Any:
        """The task's value; ``None`` while it runs. Raises the task's exception if it
        failed."""
        if self._error is not None:
            raise self._error
        return self._value

    @property
    def exception(self) -> Optional[BaseException]:
        """The task's exception if it failed, else ``None``."""
        return self._error

    def cancel(self) -> None:
        """Stops waiting: a later result is ignored, and an external event goes to the next
        waiter instead. The task then fails with ``TaskCancelledError``. Does nothing to a
        completed task.

        The durable action behind the task (an activity, a timer) is not undone.
        """
        if self._done:
            return
        self._detach()
        self._fail(TaskCancelledError("the task was cancelled"))
        self._wake()

    # ---- protocol shared with the executor and composite tasks ----

    def _poll(self) -> bool:
        """Advances the task as far as the state allows; returns whether it is done."""
        if self._done:
            return True
        return self._advance()

    def _advance(self) -> bool:
        raise NotImplementedError

    def _detach(self) -> None:
        """Unregisters whatever the task waits for in the state."""

    def _succeed(self, value: Any) -> bool:
        self._done = True
        self._value = value
        return True

    def _fail(self, error: BaseException) -> bool:
        self._done = True
        self._error = error
        return True

    def _wake(self) -> None:
        """Tells the parents that this task may have progressed."""
        if self._listeners:
            self._listeners = [parent for parent in self._listeners if not parent._done]
            for parent in self._listeners:
                parent._child_woke(self)


class _ReadyTask(Task):
    """A task that is complete from the start."""

    def __init__(self, value: Any = None, error: Optional[BaseException] = None):
        super().__init__(None)
        if error is not None:
            self._fail(error)
        else:
            self._succeed(value)


class _CallTask(Task):
    """An activity or sub-orchestration call, retried with durable timers when a retry
    policy is given."""

    def __init__(self, state: State, task_kind: str, pending_kind: str, name: str, make_action, retry):
        super().__init__(state)
        self._task_kind = task_kind
        self._pending_kind = pending_kind
        self._name = name
        self._make_action = make_action
        self._retry = retry
        self._attempt = state.schedule(make_action(), pending_kind, self)
        self._first_attempt_at = state.now
        self._attempts = 1
        self._timer: Optional[int] = None

    def _advance(self) -> bool:
        state = self._state
        while True:
            if self._timer is None:
                outcome = state.take(self._attempt)
                if outcome is None:
                    return False
                ok, payload = outcome
                if ok:
                    return self._succeed(_json.decode(payload))
                retry_at = None
                if self._retry is not None:
                    retry_at = self._retry.retry_at(self._attempts, self._first_attempt_at, state.now)
                if retry_at is None:
                    return self._fail(TaskFailedError._from_failure(self._task_kind, self._name, payload))
                self._timer = state.schedule(CreateTimer(retry_at), TIMER, self)
            else:
                if state.take(self._timer) is None:
                    return False
                self._timer = None
                self._attempt = state.schedule(self._make_action(), self._pending_kind, self)
                self._attempts += 1

    def _detach(self) -> None:
        self._state.forget(self._attempt)
        if self._timer is not None:
            self._state.forget(self._timer)


class TimerTask(Task):
    """A durable timer; completes with ``None`` when it fires."""

    def __init__(self, state: State, fire_at: int):
        super().__init__(state)
        self._sequence = state.schedule(CreateTimer(fire_at), TIMER, self)
        self._fire_at = fire_at

    def _advance(self) -> bool:
        if self._state.take(self._sequence) is None:
            return False
        return self._succeed(None)

    def _detach(self) -> None:
        self._state.forget(self._sequence)


class _EntityCallTask(Task):
    """A call of an entity operation; completes with the operation's result."""

    def __init__(self, state: State, action, entity, operation: str):
        super().__init__(state)
        self._sequence = state.schedule(action, ENTITY, self)
        self._entity = entity
        self._operation = operation

    def _advance(self) -> bool:
        outcome = self._state.take(self._sequence)
        if outcome is None:
            return False
        ok, payload = outcome
        if ok:
            return self._succeed(_json.decode(payload))
        return self._fail(TaskFailedError._from_failure(_ENTITY_KIND, self._operation, payload, self._entity))

    def _detach(self) -> None:
        self._state.forget(self._sequence)


class _LockTask(Task):
    """A request for entity locks; completes with the ``EntityLock`` once granted."""

    def __init__(self, state: State, action, entities, make_lock):
        super().__init__(state)
        self._sequence = state.schedule(action, LOCK, self)
        self._entities = entities
        self._make_lock = make_lock

    def _advance(self) -> bool:
        if self._state.take(self._sequence) is None:
            return False
        return self._succeed(self._make_lock(self._entities))

    def _detach(self) -> None:
        self._state.forget(self._sequence)


class _EventTask(Task):
    """A wait for an external event; completes with its payload."""

    def __init__(self, state: State, name: str):
        super().__init__(state)
        self._waiter = state.wait(name, self)

    def _advance(self) -> bool:
        event = self._state.take_event(self._waiter)
        if event is None:
            return False
        return self._succeed(_json.decode_payload(event.input))

    def _detach(self) -> None:
        self._state.unwait(self._waiter)


class _CompositeTask(Task):
    """A task over child tasks, polling only the children that woke since the last poll."""

    def __init__(self, tasks):
        super().__init__(None)
        self._children: List[Task] = []
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError(f"expected durable tasks, got {type(task).__name__}")
            self._children.append(task)
        self._positions = {}
        for index, child in enumerate(self._children):
            self._positions.setdefault(id(child), []).append(index)
            if self not in child._listeners:
                child._listeners.append(self)
        # Every child may already be complete.
        self._dirty = set(range(len(self._children)))

    def _child_woke(self, child: Task) -> None:
        if self._done:
            return
        self._dirty.update(self._positions.get(id(child), ()))
        self._wake()

    def _woken(self) -> List[int]:
        woken = sorted(self._dirty)
        self._dirty = set()
        return woken


class WhenAllTask(_CompositeTask):
    """``task_all``: completes with the list of the children's results, in order, once all
    completed; fails as soon as one fails."""

    def __init__(self, tasks):
        super().__init__(tasks)
        self._values: List[Any] = [None] * len(self._children)
        self._remaining = set(range(len(self._children)))
        if not self._children:
            self._succeed([])

    def _advance(self) -> bool:
        for index in self._woken():
            if index not in self._remaining:
                continue
            child = self._children[index]
            if not child._poll():
                continue
            if child._error is not None:
                return self._fail(child._error)
            self._values[index] = child._value
            self._remaining.discard(index)
        if self._remaining:
            return False
        return self._succeed(self._values)


class WhenAnyTask(_CompositeTask):
    """``task_any``: completes with the first child to complete (successfully or not); of
    children that complete together, the first in the list wins. Never completes when
    given no tasks."""

    def _advance(self) -> bool:
        for index in self._woken():
            child = self._children[index]
            if child._poll():
                return self._succeed(child)
        return False
