"""Function chaining (Durable Functions sample E1): an orchestrator calls one activity
three times in sequence and returns the three greetings."""

import durable_functions as df

app = df.DFApp()


@app.function_name("E1_HelloSequence")
@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):
    """Greets Tokyo, Seattle and London, one after the other."""
    greetings = []
    for city in ["Tokyo", "Seattle", "London"]:
        greetings.append((yield context.call_activity("E1_SayHello", city)))
    return greetings


@app.function_name("E1_SayHello")
@app.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    """Greets one city."""
    return f"Hello {city}!"
