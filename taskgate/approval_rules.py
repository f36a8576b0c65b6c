"""What an approval decision may hold, checked alike by the gateway (400) and the orchestrator."""

from typing import Any

MAX_FEEDBACK_CHARACTERS = 2000
# A modified action, as serialized JSON.
MAX_ACTION_BYTES = 64 * 1024


def json_type_name(value: Any) -> str:
    """Return the name of a JSON value's type, as an error message names it ("a number", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "an object"
