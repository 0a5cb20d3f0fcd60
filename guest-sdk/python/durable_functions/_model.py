"""Plain-Python mirrors of the WIT records the replay core reads and writes.

The replay core (executor, state, tasks, entities) works only on these classes, so it runs
and is tested on any CPython; ``durable_functions.component`` converts between them and the
types componentize-py generates, which exist only inside the component. The names follow
durable.wit; every JSON payload is JSON text (``str``) or ``None``.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Union


@dataclass
class FailureDetails:
    """Why a task, an entity operation or an orchestration failed."""

    error_type: str
    message: str
    details: Optional[str] = None


@dataclass(frozen=True)
class WitEntityId:
    """An entity address as it crosses the boundary: name and key."""

    name: str
    key: str


# ---- history events: only the kinds the replay core reacts to get their own class ----


@dataclass
class ParentInstance:
    """Where a sub-orchestration reports its result."""

    instance_id: str
    name: str
    task_scheduled_id: int


@dataclass
class ExecutionStarted:
    """First event of every execution."""

    name: str
    instance_id: str
    input: Optional[str] = None
    parent: Optional[ParentInstance] = None


@dataclass
class OrchestratorStarted:
    """Opens an episode; the event's timestamp is the orchestration's current time."""


@dataclass
class TaskCompleted:
    """An activity returned."""

    task_scheduled_id: int
    result: Optional[str]


@dataclass
class TaskFailed:
    """An activity failed."""

    task_scheduled_id: int
    failure: FailureDetails


@dataclass
class TimerFired:
    """A durable timer fired."""

    timer_id: int
    fire_at: int


@dataclass
class EventRaised:
    """An external event reached the orchestration."""

    name: str
    input: Optional[str]


@dataclass
class SubOrchestrationCompleted:
    """A sub-orchestration returned."""

    task_scheduled_id: int
    result: Optional[str]


@dataclass
class SubOrchestrationFailed:
    """A sub-orchestration failed."""

    task_scheduled_id: int
    failure: FailureDetails


@dataclass
class EntityOperationCompleted:
    """An entity operation the orchestration called returned."""

    task_scheduled_id: int
    result: Optional[str]


@dataclass
class EntityOperationFailed:
    """An entity operation the orchestration called failed."""

    task_scheduled_id: int
    failure: FailureDetails


@dataclass
class EntityLockGranted:
    """Every lock requested by the lock-entities action ``task_scheduled_id`` is held."""

    task_scheduled_id: int


@dataclass
class OtherEvent:
    """Any event the replay core ignores (the ones actions created, episode ends, ...)."""

    name: str = ""


EventKind = Union[
    ExecutionStarted,
    OrchestratorStarted,
    TaskCompleted,
    TaskFailed,
    TimerFired,
    EventRaised,
    SubOrchestrationCompleted,
    SubOrchestrationFailed,
    EntityOperationCompleted,
    EntityOperationFailed,
    EntityLockGranted,
    OtherEvent,
]


@dataclass
class HistoryEvent:
    """One entry of an orchestration's history."""

    event_id: int
    timestamp: int
    kind: EventKind


# ---- actions ----


@dataclass
class ScheduleTask:
    """Schedule an activity."""

    name: str
    input: Optional[str]


@dataclass
class CreateTimer:
    """Create a durable timer."""

    fire_at: int


@dataclass
class CallSubOrchestration:
    """Start a sub-orchestration and wait for its result."""

    name: str
    instance_id: Optional[str]
    input: Optional[str]


@dataclass
class SendEvent:
    """Send a one-way event to another orchestration instance."""

    instance_id: str
    name: str
    input: Optional[str]


@dataclass
class Complete:
    """The orchestration returned."""

    output: Optional[str]


@dataclass
class Fail:
    """The orchestration raised an exception it did not handle."""

    failure: FailureDetails


@dataclass
class CarriedEvent:
    """An external event that continue-as-new hands to the next execution."""

    name: str
    input: Optional[str]


@dataclass
class ContinueAsNew:
    """End this execution and start a fresh one."""

    input: Optional[str]
    carried_events: List[CarriedEvent] = field(default_factory=list)


@dataclass
class CallEntity:
    """Call an entity operation and wait for its result."""

    entity: WitEntityId
    operation: str
    input: Optional[str]


@dataclass
class SignalEntity:
    """Signal an entity operation, one-way, possibly for later."""

    entity: WitEntityId
    operation: str
    input: Optional[str]
    scheduled_time: Optional[int] = None


@dataclass
class LockEntities:
    """Lock these entities (sorted, without duplicates) for a critical section."""

    entities: List[WitEntityId]


@dataclass
class UnlockEntities:
    """Release the locks of the critical section."""

    entities: List[WitEntityId]


ActionKind = Union[
    ScheduleTask,
    CreateTimer,
    CallSubOrchestration,
    SendEvent,
    Complete,
    Fail,
    ContinueAsNew,
    CallEntity,
    SignalEntity,
    LockEntities,
    UnlockEntities,
]


@dataclass
class Action:
    """A decision of the orchestration; ``id`` is its sequence number (-1 for the final one)."""

    id: int
    kind: ActionKind


@dataclass
class EpisodeResult:
    """What one episode produced."""

    actions: List[Action]
    custom_status: Optional[str]


# ---- entities ----


@dataclass
class Operation:
    """One entity operation to run."""

    name: str
    input: Optional[str] = None


@dataclass
class StartOrchestration:
    """An entity operation asks for an orchestration to be started."""

    name: str
    instance_id: Optional[str]
    input: Optional[str]


EntityAction = Union[SignalEntity, StartOrchestration]


@dataclass
class BatchResult:
    """The outcome of one entity batch: per-operation results, final state, actions.

    A result is the operation's JSON result (``None`` if it set none), or the
    ``FailureDetails`` of its failure.
    """

    results: List[Union[Optional[str], FailureDetails]]
    state: Optional[str]
    actions: List[EntityAction]
