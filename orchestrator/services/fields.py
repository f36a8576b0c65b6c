"""Checks of request fields shared by the servicers; each failure names its field."""

from orchestrator.errors import InvalidArgumentError
from taskgate.identifiers import ID_RULE
from taskgate.identifiers import is_valid_id


def require_id(field: str, value: str) -> str:
    """Return an id field that has the allowed shape; raise InvalidArgumentError otherwise."""
    if not is_valid_id(value):
        raise InvalidArgumentError(field, f"{field} {ID_RULE}")
    return value


def optional_id(field: str, value: str) -> str | None:
    """Return an optional id field (empty means absent) when it has the allowed shape."""
    return require_id(field, value) if value else None


def page(limit: int, offset: int, default_limit: int, max_limit: int) -> tuple[int, int]:
    """Return (limit, offset) of a page request; a limit of 0 means the default."""
    limit = limit or default_limit
    if not 1 <= limit <= max_limit:
        raise InvalidArgumentError("limit", f"limit must be 1..{max_limit}")
    if offset < 0:
        raise InvalidArgumentError("offset", "offset must be 0 or more")
    return limit, offset
