"""Conversions between WIT timestamps (microseconds since the Unix epoch, UTC) and
``datetime``, and the text form used in deterministic UUIDs."""

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

I64_MAX = (1 << 63) - 1
I64_MIN = -(1 << 63)


def saturate(micros: int) -> int:
    """Clamps to the range of the WIT ``s64`` timestamp, as the Rust SDK's arithmetic does."""
    return max(I64_MIN, min(I64_MAX, micros))


def to_datetime(micros: int) -> datetime:
    """The aware UTC datetime of a timestamp."""
    return EPOCH + timedelta(microseconds=micros)


def from_datetime(moment: datetime) -> int:
    """The timestamp of a datetime; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - EPOCH
    # Integer arithmetic: total_seconds() is a float and would lose microseconds.
    return saturate((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def to_iso8601(micros: int) -> str:
    """``yyyy-MM-ddTHH:mm:ss.fffffffZ``, the .NET round-trip format that Durable Functions
    uses when it derives UUIDs from the orchestration time."""
    moment = to_datetime(micros)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}0Z"
    )
