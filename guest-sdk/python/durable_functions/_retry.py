"""Retry policies for activity and sub-orchestration calls."""

from typing import Optional

from ._time import I64_MAX, saturate


class RetryOptions:
    """How to retry a failed activity or sub-orchestration, as in Durable Functions.

    After failed attempt ``k`` (counting from 1) the call is tried again if
    ``k < max_number_of_attempts`` and, when a retry timeout is set, the next attempt would
    start before ``first attempt + retry_timeout``. The wait before it is a durable timer of
    ``first_retry_interval * backoff_coefficient ** (k - 1)``, capped at
    ``max_retry_interval``. Intervals are in milliseconds.

    >>> retry = RetryOptions(first_retry_interval_in_milliseconds=5000,
    ...                      max_number_of_attempts=3)
    >>> retry.backoff_coefficient = 2.0
    """

    def __init__(
        self,
        first_retry_interval_in_milliseconds: int,
        max_number_of_attempts: int,
        backoff_coefficient: float = 1.0,
        max_retry_interval_in_milliseconds: Optional[int] = None,
        retry_timeout_in_milliseconds: Optional[int] = None,
    ):
        """Retries after ``first_retry_interval_in_milliseconds``, at most
        ``max_number_of_attempts`` attempts in all (the first one included)."""
        self.first_retry_interval_in_milliseconds = first_retry_interval_in_milliseconds
        self.max_number_of_attempts = max_number_of_attempts
        self.backoff_coefficient = backoff_coefficient
        self.max_retry_interval_in_milliseconds = max_retry_interval_in_milliseconds
        self.retry_timeout_in_milliseconds = retry_timeout_in_milliseconds

    def __repr__(self) -> str:
        return (
            f"RetryOptions(first_retry_interval_in_milliseconds="
            f"{self.first_retry_interval_in_milliseconds!r}, "
            f"max_number_of_attempts={self.max_number_of_attempts!r}, "
            f"backoff_coefficient={self.backoff_coefficient!r}, "
            f"max_retry_interval_in_milliseconds={self.max_retry_interval_in_milliseconds!r}, "
            f"retry_timeout_in_milliseconds={self.retry_timeout_in_milliseconds!r})"
        )

    def delay_micros(self, attempt: int) -> int:
        """The wait after failed attempt ``attempt`` (1-based), in microseconds.

        Repeated multiplication rather than ``**``, so the float arithmetic is exactly the
        Rust SDK's and an orchestration replays the same timers in either language.
        """
        cap = I64_MAX
        if self.max_retry_interval_in_milliseconds is not None:
            cap = max(0, _millis_to_micros(self.max_retry_interval_in_milliseconds))
        # Compared as floats, as Rust's `cap as f64` does.
        cap_float = float(cap)
        delay = float(_millis_to_micros(self.first_retry_interval_in_milliseconds))
        for _ in range(1, attempt):
            delay *= self.backoff_coefficient
            if delay >= cap_float:
                break
        if delay != delay or delay <= 0.0:
            return 0
        if delay >= cap_float:
            return cap
        return int(delay)

    def retry_at(self, attempt: int, first_attempt: int, now: int) -> Optional[int]:
        """When to fire the timer before the next attempt, after failed attempt ``attempt``
        (1-based) was seen at ``now``, for a call first attempted at ``first_attempt``;
        ``None`` when the call should fail instead."""
        if attempt >= self.max_number_of_attempts:
            return None
        fire_at = saturate(now + self.delay_micros(attempt))
        if self.retry_timeout_in_milliseconds is not None:
            deadline = saturate(first_attempt + _millis_to_micros(self.retry_timeout_in_milliseconds))
            if fire_at >= deadline:
                return None
        return fire_at


def _millis_to_micros(millis) -> int:
    # A negative duration cannot exist in Rust; zero is the closest meaning.
    return saturate(max(0, int(millis * 1000)))
