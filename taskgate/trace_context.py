"""W3C Trace Context: the ``traceparent`` the gateway accepts and forwards, and the orchestrator logs."""

import re

# Version 00 layout: version-traceid-parentid-flags, lower-case hex.
_TRACEPARENT_PATTERN = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_INVALID_VERSION = "ff"
_ZERO_TRACE_ID = "0" * 32
_ZERO_PARENT_ID = "0" * 16


def trace_id_from_traceparent(value: str | None) -> str | None:
    """Return the trace id of a valid ``traceparent`` value, else None."""
    match = _TRACEPARENT_PATTERN.fullmatch(value or "")
    if match is None:
        return None
    version, trace_id, parent_id, _flags = match.groups()
    if version == _INVALID_VERSION or trace_id == _ZERO_TRACE_ID or parent_id == _ZERO_PARENT_ID:
        return None
    return trace_id
