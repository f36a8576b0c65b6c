"""Field validation shared by the resources: the id pattern, query integers, collected errors."""

import re

import falcon

from gateway.errors import ValidationError

ID_PATTERN = re.compile(r"^[A-Za-z0-9:_\-.]{1,128}$")
ID_RULE = "must match ^[A-Za-z0-9:_\\-.]{1,128}$"
INT32_MAX = 2**31 - 1
_DIGITS = re.compile(r"^[0-9]{1,10}$")


def is_valid_id(value: object) -> bool:
    """Return whether a value is a string id of API.md (1..128 of ``[A-Za-z0-9:_\\-.]``)."""
    return isinstance(value, str) and ID_PATTERN.match(value) is not None


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
    if _DIGITS.match(raw) is None or not minimum <= int(raw) <= maximum:
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
