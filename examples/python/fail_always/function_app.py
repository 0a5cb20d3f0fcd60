"""An orchestration that ends Failed: its activity always fails and the orchestrator does
not catch the error."""

import durable_functions as df

app = df.DFApp()


class FailAlwaysError(Exception):
    """What Fail raises."""


@app.function_name("FailAlways")
@app.orchestration_trigger(context_name="context")
def fail_always(context: df.DurableOrchestrationContext):
    """Calls Fail and lets its failure fail the orchestration."""
    yield context.call_activity("Fail")


@app.function_name("Fail")
@app.activity_trigger(input_name="input")
def fail(input) -> None:
    """Always fails."""
    raise FailAlwaysError("Fail always fails")
