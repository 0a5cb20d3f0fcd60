"""``DFApp``: the function app, its decorators and its registry."""

import inspect
from typing import Callable, Dict, List, Optional, Tuple, Union

from . import _json
from ._entity import run_batch
from ._errors import failure_from_exception
from ._executor import Executor
from ._model import BatchResult, FailureDetails, Operation, WitEntityId

ORCHESTRATOR = "orchestrator"
ACTIVITY = "activity"
ENTITY = "entity"

_NAME_ATTRIBUTE = "_durable_function_name"


class _Entry:
    """One decorated function, before the app is frozen."""

    def __init__(self, kind: str, function: Callable, parameter: str, name: Optional[str]):
        self.kind = kind
        self.function = function
        self.parameter = parameter
        self.name = name


class ActivityContext:
    """Facts about an activity call, from ``durable_functions.activity_context()``."""

    def __init__(self, instance_id: str, task_scheduled_id: int):
        self.instance_id = instance_id
        self.task_scheduled_id = task_scheduled_id

    def __repr__(self) -> str:
        return f"ActivityContext({self.instance_id!r}, {self.task_scheduled_id!r})"


_current_activity: Optional[ActivityContext] = None


def activity_context() -> Optional[ActivityContext]:
    """The running activity's call: the orchestration instance that scheduled it and the
    sequence number of the call there (with the instance id, it identifies the call, which
    helps to make an activity idempotent). ``None`` outside an activity."""
    return _current_activity


class DFApp:
    """A Durable Functions app: collects orchestrators, activities and entities through
    decorators, as the Durable Functions Python v2 programming model does.

    >>> import durable_functions as df
    >>> app = df.DFApp()
    >>> @app.function_name("E1_SayHello")
    ... @app.activity_trigger(input_name="city")
    ... def say_hello(city: str) -> str:
    ...     return f"Hello {city}!"

    A function is registered under its Python name unless ``@app.function_name(...)`` is
    stacked on it (in either order) or the trigger decorator names it. The decorators return
    the function unchanged, so it stays callable in tests.
    """

    def __init__(self, *args, **kwargs):
        """Arguments (``http_auth_level`` and the like) are accepted and ignored, so apps
        written for Azure Functions construct unchanged."""
        self._entries: List[_Entry] = []
        self._frozen: Optional[_Registry] = None

    # ---- decorators ----

    def orchestration_trigger(self, context_name: str = "context", orchestration: Optional[str] = None):
        """Registers an orchestrator: a generator function taking the
        ``DurableOrchestrationContext`` (as parameter ``context_name``) that yields tasks
        and returns the output."""
        return self._trigger(ORCHESTRATOR, context_name, orchestration)

    def activity_trigger(self, input_name: str = "input", activity: Optional[str] = None):
        """Registers an activity: a plain function taking the decoded input (as parameter
        ``input_name``) and returning a JSON-encodable output."""
        return self._trigger(ACTIVITY, input_name, activity)

    def entity_trigger(self, context_name: str = "context", entity_name: Optional[str] = None):
        """Registers an entity: a function taking the ``EntityContext`` (as parameter
        ``context_name``) that runs one operation. Entity names are case-insensitive."""
        return self._trigger(ENTITY, context_name, entity_name)

    def function_name(self, name: str, *args, **kwargs):
        """Gives the decorated function the name clients and orchestrators call it by."""

        def decorate(function):
            entry = self._entry_of(function)
            if entry is not None:
                entry.name = str(name)
            else:
                # The trigger decorator is below this one and has not run yet.
                setattr(function, _NAME_ATTRIBUTE, str(name))
            return function

        return decorate

    def _trigger(self, kind: str, parameter: str, name: Optional[str]):
        def decorate(function):
            if self._frozen is not None:
                raise RuntimeError("functions must be registered before the app is exported")
            if not callable(function):
                raise TypeError(f"a {kind} must be a function, not {type(function).__name__}")
            if self._entry_of(function) is not None:
                raise ValueError(f"'{_python_name(function)}' has two trigger decorators")
            chosen = name if name is not None else getattr(function, _NAME_ATTRIBUTE, None)
            self._entries.append(_Entry(kind, function, parameter, chosen))
            return function

        return decorate

    def _entry_of(self, function) -> Optional[_Entry]:
        for entry in self._entries:
            if entry.function is function:
                return entry
        return None

    # ---- the registry ----

    def _registry(self) -> "_Registry":
        """The registered functions; the app cannot change afterwards. Raises ``ValueError``
        if two functions share a name (entities: in any case)."""
        if self._frozen is None:
            self._frozen = _Registry(self._entries)
        return self._frozen

    def get_functions(self) -> List[Tuple[str, str]]:
        """Every function as ``(name, kind)``: orchestrators, activities, entities, each
        kind sorted by name."""
        return self._registry().functions()


