"""Task submission checks: every bad field is refused with a static message naming it."""

import json

import pytest

from orchestrator.engine.submission import TaskSubmission
from orchestrator.engine.submission import validate_submission
from orchestrator.errors import InvalidArgumentError
from taskgate.task_rules import MAX_CONTEXT_BYTES


def test_defaults_and_normalisation():
    valid = validate_submission(TaskSubmission(query="hi", mode="Complex", model_tier=" LARGE "))
    assert valid.mode == "complex"
    assert valid.session_id is None
    assert valid.context == {}
    assert valid.options == {"model_tier": "large", "require_approval": False}


def test_defaults_when_nothing_is_chosen():
    valid = validate_submission(TaskSubmission(query="hi"))
    assert valid.mode == "standard"
    assert valid.options["model_tier"] == "small"


def test_optional_options_are_kept_when_given():
    valid = validate_submission(
        TaskSubmission(
            query="hi",
            session_id="s-1",
            context_json='{"user": {"lang": "fr"}}',
            research_strategy="deep",
            max_iterations=50,
            max_concurrent_agents=1,
            enable_verification=False,
            model_override="gpt-x",
            timeout_seconds=30,
        )
    )
    assert valid.session_id == "s-1"
    assert valid.context == {"user": {"lang": "fr"}}
    assert valid.options["research_strategy"] == "deep"
    assert valid.options["max_iterations"] == 50
    assert valid.options["max_concurrent_agents"] == 1
    assert valid.options["enable_verification"] is False
    assert valid.options["model_override"] == "gpt-x"
    assert valid.options["timeout_seconds"] == 30


@pytest.mark.parametrize(
    ("submission", "field"),
    [
        (TaskSubmission(query=""), "query"),
        (TaskSubmission(query="   "), "query"),
        (TaskSubmission(query="x" * 10_001), "query"),
        (TaskSubmission(query="x", session_id="has space"), "session_id"),
        (TaskSubmission(query="x", context_json="[1, 2]"), "context"),
        (TaskSubmission(query="x", context_json="{not json"), "context"),
        (TaskSubmission(query="x", context_json="[" * 100_000), "context"),
        (TaskSubmission(query="x", mode="turbo"), "mode"),
        (TaskSubmission(query="x", model_tier="huge"), "model_tier"),
        (TaskSubmission(query="x", research_strategy="lazy"), "research_strategy"),
        (TaskSubmission(query="x", max_iterations=0), "max_iterations"),
        (TaskSubmission(query="x", max_iterations=51), "max_iterations"),
        (TaskSubmission(query="x", max_concurrent_agents=21), "max_concurrent_agents"),
        (TaskSubmission(query="x", model_override="m" * 129), "model_override"),
        (TaskSubmission(query="x", timeout_seconds=-1), "timeout_seconds"),
        (TaskSubmission(query="x", multitask_strategy="sideways"), "multitask_strategy"),
        (TaskSubmission(query="x", multitask_strategy="Reject"), "multitask_strategy"),
        (TaskSubmission(query="x", multitask_strategy=" enqueue"), "multitask_strategy"),
        (TaskSubmission(query="x", multitask_strategy=1), "multitask_strategy"),
        (TaskSubmission(query="x", approval_timeout_seconds=0), "approval_timeout_seconds"),
        (TaskSubmission(query="x", approval_timeout_seconds=2_592_001), "approval_timeout_seconds"),
        (TaskSubmission(query="x", approval_timeout_seconds=-60), "approval_timeout_seconds"),
        (TaskSubmission(query="x", approval_timeout_seconds=True), "approval_timeout_seconds"),
        (TaskSubmission(query="x", approval_timeout_seconds=60.0), "approval_timeout_seconds"),
        (TaskSubmission(query="x", approval_timeout_seconds="60"), "approval_timeout_seconds"),
    ],
)
def test_bad_fields_are_refused_by_name(submission, field):
    with pytest.raises(InvalidArgumentError) as caught:
        validate_submission(submission)
    assert caught.value.field == field
    assert caught.value.public_message.startswith(field)


@pytest.mark.parametrize("strategy", ["enqueue", "reject", "interrupt", "rollback"])
def test_a_multitask_strategy_given_is_stored(strategy):
    valid = validate_submission(TaskSubmission(query="x", session_id="s-1", multitask_strategy=strategy))
    assert valid.options["multitask_strategy"] == strategy


def test_no_multitask_strategy_is_stored_when_none_is_given():
    # Absent means enqueue; the option is left out so a task that chose enqueue is told apart.
    for submission in (TaskSubmission(query="x"), TaskSubmission(query="x", multitask_strategy="")):
        assert "multitask_strategy" not in validate_submission(submission).options


@pytest.mark.parametrize("seconds", [1, 90, 2_592_000])
def test_an_approval_timeout_within_its_bounds_is_stored(seconds):
    valid = validate_submission(TaskSubmission(query="x", approval_timeout_seconds=seconds))
    assert valid.options["approval_timeout_seconds"] == seconds


def test_no_approval_timeout_is_stored_when_none_is_given():
    assert "approval_timeout_seconds" not in validate_submission(TaskSubmission(query="x")).options


def test_query_of_exactly_the_limit_is_accepted():
    assert validate_submission(TaskSubmission(query="x" * 10_000)).query == "x" * 10_000


def test_context_size_limit_is_in_bytes():
    fits = json.dumps({"k": "x" * (MAX_CONTEXT_BYTES - 20)})
    too_big = json.dumps({"k": "é" * (MAX_CONTEXT_BYTES // 2)})
    assert validate_submission(TaskSubmission(query="x", context_json=fits)).context
    with pytest.raises(InvalidArgumentError):
        validate_submission(TaskSubmission(query="x", context_json=too_big))
