"""Human interaction (Durable Functions sample E4): waits for an "Approval" event, racing it
against a durable timer. Returns "approved" or "timeout".

Input: the timeout in seconds, as a number or as {"timeoutSeconds": n}; 300 if absent.
"""

from datetime import timedelta

import durable_functions as df

DEFAULT_TIMEOUT_SECONDS = 300

app = df.DFApp()


def timeout_seconds(raw) -> int:
    """The timeout the input asks for."""
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT_SECONDS
    if isinstance(raw, dict):
        return int(raw.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS))
    return int(raw)


@app.function_name("E4_Approval")
@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    """Approved if the event comes before the deadline."""
    timeout = timeout_seconds(context.get_input())
    context.set_custom_status("waiting for approval")

    deadline = context.current_utc_datetime + timedelta(seconds=timeout)
    approved = context.wait_for_external_event("Approval")
    timed_out = context.create_timer(deadline)
    winner = yield context.task_any([approved, timed_out])
    if winner is approved:
        timed_out.cancel()
        return "approved"
    approved.cancel()
    return "timeout"
