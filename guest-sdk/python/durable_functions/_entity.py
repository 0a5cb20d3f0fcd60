"""Durable entities: ``EntityContext`` and the batch runner behind the WIT ``entity``
export.

An entity function receives one operation at a time through an ``EntityContext``; the
state lives between operations (and batches) as JSON.
"""

from datetime import datetime
from typing import Any, Callable, List, Optional

from . import _json
from ._entity_id import EntityId
from ._errors import DeserializationError, failure_from_exception
from ._model import (
    BatchResult,
    FailureDetails,
    Operation,
    SignalEntity,
    StartOrchestration,
    WitEntityId,
)
from ._time import from_datetime

_UNSET = object()


class EntityContext:
    """What an entity function gets for one operation: the operation and its input, the
    entity's state, and the means to return a result and send messages.

    An entity without state (never set, or deleted) reads as ``None``, or as what
    ``get_state``'s initializer returns, and stays without state until an operation calls
    ``set_state``. An operation that raises leaves no trace: its state change and its
    messages are dropped and its caller gets the error; the other operations of the batch
    are unaffected.
    """

    def __init__(self, entity_id: EntityId, operation: str, input: Optional[str], state: Optional[str]):
        self._id = entity_id
        self._operation = operation
        self._input = input
        self._has_state = state is not None
        try:
            self._state = _json.decode(state)
        except ValueError as error:
            raise DeserializationError(
                f"the state of entity '{entity_id}' could not be decoded: {error}"
            ) from None
        self._initialized = _UNSET
        self._result: Optional[str] = None
        self._actions: list = []

    @property
    def entity_id(self) -> EntityId:
        """The id of this entity."""
        return self._id

    @property
    def entity_name(self) -> str:
        """The entity's name (lowercased)."""
        return self._id.name

    @property
    def entity_key(self) -> str:
        """The entity's key."""
        return self._id.key

    @property
    def operation_name(self) -> str:
        """The name of the operation to run, as the caller spelled it."""
        return self._operation

    @property
    def has_state(self) -> bool:
        """Whether the entity has state."""
        return self._has_state

    def get_input(self) -> Any:
        """The operation's input decoded from JSON; ``None`` if absent. Tolerant of
        double-encoded input, like every client payload."""
        return _json.decode_payload(self._input)

    def get_state(self, initializer: Optional[Callable[[], Any]] = None) -> Any:
        """The entity's state. Without state: what ``initializer()`` returns (called once
        per operation, and not stored until ``set_state``), or ``None``."""
        if self._has_state:
            return self._state
        if initializer is None:
            return None
        if self._initialized is _UNSET:
            self._initialized = initializer()
        return self._initialized

    def set_state(self, state: Any) -> None:
        """Replaces the state; the entity has state from now on. The state is encoded as
        JSON when the operation ends, so in-place changes to it until then count too."""
        self._state = state
        self._has_state = True

    def delete_state(self) -> None:
        """Deletes the state: unless a later operation sets it again, the entity ends the
        batch without state."""
        self._state = None
        self._has_state = False
        self._initialized = _UNSET

    destruct_on_exit = delete_state

    def set_result(self, result: Any) -> None:
        """Sets the operation's result, what a caller's ``call_entity`` gets. Without it the
        result is absent (``None``)."""
        self._result = _json.encode(result, "the operation result")

    def signal_entity(
        self,
        entity_id: EntityId,
        operation_name: str,
        operation_input: Any = None,
        scheduled_time: Optional[datetime] = None,
    ) -> None:
        """Signals operation ``operation_name`` of entity ``entity_id``, one-way, at
        ``scheduled_time`` if given. Sent only if this operation succeeds."""
        if not isinstance(entity_id, EntityId):
            raise TypeError(f"expected an EntityId, got {type(entity_id).__name__}")
        payload = _json.encode(operation_input, "the signal input")
        at = None if scheduled_time is None else from_datetime(scheduled_time)
        self._actions.append(SignalEntity(entity_id._to_wit(), str(operation_name), payload, at))

    def start_new_orchestration(
        self, orchestration_function_name: str, input_: Any = None, instance_id: Optional[str] = None
    ) -> None:
        """Starts orchestrator ``orchestration_function_name`` with ``input_``; without
        ``instance_id`` the host picks a random id. Started only if this operation
        succeeds."""
        payload = _json.encode(input_, "the orchestration input")
        self._actions.append(
            StartOrchestration(
                str(orchestration_function_name),
                None if instance_id is None else str(instance_id),
                payload,
            )
        )

    def _final_state(self) -> Optional[str]:
        if not self._has_state:
            return None
        return _json.encode(self._state, f"the state of entity '{self._id}'")

    def __repr__(self) -> str:
        return f"EntityContext({self._id}, operation={self._operation!r}, has_state={self._has_state!r})"


def run_batch(
    entity: Optional[Callable[[EntityContext], Any]],
    entity_id: WitEntityId,
    state: Optional[str],
    operations: List[Operation],
) -> BatchResult:
    """Runs a batch: each operation in order against the state the previous ones left. A
    failed operation changes nothing and reports its failure in its slot.

    ``entity`` is the entity function, ``None`` if the app has no entity of that name.
    """
    address = EntityId(entity_id.name, entity_id.key)
    results: list = []
    actions: list = []
    for operation in operations:
        if entity is None:
            results.append(
                FailureDetails("EntityNotFound", f"this app has no entity named '{address.name}'")
            )
            continue
        try:
            context = EntityContext(address, operation.name, operation.input, state)
            entity(context)
            new_state = context._final_state()
        except BaseException as error:  # noqa: BLE001 - every failure is reported
            results.append(failure_from_exception(error))
            continue
        state = new_state
        actions.extend(context._actions)
        results.append(context._result)
    return BatchResult(results, state, actions)

