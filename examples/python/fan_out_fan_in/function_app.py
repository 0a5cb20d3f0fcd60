"""Fan-out/fan-in (Durable Functions sample E2): squares 1..n in parallel activities and
returns the sum, so n = 3 gives 14."""

import durable_functions as df

app = df.DFApp()


@app.function_name("E2_FanOutFanIn")
@app.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    """Input: n, as a number (or a string of digits, as the Python client sends it)."""
    n = int(context.get_input())
    squares = yield context.task_all([context.call_activity("E2_Square", i) for i in range(1, n + 1)])
    return sum(squares)


@app.function_name("E2_Square")
@app.activity_trigger(input_name="x")
def square(x: int) -> int:
    """x squared."""
    return x * x
