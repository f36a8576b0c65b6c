"""Summarising a workflow's events into its timeline."""

import datetime

from orchestrator.engine.timeline import MAX_MESSAGE_CHARACTERS
from orchestrator.engine.timeline import summarise_timeline
from orchestrator.events import Event

START = datetime.datetime(2026, 11, 23, 14, 0, tzinfo=datetime.UTC)


def event(seq: int, event_type: str, message: str = "", milliseconds: int = 0) -> Event:
    return Event(
        workflow_id="task-1",
        seq=seq,
        type=event_type,
        message=message,
        payload={"delta": message},
        agent_id="agent",
        timestamp=START + datetime.timedelta(milliseconds=milliseconds),
    )


def test_partials_are_left_out_of_the_entries_but_counted():
    events = [
        event(1, "WORKFLOW_STARTED"),
        event(2, "LLM_PARTIAL", "Hel", 100),
        event(3, "LLM_PARTIAL", "lo", 200),
        event(4, "LLM_OUTPUT", "Hello", 250),
        event(5, "STREAM_END", "", 1250),
    ]

    timeline = summarise_timeline("task-1", events)

    assert [entry.seq for entry in timeline.entries] == [1, 4, 5]
    assert timeline.entries[1].message == "Hello" and timeline.entries[1].agent_id == "agent"
    assert timeline.event_count == 5
    assert timeline.by_type == {"WORKFLOW_STARTED": 1, "LLM_PARTIAL": 2, "LLM_OUTPUT": 1, "STREAM_END": 1}
    assert timeline.duration_ms == 1250


def test_long_messages_are_cut_with_an_ellipsis():
    timeline = summarise_timeline("task-1", [event(1, "LLM_OUTPUT", "x" * 2000)])

    message = timeline.entries[0].message
    assert len(message) == MAX_MESSAGE_CHARACTERS and message.endswith("…")


def test_a_workflow_without_events_has_an_empty_timeline():
    timeline = summarise_timeline("task-1", [])

    assert (timeline.entries, timeline.event_count, timeline.duration_ms, timeline.by_type) == ((), 0, 0, {})
