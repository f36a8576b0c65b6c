"""Approvals of a run: the task's own (asked by the engine), and a tool the simulated runner marks."""

import asyncio

import pytest

from orchestrator.engine.approvals import ApprovalNeeded
from orchestrator.engine.approvals import approve_task
from orchestrator.runners.base import ApprovedAction
from orchestrator.runners.base import RunTask
from orchestrator.runners.simulated import SimulatedRunner
from orchestrator.runners.simulated import Simulation
from tests.unit.orchestrator.test_simulated_runner import RecordingContext


class ApprovingContext(RecordingContext):
    """A run context whose approvals are granted as ``approved`` says, or not yet given."""

    def __init__(self, task: RunTask, approved: dict[str, dict | str]) -> None:
        super().__init__(task)
        self.approved = approved
        self.asked: list[tuple[str, dict, str]] = []

    async def request_approval(self, step, proposed_action, reason):
        self.asked.append((step, dict(proposed_action), reason))
        if step not in self.approved:
            raise ApprovalNeeded(step, proposed_action, reason)
        return ApprovedAction(self.approved[step] or proposed_action, modified=bool(self.approved[step]))


def _run(ctx: RecordingContext):
    return asyncio.run(SimulatedRunner(step_seconds=0).run(ctx))


def test_a_task_requiring_approval_asks_before_any_runner_starts():
    ctx = ApprovingContext(
        RunTask("task-1", "What is 2+2?", "standard", "small", options={"require_approval": True}), {}
    )

    with pytest.raises(ApprovalNeeded) as raised:
        asyncio.run(approve_task(ctx))

    assert raised.value.step == "task"
    assert raised.value.proposed_action == {"action": "run_task", "query": "What is 2+2?", "mode": "standard"}
    assert ctx.events == []


def test_an_approved_modified_action_is_what_the_run_answers():
    task = RunTask("task-1", "What is 2+2?", "standard", "small", context={"require_approval": True})
    ctx = ApprovingContext(task, {"task": {"action": "run_task", "query": "What is 6*7?"}})

    approved = asyncio.run(approve_task(ctx))
    result = _run(ApprovingContext(approved, {}))

    assert ctx.events[0][0] == "AGENT_THINKING"
    assert ctx.events[0][2] == {
        "approved_action": {"action": "run_task", "query": "What is 6*7?"},
        "modified": True,
        "feedback": "",
    }
    assert approved.query == "What is 6*7?"
    assert "42" in result.result_text


def test_a_tool_marked_as_needing_approval_is_proposed_after_analysing():
    task = RunTask(
        "task-1", "What is 2+2?", "standard", "small", context={"simulation": {"approval_tool": "web_search"}}
    )
    ctx = ApprovingContext(task, {})

    with pytest.raises(ApprovalNeeded) as raised:
        _run(ctx)

    assert raised.value.step == "tool:web_search"
    assert raised.value.proposed_action == {"tool": "web_search", "arguments": {"query": "What is 2+2?"}}
    assert [event[0] for event in ctx.events] == ["AGENT_STARTED", "AGENT_THINKING"]


def test_an_approved_tool_is_called_as_approved():
    task = RunTask(
        "task-1", "What is 2+2?", "standard", "small", context={"simulation": {"approval_tool": "web_search"}}
    )
    approved = {"tool": "web_search", "arguments": {"query": "safer"}}
    ctx = ApprovingContext(task, {"tool:web_search": approved})

    _run(ctx)

    types = [event[0] for event in ctx.events]
    assert types[2:4] == ["TOOL_INVOKED", "TOOL_OBSERVATION"]
    assert ctx.events[2][2] == {
        "tool": "web_search",
        "approved_action": approved,
        "modified": True,
        "feedback": "",
    }


def test_a_string_modified_action_is_the_query_the_task_answers():
    task = RunTask("task-1", "What is 2+2?", "standard", "small", options={"require_approval": True})
    ctx = ApprovingContext(task, {"task": "What is 6*7?"})

    approved = asyncio.run(approve_task(ctx))
    result = _run(ApprovingContext(approved, {}))

    assert ctx.events[0][2] == {"approved_action": "What is 6*7?", "modified": True, "feedback": ""}
    assert approved.query == "What is 6*7?"
    assert "42" in result.result_text


def test_a_tool_call_rewritten_as_a_string_is_recorded_as_the_call_made():
    task = RunTask(
        "task-1", "What is 2+2?", "standard", "small", context={"simulation": {"approval_tool": "web_search"}}
    )
    ctx = ApprovingContext(task, {"tool:web_search": "search the docs only"})

    _run(ctx)

    invoked = next(event for event in ctx.events if event[0] == "TOOL_INVOKED")
    assert invoked[2] == {
        "tool": "web_search",
        "approved_action": "search the docs only",
        "modified": True,
        "feedback": "",
    }


@pytest.mark.parametrize(
    ("tool", "expected"), [("web_search", "web_search"), ("", None), ("a b", None), (3, None)]
)
def test_the_approval_tool_must_be_a_tool_name(tool, expected):
    task = RunTask("task-1", "q", "standard", "small", context={"simulation": {"approval_tool": tool}})

    assert Simulation.for_task(task, 0.2).approval_tool == expected
