"""Exceptions the SDK raises, and how any exception becomes the host's failure details."""

import traceback
from typing import Optional

from ._model import FailureDetails


class SerializationError(Exception):
    """A value handed to the SDK (an input, a result, a custom status, a state) cannot be
    encoded as JSON."""


class DeserializationError(Exception):
    """A payload cannot be decoded."""


class TaskFailedError(Exception):
    """An awaited activity, sub-orchestration or entity operation failed.

    Raised where the orchestrator yields the task. ``error_type``, ``message`` and
    ``details`` are the failure as the failing function reported it (for a Python activity:
    its exception's class name, its text and its traceback). Left uncaught, it fails the
    orchestration with the same ``error_type``, so callers further up can still match on
    the original kind of error.
    """

    def __init__(
        self,
        task_kind: str,
        task_name: str,
        error_type: str,
        message: str,
        details: Optional[str] = None,
        entity=None,
    ):
        """A failure of task ``task_name`` of kind ``task_kind`` (``"activity"``,
        ``"sub-orchestration"`` or ``"entity operation"``); ``entity`` is the entity of a
        failed entity operation."""
        self.task_kind = task_kind
        self.task_name = task_name
        self.error_type = error_type
        self.message = message
        self.details = details
        self.entity = entity
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.entity is not None:
            return f"operation '{self.task_name}' of entity '{self.entity}' failed: {self.message}"
        return f"{self.task_kind} '{self.task_name}' failed: {self.message}"

    def __str__(self) -> str:
        return self._describe()

    @classmethod
    def _from_failure(cls, task_kind: str, task_name: str, failure: FailureDetails, entity=None):
        return cls(task_kind, task_name, failure.error_type, failure.message, failure.details, entity)


class TaskCancelledError(Exception):
    """The task was cancelled with ``Task.cancel()`` before it completed."""


def failure_from_exception(error: BaseException) -> FailureDetails:
    """The failure details of an exception: its class name, its text and its traceback.

    An uncaught ``TaskFailedError`` keeps the failed task's error type, and its details hold
    both this traceback and the task's own details.
    """
    trace = "".join(traceback.format_exception(type(error), error, _user_frames(error.__traceback__))).rstrip()
    if isinstance(error, TaskFailedError):
        details = trace
        if error.details:
            details = f"{trace}\n\nThe failed {error.task_kind}'s details:\n{error.details}"
        return FailureDetails(error.error_type, str(error), details)
    return FailureDetails(type(error).__name__, str(error), trace)


def _user_frames(trace):
    """The traceback without the SDK's own frames at its top (the runner that called the
    user's function), unless nothing else is left."""
    first = trace
    while trace is not None and trace.tb_frame.f_globals.get("__name__", "").startswith(__package__ + "."):
        trace = trace.tb_next
    return trace if trace is not None else first
