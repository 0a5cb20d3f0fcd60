"""The state one orchestration shares between its context, its tasks and the executor
that feeds it history events.

Invariants (the same as the Rust SDK's):

1. Every action that takes a sequence number gets it when its task is created, from one
   counter starting at 0, and is recorded at that moment.
2. Pending tasks, event waiters and buffered events live in dicts keyed by a counter, in
   insertion order, so every "first" or "oldest" below is the one created or received
   first.
3. A waiter that is cancelled (or still waiting when the orchestrator returns) hands an
   event it was given but never returned back to the next waiter or to the buffer.
4. Nothing here reads a clock or a random source: time is the current episode's
   orchestrator-started timestamp.
"""

from typing import Dict, List, Optional, Tuple

from ._model import Action, CarriedEvent, FailureDetails

# Kinds of pending sequence numbers; a completion of another kind for a number is ignored.
ACTIVITY = "activity"
SUB_ORCHESTRATION = "sub-orchestration"
TIMER = "timer"
ENTITY = "entity"
LOCK = "lock"

# What a completed task reported: (True, json_or_none) or (False, FailureDetails).
Outcome = Tuple[bool, object]


class _Pending:
    __slots__ = ("kind", "outcome", "owner")

    def __init__(self, kind: str, owner):
        self.kind = kind
        self.outcome: Optional[Outcome] = None
        self.owner = owner


class RaisedEvent:
    """An external event as it arrived; ``arrival`` is its position among all events
    raised to this execution."""

    __slots__ = ("arrival", "name", "input")

    def __init__(self, arrival: int, name: str, input: Optional[str]):
        self.arrival = arrival
        self.name = name
        self.input = input


class _Waiter:
    __slots__ = ("key", "delivered", "owner")

    def __init__(self, key: str, delivered: Optional[RaisedEvent], owner):
        # Event names match case-insensitively.
        self.key = key
        self.delivered = delivered
        self.owner = owner


class State:
    """Everything one execution of an orchestrator knows, fed by the executor."""

    def __init__(self, name: str, instance_id: str):
        """The state of orchestrator ``name`` for instance ``instance_id``."""
        self.name = name
        self.instance_id = instance_id
        self.input: Optional[str] = None
        self.parent_instance_id: Optional[str] = None
        self.is_replaying = False
        # The timestamp of the current episode's orchestrator-started event.
        self.now = 0
        self.custom_status: Optional[str] = None
        # JSON text once the orchestrator called continue_as_new.
        self.continue_as_new: Optional[str] = None
        self.guid_counter = 0
        # The critical section: requested (or held) and not yet released.
        self.lock_held = False
        # The granted lock the code received, released when the orchestrator returns.
        self.active_lock = None
        self._next_sequence = 0
        self._actions: List[Action] = []
        self._pending: Dict[int, _Pending] = {}
        self._next_waiter = 0
        self._waiters: Dict[int, _Waiter] = {}
        self._next_arrival = 0
        # Raised events no waiter has taken, by arrival.
        self._buffered: Dict[int, RaisedEvent] = {}

    # ---- actions and their completions ----

    def issue(self, kind) -> int:
        """Records an action that takes a sequence number and returns that number."""
        sequence = self._next_sequence
        self._next_sequence += 1
        self._actions.append(Action(sequence, kind))
        return sequence

    def schedule(self, kind, pending_kind: str, owner) -> int:
        """Records an action whose completion ``owner`` (a task) waits for; returns its
        sequence number."""
        sequence = self.issue(kind)
        self._pending[sequence] = _Pending(pending_kind, owner)
        return sequence

    def complete(self, sequence: int, pending_kind: str, outcome: Outcome) -> None:
        """Hands an outcome to pending task ``sequence``; ignored when no task of that kind
        waits for it (a duplicate, a cancelled task, a number of another kind)."""
        pending = self._pending.get(sequence)
        if pending is None or pending.kind != pending_kind or pending.outcome is not None:
            return
        pending.outcome = outcome
        pending.owner._wake()

    def take(self, sequence: int) -> Optional[Outcome]:
        """The outcome of ``sequence`` once it came (forgetting the number), else ``None``."""
        pending = self._pending.get(sequence)
        if pending is None or pending.outcome is None:
            return None
        del self._pending[sequence]
        return pending.outcome

    def forget(self, sequence: int) -> None:
        """Stops waiting for ``sequence``: a later completion is ignored."""
        self._pending.pop(sequence, None)

    def take_actions(self) -> List[Action]:
        """The actions issued since the last call."""
        actions, self._actions = self._actions, []
        return actions

    # ---- external events ----

    def raise_event(self, name: str, input: Optional[str]) -> None:
        """An external event arrived."""
        arrival = self._next_arrival
        self._next_arrival += 1
        self._dispatch(RaisedEvent(arrival, name, input))

    def _dispatch(self, event: RaisedEvent) -> None:
        """Gives the event to the oldest waiter for its name, or buffers it."""
        key = event.name.lower()
        for waiter in self._waiters.values():
            if waiter.delivered is None and waiter.key == key:
                waiter.delivered = event
                waiter.owner._wake()
                return
        self._buffered[event.arrival] = event

    def wait(self, name: str, owner) -> int:
        """Registers a waiter for event ``name``; it takes the oldest buffered event of that
        name at once if there is one. Returns the waiter's number."""
        key = name.lower()
        delivered = None
        for arrival, event in self._buffered.items():
            if event.name.lower() == key:
                delivered = self._buffered.pop(arrival)
                break
        number = self._next_waiter
        self._next_waiter += 1
        self._waiters[number] = _Waiter(key, delivered, owner)
        return number

    def take_event(self, number: int) -> Optional[RaisedEvent]:
        """The event handed to waiter ``number`` (which then goes away), else ``None``."""
        waiter = self._waiters.get(number)
        if waiter is None or waiter.delivered is None:
            return None
        del self._waiters[number]
        return waiter.delivered

    def unwait(self, number: int) -> None:
        """Unregisters waiter ``number``; an event it was handed goes to the next waiter or
        back to the buffer."""
        waiter = self._waiters.pop(number, None)
        if waiter is not None and waiter.delivered is not None:
            self._dispatch(waiter.delivered)

    def unwait_all(self) -> None:
        """Unregisters every waiter, as the Rust SDK does when it drops a finished
        orchestrator: events handed out but never returned are buffered again."""
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if waiter.delivered is not None:
                self._buffered[waiter.delivered.arrival] = waiter.delivered

    def unconsumed_events(self) -> List[CarriedEvent]:
        """Every raised event that no waiter took, in arrival order."""
        return [
            CarriedEvent(event.name, event.input)
            for _, event in sorted(self._buffered.items())
        ]


def failure_outcome(failure: FailureDetails) -> Outcome:
    """The outcome of a failed task."""
    return (False, failure)
