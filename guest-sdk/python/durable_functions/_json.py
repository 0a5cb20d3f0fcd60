"""JSON text in and out of the host, and the tolerant decoder for client payloads."""

import json
from typing import Any, Optional

from ._errors import SerializationError


def encode(value: Any, what: str) -> str:
    """Encodes ``value`` as compact JSON text; raises ``SerializationError`` naming ``what``.

    NaN and infinities are refused because the host accepts only standard JSON.
    """
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise SerializationError(f"{what} could not be encoded as JSON: {error}") from None


def decode(text: Optional[str]) -> Any:
    """Decodes JSON text that this SDK (or another guest) wrote; ``None`` stays ``None``."""
    if text is None:
        return None
    return json.loads(text)


def decode_payload(text: Optional[str]) -> Any:
    """Decodes a payload that may come from a client: an orchestration input, an event
    payload or an entity operation input.

    The official Python client JSON-encodes every payload twice, so ``{"a": 1}`` arrives as
    a JSON string holding that text. A JSON string whose content is itself a JSON string,
    object or array is therefore decoded once more; any other string (``"3"``,
    ``"hello"``) stays a string, since without a target type there is no telling a
    double-encoded number from a string of digits.
    """
    if text is None:
        return None
    value = json.loads(text)
    if isinstance(value, str) and value.lstrip()[:1] in ('"', "{", "["):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value