class _Registry:
    def __init__(self, entries: List[_Entry]):
        self.orchestrators: Dict[str, Callable] = {}
        self.activities: Dict[str, Callable] = {}
        # By lowercased name: the name as registered, and the function.
        self.entities: Dict[str, Tuple[str, Callable]] = {}
        taken = set()
        for entry in entries:
            name = entry.name if entry.name is not None else _python_name(entry.function)
            folded = name.lower()
            clash = name in taken or folded in self.entities
            if entry.kind == ENTITY:
                clash = clash or any(other.lower() == folded for other in taken)
            if clash:
                raise ValueError(f"durable function '{name}' is registered twice")
            call = _adapt(entry.function, entry.parameter)
            if entry.kind == ORCHESTRATOR:
                self.orchestrators[name] = call
                taken.add(name)
            elif entry.kind == ACTIVITY:
                self.activities[name] = call
                taken.add(name)
            else:
                self.entities[folded] = (name, call)

    def functions(self) -> List[Tuple[str, str]]:
        listed = [(name, ORCHESTRATOR) for name in sorted(self.orchestrators)]
        listed += [(name, ACTIVITY) for name in sorted(self.activities)]
        listed += [(self.entities[key][0], ENTITY) for key in sorted(self.entities)]
        return listed

    def executor(self, name: str, instance_id: str) -> Executor:
        """A new execution of orchestrator ``name``; an unknown name fails it."""
        return Executor(self.orchestrators.get(name), name, instance_id)

    def run_activity(
        self, name: str, input: Optional[str], instance_id: str, task_scheduled_id: int
    ) -> Union[Optional[str], FailureDetails]:
        """Runs activity ``name``: its JSON output, or the ``FailureDetails`` of its
        failure."""
        global _current_activity
        activity = self.activities.get(name)
        if activity is None:
            return FailureDetails("ActivityNotFound", f"this app has no activity named '{name}'")
        _current_activity = ActivityContext(instance_id, task_scheduled_id)
        try:
            output = activity(_json.decode(input))
            if inspect.iscoroutine(output):
                output.close()
                raise TypeError("an activity must be a plain function, not async")
            return _json.encode(output, "the activity output")
        except BaseException as error:  # noqa: BLE001 - every failure is reported
            return failure_from_exception(error)
        finally:
            _current_activity = None

    def run_entity(self, entity_id: WitEntityId, state: Optional[str], operations: List[Operation]) -> BatchResult:
        """Runs a batch of operations on entity ``entity_id`` (found in any case)."""
        found = self.entities.get(entity_id.name.lower())
        return run_batch(None if found is None else found[1], entity_id, state, operations)


def _python_name(function) -> str:
    return getattr(function, "__name__", None) or type(function).__name__


def _adapt(function: Callable, parameter: str) -> Callable:
    """Calls ``function`` with one argument: by keyword when it names the parameter as the
    decorator says (as Azure Functions binds it), with none when it takes none, else
    positionally."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return function
    named = parameters.get(parameter)
    if named is not None and named.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    ):
        return lambda argument: function(**{parameter: argument})
    if not parameters:
        return lambda argument: function()
    return function
