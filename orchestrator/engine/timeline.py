"""A task's timeline: its events summarised, without the streamed LLM_PARTIAL deltas, and counted."""

import dataclasses
import datetime
from collections import Counter
from collections.abc import Sequence

from orchestrator import events
from orchestrator.events import Event

MAX_MESSAGE_CHARACTERS = 500
_ELLIPSIS = "…"


@dataclasses.dataclass(frozen=True)
class TimelineEntry:
    """One event, without its payload, its message cut to MAX_MESSAGE_CHARACTERS."""

    seq: int
    type: str
    agent_id: str
    message: str
    timestamp: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Timeline:
    """A workflow's summarised events and their statistics.

    ``event_count`` and ``by_type`` count every event, LLM_PARTIAL included; ``duration_ms`` is the
    time from the first event to the last one so far.
    """

    workflow_id: str
    entries: tuple[TimelineEntry, ...]
    duration_ms: int
    event_count: int
    by_type: dict[str, int]


def summarise_timeline(workflow_id: str, workflow_events: Sequence[Event]) -> Timeline:
    """Return the timeline of a workflow's events, given in seq order."""
    entries = tuple(
        TimelineEntry(event.seq, event.type, event.agent_id, _shortened(event.message), event.timestamp)
        for event in workflow_events
        if event.type != events.LLM_PARTIAL
    )
    duration_ms = 0
    if workflow_events:
        elapsed = workflow_events[-1].timestamp - workflow_events[0].timestamp
        duration_ms = max(0, round(elapsed.total_seconds() * 1000))
    return Timeline(
        workflow_id=workflow_id,
        entries=entries,
        duration_ms=duration_ms,
        event_count=len(workflow_events),
        by_type=dict(Counter(event.type for event in workflow_events)),
    )


def _shortened(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARACTERS:
        return message
    return message[: MAX_MESSAGE_CHARACTERS - len(_ELLIPSIS)] + _ELLIPSIS
