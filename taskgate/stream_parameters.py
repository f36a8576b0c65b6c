"""The parameters of an event stream (API.md, Streaming), read by one set of rules in both services.

``types`` filters by event type (``LLM_OUTPUT,WORKFLOW_COMPLETED``), not by SSE name: an event type
is an upper-case letter followed by upper-case letters, digits and underscores (orchestrator.events),
so ``thread.message.delta`` (an SSE name) and ``llm_output`` are refused rather than silently
matching nothing. ``last_event_id`` (or the ``Last-Event-ID`` header) is the seq to resume after.
"""

import re
from collections.abc import Iterable

EVENT_TYPE_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
MAX_TYPES = 64
TYPES_RULE = (
    f"must be a comma-separated list of at most {MAX_TYPES} event types such as LLM_OUTPUT "
    "(event types, not SSE names)"
)
LAST_EVENT_ID_RULE = "must be a non-negative integer"
_LAST_EVENT_ID_PATTERN = re.compile(r"[0-9]{1,18}")


def event_types(names: Iterable[str]) -> tuple[str, ...]:
    """Return the event types asked for, or raise ValueError(TYPES_RULE) when one is not an event type."""
    types = tuple(names)
    if len(types) > MAX_TYPES or not all(EVENT_TYPE_PATTERN.fullmatch(name) for name in types):
        raise ValueError(TYPES_RULE)
    return types


def parse_types(raw: str | None) -> tuple[str, ...]:
    """Return the event types of a ``types=A,B`` parameter; () (every type) when it is absent or blank.

    Items are stripped; an empty one (``A,,B``) is refused like any other malformed item.
    """
    if raw is None or not raw.strip():
        return ()
    return event_types(item.strip() for item in raw.split(","))


def parse_last_event_id(raw: str) -> int:
    """Return the seq a stream resumes after, or raise ValueError(LAST_EVENT_ID_RULE)."""
    value = raw.strip()
    if _LAST_EVENT_ID_PATTERN.fullmatch(value) is None:
        raise ValueError(LAST_EVENT_ID_RULE)
    return int(value)
