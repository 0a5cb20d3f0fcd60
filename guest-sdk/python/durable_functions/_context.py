"""``DurableOrchestrationContext``: everything an orchestrator may do, and ``EntityLock``,
the critical section it holds on entities."""

import uuid
from datetime import datetime
from typing import Any, Iterable, List, Optional

from . import _json
from ._entity_id import EntityId
from ._model import (
    CallEntity,
    CallSubOrchestration,
    LockEntities,
    ScheduleTask,
    SendEvent,
    SignalEntity,
    UnlockEntities,
)
from ._retry import RetryOptions
from ._state import ACTIVITY, SUB_ORCHESTRATION, State
from ._task import (
    Task,
    TimerTask,
    WhenAllTask,
    WhenAnyTask,
    _CallTask,
    _EntityCallTask,
    _EventTask,
    _LockTask,
    _ReadyTask,
)
from ._errors import TaskFailedError
from ._time import from_datetime, to_datetime, to_iso8601

# The namespace Durable Functions uses for deterministic UUIDs.
_UUID_NAMESPACE = uuid.UUID("9e952958-5e33-4daf-827f-2fa12937b875")


class DurableOrchestrationContext:
    """The handle an orchestrator uses to call activities, sub-orchestrators and entities,
    create timers, wait for external events and read its input.

    Orchestrators run by replay: the code runs again from the start whenever the host has to
    rebuild the orchestration, and must then make the same calls in the same order. So an
    orchestrator reads time through ``current_utc_datetime``, makes UUIDs with
    ``new_uuid``, and does I/O only in activities. (The host also makes the wall clock and
    random numbers that Python's ``time``, ``datetime`` and ``random`` modules see inside an
    orchestrator replay-safe, but the context's values are the documented ones.)
    """

    def __init__(self, state: State):
        self._state = state

    # ---- facts ----

    @property
    def instance_id(self) -> str:
        """The id of this orchestration instance."""
        return self._state.instance_id

    @property
    def function_name(self) -> str:
        """The name of this orchestrator function."""
        return self._state.name

    @property
    def parent_instance_id(self) -> Optional[str]:
        """The id of the orchestration that started this one as a sub-orchestration."""
        return self._state.parent_instance_id

    @property
    def is_replaying(self) -> bool:
        """Whether the code runs again over history it already produced; useful to skip
        logging that would otherwise repeat on every replay."""
        return self._state.is_replaying

    @property
    def current_utc_datetime(self) -> datetime:
        """The orchestration's current time (aware, UTC): when the current episode started.
        It is the same on every replay."""
        return to_datetime(self._state.now)

    @property
    def custom_status(self) -> Any:
        """The custom status last set, decoded; ``None`` if never set."""
        return _json.decode(self._state.custom_status)

    def get_input(self) -> Any:
        """The orchestration's input decoded from JSON; ``None`` if absent.

        A JSON string holding a JSON string, object or array (what the official Python client
        sends) is decoded once more.
        """
        return _json.decode_payload(self._state.input)

    def new_uuid(self) -> str:
        """A UUID that is the same on every replay and different for every call: a version 5
        UUID of the instance id, the current time and a call counter, as in Durable
        Functions."""
        state = self._state
        name = f"{state.instance_id}_{to_iso8601(state.now)}_{state.guid_counter}"
        state.guid_counter += 1
        return str(uuid.uuid5(_UUID_NAMESPACE, name))

    new_guid = new_uuid

    # ---- activities and sub-orchestrations ----

    def call_activity(self, name: str, input_: Any = None) -> Task:
        """Schedules activity ``name`` with ``input_`` and returns the task of its result.

        The task fails with ``TaskFailedError`` if the activity fails.
        """
        return self._call("activity", ACTIVITY, name, _schedule_task(name, self._encode_input(input_)), None)

    def call_activity_with_retry(self, name: str, retry_options: RetryOptions, input_: Any = None) -> Task:
        """Like ``call_activity``, retrying failed attempts after durable timers as
        ``retry_options`` says; fails with the last attempt's error."""
        _check_retry(retry_options)
        return self._call(
            "activity", ACTIVITY, name, _schedule_task(name, self._encode_input(input_)), retry_options
        )

    def call_sub_orchestrator(self, name: str, input_: Any = None, instance_id: Optional[str] = None) -> Task:
        """Starts orchestrator ``name`` as a sub-orchestration and returns the task of its
        output. Without ``instance_id`` the host derives a deterministic id from this
        instance's."""
        action = _call_sub_orchestration(name, instance_id, self._encode_input(input_))
        return self._call("sub-orchestration", SUB_ORCHESTRATION, name, action, None)

    def call_sub_orchestrator_with_retry(
        self,
        name: str,
        retry_options: RetryOptions,
        input_: Any = None,
        instance_id: Optional[str] = None,
    ) -> Task:
        """Like ``call_sub_orchestrator``, retrying failed attempts as ``retry_options``
        says."""
        _check_retry(retry_options)
        action = _call_sub_orchestration(name, instance_id, self._encode_input(input_))
        return self._call("sub-orchestration", SUB_ORCHESTRATION, name, action, retry_options)

    # ---- timers and events ----

    def create_timer(self, fire_at: datetime) -> TimerTask:
        """Creates a durable timer that fires at ``fire_at`` (a naive datetime is taken as
        UTC). Compute it from ``current_utc_datetime``, never from the wall clock."""
        if not isinstance(fire_at, datetime):
            raise TypeError(f"create_timer expects a datetime, got {type(fire_at).__name__}")
        return TimerTask(self._state, from_datetime(fire_at))

    def wait_for_external_event(self, name: str) -> Task:
        """Waits for an external event named ``name`` (case-insensitive) and returns the task
        of its payload.

        Events raised before anyone waits for them are kept and handed out in arrival order;
        of several waiters for one name, the oldest gets the next event. A waiting task
        keeps its claim until it completes or is cancelled, so cancel one you stop caring
        about (say, the loser of a ``task_any`` in a loop).
        """
        return _EventTask(self._state, str(name))

    def send_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Sends event ``name`` with ``data`` to orchestration ``instance_id``, one-way."""
        payload = _json.encode(data, "the event payload")
        self._state.issue(SendEvent(str(instance_id), str(name), payload))

    # ---- entities ----

    def call_entity(self, entity_id: EntityId, operation_name: str, operation_input: Any = None) -> Task:
        """Calls operation ``operation_name`` of entity ``entity_id`` and returns the task of
        its result (what the operation passed to ``set_result``; ``None`` if nothing).
        A failed operation fails the task with ``TaskFailedError``."""
        _check_entity(entity_id)
        payload = self._encode_input(operation_input)
        action = CallEntity(entity_id._to_wit(), str(operation_name), payload)
        return _EntityCallTask(self._state, action, entity_id, str(operation_name))

    def signal_entity(
        self,
        entity_id: EntityId,
        operation_name: str,
        operation_input: Any = None,
        scheduled_time: Optional[datetime] = None,
    ) -> None:
        """Signals operation ``operation_name`` of entity ``entity_id``: one-way, nothing to
        wait for; delivered at ``scheduled_time`` if given (compute it from
        ``current_utc_datetime``). The entity runs it after the operations this
        orchestration signalled or called before."""
        _check_entity(entity_id)
        payload = _json.encode(operation_input, "the signal input")
        at = None if scheduled_time is None else from_datetime(scheduled_time)
        self._state.issue(SignalEntity(entity_id._to_wit(), str(operation_name), payload, at))

    def lock_entities(self, *entities) -> Task:
        """Enters a critical section: locks every entity given (as arguments or as one
        list; taken in sorted order, each once) and returns the task of the ``EntityLock``,
        which completes once the host granted every lock. While the orchestration holds it,
        the locked entities run only the operations it calls.

        Release it with ``lock.release()`` or a ``with lock:`` block; it is released anyway
        when the orchestrator returns. Critical sections do not nest: locking while holding
        (or waiting for) a lock, or locking no entity, fails the task with error type
        ``LockingRulesViolation``.
        """
        if len(entities) == 1 and not isinstance(entities[0], EntityId):
            entities = tuple(entities[0])
        for entity in entities:
            _check_entity(entity)
        ordered = sorted(set(entities))
        state = self._state
        if not ordered:
            return _ReadyTask(error=_locking_rules("a critical section must lock at least one entity"))
        if state.lock_held:
            return _ReadyTask(
                error=_locking_rules(
                    "critical sections do not nest: release the entity lock held before locking again"
                )
            )
        state.lock_held = True
        action = LockEntities([entity._to_wit() for entity in ordered])
        return _LockTask(state, action, ordered, self._granted)

    def _granted(self, entities: List[EntityId]) -> "EntityLock":
        lock = EntityLock(self._state, entities)
        self._state.active_lock = lock
        return lock

    # ---- combinators and the rest ----

    def task_all(self, tasks: Iterable[Task]) -> Task:
        """A task that completes with the list of the results of ``tasks``, in order, once
        every one completed; it fails as soon as one of them fails."""
        return WhenAllTask(tasks)

    def task_any(self, tasks: Iterable[Task]) -> Task:
        """A task that completes with the first of ``tasks`` to complete, successfully or
        not (so ``winner = yield context.task_any([a, b])`` then ``winner is a``); of tasks
        that complete together, the first in the list wins. The others keep running."""
        return WhenAnyTask(tasks)

    def set_custom_status(self, status: Any) -> None:
        """Sets the custom status that clients see while the orchestration runs; any value
        that encodes to JSON."""
        self._state.custom_status = _json.encode(status, "the custom status")

    def continue_as_new(self, input_: Any = None) -> None:
        """Restarts the orchestration with ``input_`` once the orchestrator returns (whatever
        it returns). External events that arrived but were never waited for are handed to
        the new execution. Use it to keep the history of an eternal orchestration short."""
        self._state.continue_as_new = _json.encode(input_, "the continue-as-new input")

    # ---- helpers ----

    def _encode_input(self, value: Any) -> str:
        return _json.encode(value, "the input")

    def _call(self, task_kind: str, pending_kind: str, name: str, action, retry) -> Task:
        return _CallTask(self._state, task_kind, pending_kind, str(name), lambda: action, retry)

    def __repr__(self) -> str:
        return (
            f"DurableOrchestrationContext(name={self._state.name!r}, "
            f"instance_id={self._state.instance_id!r}, is_replaying={self._state.is_replaying!r})"
        )


class EntityLock:
    """A critical section: the locks on entities an orchestration holds, from
    ``lock_entities``. ``release()`` (or leaving a ``with lock:`` block) ends it, exactly
    once; so does the orchestrator returning."""

    def __init__(self, state: State, entities: List[EntityId]):
        self._state = state
        self._entities = list(entities)
        self._released = False

    @property
    def entities(self) -> List[EntityId]:
        """The locked entities, sorted and without duplicates."""
        return list(self._entities)

    @property
    def is_released(self) -> bool:
        """Whether the locks were released."""
        return self._released

    def release(self) -> None:
        """Releases the locks (once; later calls do nothing)."""
        if self._released:
            return
        self._released = True
        state = self._state
        state.lock_held = False
        if state.active_lock is self:
            state.active_lock = None
        state.issue(UnlockEntities([entity._to_wit() for entity in self._entities]))

    def __enter__(self) -> "EntityLock":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"EntityLock({self._entities!r}, released={self._released!r})"


def _schedule_task(name: str, payload: str):
    return ScheduleTask(str(name), payload)


def _call_sub_orchestration(name: str, instance_id: Optional[str], payload: str):
    return CallSubOrchestration(str(name), None if instance_id is None else str(instance_id), payload)


def _check_retry(retry_options) -> None:
    if not isinstance(retry_options, RetryOptions):
        raise TypeError(f"expected RetryOptions, got {type(retry_options).__name__}")


def _check_entity(entity) -> None:
    if not isinstance(entity, EntityId):
        raise TypeError(f"expected an EntityId, got {type(entity).__name__}")


def _locking_rules(message: str) -> TaskFailedError:
    return TaskFailedError("entity operation", "lock_entities", "LockingRulesViolation", message)
