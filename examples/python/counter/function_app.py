"""Durable entities: the Counter entity of the Durable Functions documentation (an integer
with the operations add, reset, get and delete), and two orchestrators that use it:
CounterSignaller signals it (one-way), CounterCaller calls it and reads the result."""

import durable_functions as df

app = df.DFApp()


class UnknownOperation(Exception):
    """The counter has no such operation."""


@app.function_name("Counter")
@app.entity_trigger(context_name="context")
def counter(context: df.EntityContext):
    """The counter: its state is an integer, 0 until the first operation sets it."""
    operation = context.operation_name.lower()
    if operation == "add":
        amount = int(context.get_input())
        context.set_state(context.get_state(lambda: 0) + amount)
    elif operation == "reset":
        context.set_state(0)
    elif operation == "get":
        context.set_result(context.get_state(lambda: 0))
    elif operation == "delete":
        context.delete_state()
    else:
        raise UnknownOperation(f"Counter has no operation '{operation}'")


@app.function_name("CounterSignaller")
@app.orchestration_trigger(context_name="context")
def counter_signaller(context: df.DurableOrchestrationContext):
    """Input {"key": "k", "count": 100}: signals `add 1` to Counter/key `count` times, then
    returns `count`. It waits for nothing, so it need not be a generator."""
    request = context.get_input()
    count = int(request["count"])
    entity_id = df.EntityId("Counter", str(request["key"]))
    for _ in range(count):
        context.signal_entity(entity_id, "add", 1)
    return count


@app.function_name("CounterCaller")
@app.orchestration_trigger(context_name="context")
def counter_caller(context: df.DurableOrchestrationContext):
    """Input: a key. Adds 5 to Counter/key, then returns the value it reads back."""
    entity_id = df.EntityId("Counter", str(context.get_input()))
    yield context.call_entity(entity_id, "add", 5)
    return (yield context.call_entity(entity_id, "get"))
