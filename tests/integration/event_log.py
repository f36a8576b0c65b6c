"""Whether a task's event log shows it ran once: the rule of the durability tests and the crash drill.

A run that resumes from its checkpoint records each of its runner's steps once, however often its
replica died. So in a finished task's log no runner step event repeats (``AGENT_STARTED``,
``AGENT_THINKING``, ``LLM_OUTPUT``, ``AGENT_COMPLETED``, and ``LLM_PARTIAL`` per ``payload.index``),
``seq`` runs 1..N without a gap, and exactly one terminal event is followed by exactly one
``STREAM_END``, the last event. An event is a mapping with ``seq``, ``type`` and ``payload``, as
``GET /api/v1/tasks/{id}/events`` returns it.
"""

import collections
from collections.abc import Mapping
from collections.abc import Sequence

RUNNER_STEP_EVENTS = ("AGENT_STARTED", "AGENT_THINKING", "LLM_OUTPUT", "AGENT_COMPLETED")
PARTIAL = "LLM_PARTIAL"
TERMINAL_EVENTS = ("WORKFLOW_COMPLETED", "WORKFLOW_FAILED", "WORKFLOW_CANCELLED", "WORKFLOW_TIMEOUT")
STREAM_END = "STREAM_END"
RESUMED = "WORKFLOW_RESUMED"


def repeated_steps(events: Sequence[Mapping]) -> list[str]:
    """Return what in a log was recorded twice: a runner step, a partial's index, an end (empty: none)."""
    counts = collections.Counter(event["type"] for event in events)
    repeated = [f"{kind} recorded {counts[kind]} times" for kind in RUNNER_STEP_EVENTS if counts[kind] > 1]
    indexes = collections.Counter(
        event["payload"].get("index") for event in events if event["type"] == PARTIAL
    )
    repeated += [
        f"{PARTIAL} index {index} recorded {count} times" for index, count in indexes.items() if count > 1
    ]
    terminal = sum(counts[kind] for kind in TERMINAL_EVENTS)
    if terminal > 1:
        repeated.append(f"{terminal} terminal events")
    if counts[STREAM_END] > 1:
        repeated.append(f"{STREAM_END} recorded {counts[STREAM_END]} times")
    return repeated


def finished_log_faults(events: Sequence[Mapping]) -> list[str]:
    """Return every way a finished task's log breaks the rule (empty: it ran once and ended once)."""
    faults = repeated_steps(events)
    seqs = [event["seq"] for event in events]
    if seqs != list(range(1, len(seqs) + 1)):
        faults.append(f"seq is not 1..{len(seqs)} without gaps: {seqs}")
    types = [event["type"] for event in events]
    if len(types) < 2 or types[-1] != STREAM_END or types[-2] not in TERMINAL_EVENTS:
        faults.append(f"the log does not end with a terminal event and {STREAM_END}: {types[-3:]}")
    return faults
