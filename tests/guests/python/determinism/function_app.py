"""A test app of tests/e2e/polyglot.rs: an orchestrator that reads the wall clock, the
random module and the OS random source directly, then pins what it read in an activity
input. If a replay read different values, the host would see a different action and fail
the instance as non-deterministic. And one that fails with an exception of its own."""

import os
import random
import time
import uuid
from datetime import datetime, timezone

import durable_functions as df

app = df.DFApp()


@app.function_name("Determinism")
@app.orchestration_trigger(context_name="context")
def determinism(context: df.DurableOrchestrationContext):
    """Two rounds of reading, pinning and waiting for the event "Next"."""
    rounds = []
    for _ in range(2):
        values = {
            "random": random.random(),
            "randint": random.randint(0, 10**9),
            "time": time.time(),
            "now": datetime.now(timezone.utc).isoformat(),
            "utc": context.current_utc_datetime.isoformat(),
            "uuid4": str(uuid.uuid4()),
            "new_uuid": context.new_uuid(),
            "urandom": os.urandom(8).hex(),
        }
        yield context.call_activity("Pin", values)
        yield context.wait_for_external_event("Next")
        rounds.append(values)
    return rounds


@app.function_name("Pin")
@app.activity_trigger(input_name="values")
def pin(values):
    """Returns what it was given, so the history records it."""
    return values


@app.function_name("Raises")
@app.orchestration_trigger(context_name="context")
def raises(context: df.DurableOrchestrationContext):
    """Fails with an exception of its own, after one activity so the failure is not at start."""
    yield context.call_activity("Pin", {"step": 1})
    raise ValueError("the orchestrator gave up on purpose")
