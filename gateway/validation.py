"""Field validation shared by the resources: query integers and ids, a control reason, collected errors."""

import re
from typing import Any

import falcon

from gateway.errors import ValidationError
from taskgate.identifiers import ID_RULE
from taskgate.identifiers import is_valid_id
from taskgate.task_rules import MAX_REASON_CHARACTERS

INT32_MAX = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


class FieldErrors:
    """Collects every invalid field of a request, so the client learns them all at once."""

    def __init__(self) -> None:
        self.details: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        """Record that ``field`` is invalid."""
        self.details.append({"field": field, "message": message})

    def raise_if_any(self) -> None:
        """Raise 400 validation_failed listing the recorded fields, if any."""
        if self.details:
            raise ValidationError(self.details)


def int_query_param(
    req: falcon.Request, name: str, default: int, minimum: int, maximum: int, errors: FieldErrors
) -> int:
    """Return an integer query parameter within bounds, or the default; record a bad value."""
    raw = req.get_param(name)
    if raw is None:
        return default
    if _DIGITS.fullmatch(raw) is None or not minimum <= int(raw) <= maximum:
        errors.add(name, f"must be an integer from {minimum} to {maximum}")
        return default
    return int(raw)


def id_query_param(req: falcon.Request, name: str, errors: FieldErrors) -> str | None:
    """Return an optional id query parameter; record one that breaks the id pattern."""
    raw = req.get_param(name)
    if raw is not None and not is_valid_id(raw):
        errors.add(name, ID_RULE)
        return None
    return raw


def control_reason(body: dict[str, Any]) -> str:
    """Return the optional ``reason`` of a task or schedule control body ("" when absent or null)."""
    reason = body.get("reason")
    if reason is None:
        return ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARACTERS:
        errors = FieldErrors()
        errors.add("reason", f"must be a string of at most {MAX_REASON_CHARACTERS} characters")
        errors.raise_if_any()
    return reason
