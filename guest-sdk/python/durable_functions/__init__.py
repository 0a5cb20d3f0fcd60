"""Write Durable Functions (orchestrators, activities and entities) in Python, in the style
of the Durable Functions Python SDK, and build them into a WebAssembly component that the
durable host runs.

.. code-block:: python

    import durable_functions as df

    app = df.DFApp()

    @app.function_name("E1_HelloSequence")
    @app.orchestration_trigger(context_name="context")
    def hello_sequence(context: df.DurableOrchestrationContext):
        greetings = []
        for city in ["Tokyo", "Seattle", "London"]:
            greetings.append((yield context.call_activity("E1_SayHello", city)))
        return greetings

    @app.function_name("E1_SayHello")
    @app.activity_trigger(input_name="city")
    def say_hello(city: str) -> str:
        return f"Hello {city}!"

An app is a directory whose ``function_app.py`` defines ``app``; ``durable build`` turns
it into a component. Orchestrators are generator functions that run by replay, so they
must be deterministic: see ``DurableOrchestrationContext``.
"""

from ._app import ActivityContext, DFApp, activity_context
from ._context import DurableOrchestrationContext, EntityLock
from ._entity import EntityContext
from ._entity_id import EntityId
from ._errors import (
    DeserializationError,
    SerializationError,
    TaskCancelledError,
    TaskFailedError,
)
from ._retry import RetryOptions
from ._task import Task, TimerTask

# Shown as durable_functions.X in tracebacks and reprs, not as the private module.
for _public in (
    ActivityContext,
    DFApp,
    DeserializationError,
    DurableOrchestrationContext,
    EntityContext,
    EntityId,
    EntityLock,
    RetryOptions,
    SerializationError,
    Task,
    TaskCancelledError,
    TaskFailedError,
    TimerTask,
):
    _public.__module__ = __name__
del _public

# The names the Durable Functions Python SDK uses for the same classes.
DurableEntityContext = EntityContext
OrchestrationContext = DurableOrchestrationContext

__version__ = "0.2.0"

__all__ = [
    "ActivityContext",
    "DFApp",
    "DeserializationError",
    "DurableEntityContext",
    "DurableOrchestrationContext",
    "EntityContext",
    "EntityId",
    "EntityLock",
    "OrchestrationContext",
    "RetryOptions",
    "SerializationError",
    "Task",
    "TaskCancelledError",
    "TaskFailedError",
    "TimerTask",
    "activity_context",
]
