"""The ran-once rule the durability tests and the crash drill apply to a task's event log."""

from tests.integration.event_log import finished_log_faults
from tests.integration.event_log import repeated_steps


def _log(*types: str, partials: tuple[int, ...] = ()) -> list[dict]:
    """Build a log of the given types in seq order; each LLM_PARTIAL takes the next index of ``partials``."""
    indexes = iter(partials)
    return [
        {"seq": seq, "type": kind, "payload": {"index": next(indexes)} if kind == "LLM_PARTIAL" else {}}
        for seq, kind in enumerate(types, start=1)
    ]


RAN_ONCE = _log(
    "WORKFLOW_STARTED",
    "AGENT_STARTED",
    "AGENT_THINKING",
    "LLM_PARTIAL",
    "LLM_PARTIAL",
    "WORKFLOW_RESUMED",
    "LLM_OUTPUT",
    "AGENT_COMPLETED",
    "WORKFLOW_COMPLETED",
    "STREAM_END",
    partials=(0, 1),
)


def test_a_log_resumed_from_its_checkpoint_ran_once():
    assert repeated_steps(RAN_ONCE) == []
    assert finished_log_faults(RAN_ONCE) == []


def test_a_runner_step_or_a_partial_index_recorded_twice_is_a_second_run():
    log = _log(
        "AGENT_STARTED",
        "LLM_PARTIAL",
        "WORKFLOW_RESUMED",
        "AGENT_STARTED",
        "LLM_PARTIAL",
        "LLM_PARTIAL",
        "WORKFLOW_COMPLETED",
        "STREAM_END",
        partials=(0, 0, 1),
    )
    assert repeated_steps(log) == ["AGENT_STARTED recorded 2 times", "LLM_PARTIAL index 0 recorded 2 times"]


def test_two_ends_are_a_second_run():
    log = _log("AGENT_STARTED", "WORKFLOW_FAILED", "STREAM_END", "WORKFLOW_COMPLETED", "STREAM_END")
    assert repeated_steps(log) == ["2 terminal events", "STREAM_END recorded 2 times"]


def test_a_gap_in_seq_or_a_log_not_ending_with_its_end_breaks_the_rule():
    gap = [{**event, "seq": event["seq"] + (event["seq"] > 3)} for event in RAN_ONCE]
    assert finished_log_faults(gap)[0].startswith("seq is not 1..10 without gaps")
    unfinished = _log("AGENT_STARTED", "AGENT_THINKING")
    assert repeated_steps(unfinished) == []
    assert finished_log_faults(unfinished) == [
        "the log does not end with a terminal event and STREAM_END: ['AGENT_STARTED', 'AGENT_THINKING']"
    ]
