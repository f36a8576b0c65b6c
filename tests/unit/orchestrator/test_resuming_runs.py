"""Runs resumed from a checkpoint: each records exactly the rest of the run, and calls no model twice."""

import asyncio
import dataclasses

import httpx
import pytest

from orchestrator.runners.base import RunTask
from orchestrator.runners.openai_compatible import OpenAICompatibleRunner
from orchestrator.runners.simulated import SimulatedRunner
from tests.unit.orchestrator.test_openai_runner import USAGE
from tests.unit.orchestrator.test_openai_runner import delta
from tests.unit.orchestrator.test_openai_runner import settings
from tests.unit.orchestrator.test_openai_runner import sse
from tests.unit.orchestrator.test_openai_runner import task as openai_task
from tests.unit.orchestrator.test_simulated_approvals import ApprovingContext
from tests.unit.orchestrator.test_simulated_runner import RecordingContext

TOOL_TASK = RunTask(
    "task-1", "What is 6*7?", "standard", "small", context={"simulation": {"approval_tool": "web_search"}}
)


def _simulate(ctx: RecordingContext):
    return asyncio.run(SimulatedRunner(step_seconds=0).run(ctx))


def test_every_event_of_a_simulated_run_saves_the_checkpoint_of_its_step():
    ctx = RecordingContext(RunTask("task-1", "Tell me about Paris", "standard", "small"))
    _simulate(ctx)

    assert [saved["step"] for saved in ctx.saved] == list(range(1, len(ctx.events) + 1))


@pytest.mark.parametrize("query", ["Tell me about Paris", "What is 2+2?"])
def test_a_simulated_run_resumed_from_any_checkpoint_records_exactly_the_rest(query):
    whole = RecordingContext(RunTask("task-1", query, "standard", "small"))
    result = _simulate(whole)

    for done, saved in enumerate(whole.saved, start=1):
        resumed = RecordingContext(RunTask("task-1", query, "standard", "small", attempt=2, checkpoint=saved))
        assert _simulate(resumed) == result
        assert whole.events[:done] + resumed.events == whole.events
        assert resumed.saved == whole.saved[done:]


def test_a_run_resumed_after_an_approval_asks_again_and_goes_on_with_the_decision():
    # The first attempt asks after analysing and ends; its last checkpoint is that step's.
    first = ApprovingContext(TOOL_TASK, {})
    with pytest.raises(BaseException, match="tool:web_search"):
        _simulate(first)
    assert [event[0] for event in first.events] == ["AGENT_STARTED", "AGENT_THINKING"]

    approved = {"tool": "web_search", "arguments": {"query": "42"}}
    resumed = ApprovingContext(
        dataclasses.replace(TOOL_TASK, checkpoint=first.saved[-1]), {"tool:web_search": approved}
    )
    _simulate(resumed)

    assert [asked[0] for asked in resumed.asked] == ["tool:web_search"]
    types = [event[0] for event in resumed.events]
    assert types[:2] == ["TOOL_INVOKED", "TOOL_OBSERVATION"]
    assert "AGENT_STARTED" not in types and "AGENT_THINKING" not in types
    assert resumed.events[0][2]["approved_action"] == approved


def test_a_run_resumed_after_the_tool_call_does_not_ask_again():
    approved = {"tool:web_search": {}}
    whole = ApprovingContext(TOOL_TASK, approved)
    _simulate(whole)
    invoked = [event[0] for event in whole.events].index("TOOL_INVOKED")

    resumed = ApprovingContext(dataclasses.replace(TOOL_TASK, checkpoint=whole.saved[invoked]), approved)
    _simulate(resumed)

    assert resumed.asked == []
    assert whole.events[: invoked + 1] + resumed.events == whole.events


def test_an_openai_run_resumed_after_its_finished_call_does_not_call_the_model_again():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=sse(delta("Four"), delta("."), USAGE))

    def run(ctx: RecordingContext):
        runner = OpenAICompatibleRunner(settings(), transport=httpx.MockTransport(handler))
        return asyncio.run(runner.run(ctx))

    whole = RecordingContext(openai_task())
    result = run(whole)
    output = [event[0] for event in whole.events].index("LLM_OUTPUT")
    answered = whole.saved[2]
    assert whole.events[output][0] == "LLM_OUTPUT" and answered["answer"] == "Four."

    resumed = RecordingContext(dataclasses.replace(openai_task(), attempt=2, checkpoint=answered))
    assert run(resumed) == result
    assert len(calls) == 1
    assert [event[0] for event in resumed.events] == ["AGENT_COMPLETED"]


def test_an_openai_run_resumed_before_its_call_finished_calls_the_model_again_without_repeating_steps():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse(delta("Four"), delta("."), USAGE))

    runner = OpenAICompatibleRunner(settings(), transport=httpx.MockTransport(handler))
    whole = RecordingContext(openai_task())
    asyncio.run(runner.run(whole))
    calling = whole.saved[1]

    resumed = RecordingContext(dataclasses.replace(openai_task(), attempt=2, checkpoint=calling))
    asyncio.run(runner.run(resumed))

    types = [event[0] for event in resumed.events]
    assert types == ["LLM_PARTIAL", "LLM_PARTIAL", "LLM_OUTPUT", "AGENT_COMPLETED"]
