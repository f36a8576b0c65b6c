"""What a new turn does to its session's active turns: the strategies and the interruption rule."""

import dataclasses
import datetime

import pytest

from orchestrator import events
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.turns import INTERRUPTED_REASON
from orchestrator.domain.turns import MULTITASK_STRATEGIES
from orchestrator.domain.turns import ROLLED_BACK_REASON
from orchestrator.domain.turns import check_strategy
from orchestrator.domain.turns import interruption
from tests.unit.orchestrator.test_task_control_rules import task

NOW = datetime.datetime(2026, 12, 3, 9, 0, tzinfo=datetime.UTC)
UNTOUCHED = ControlState()


def turn(status: TaskStatus, claimed_by: str | None = None, control: ControlState = UNTOUCHED) -> TaskRecord:
    return dataclasses.replace(task(status, control, claimed_by=claimed_by), task_id="turn-1")


def test_the_strategies_are_langgraphs_and_nothing_else():
    assert MULTITASK_STRATEGIES == ("enqueue", "reject", "interrupt", "rollback")
    assert [check_strategy(strategy) for strategy in MULTITASK_STRATEGIES] == list(MULTITASK_STRATEGIES)
    with pytest.raises(ValueError, match="multitask strategy"):
        check_strategy("Interrupt")


@pytest.mark.parametrize(
    "waiting",
    [
        turn(TaskStatus.QUEUED),
        turn(TaskStatus.PAUSED),  # parked
        turn(TaskStatus.RUNNING),  # waiting for an approval
    ],
)
@pytest.mark.parametrize(
    ("strategy", "reason"), [("interrupt", INTERRUPTED_REASON), ("rollback", ROLLED_BACK_REASON)]
)
def test_a_turn_no_runner_holds_ends_at_once_with_its_events(waiting, strategy, reason):
    decision = interruption(waiting, strategy, "user-2", NOW)

    transition = decision.transition
    assert transition.status == TaskStatus.CANCELLED and not decision.notify_runner
    assert (transition.control.cancel_reason, transition.control.cancelled_by) == (reason, "user-2")
    assert [event.type for event in transition.events] == [events.WORKFLOW_CANCELLED, events.STREAM_END]


@pytest.mark.parametrize(
    "held", [turn(TaskStatus.RUNNING, "replica-1:ab"), turn(TaskStatus.PAUSED, "replica-1:ab")]
)
def test_a_turn_a_runner_holds_is_asked_to_stop_and_its_runner_told(held):
    decision = interruption(held, "interrupt", "user-1", NOW)

    assert decision.notify_runner
    assert decision.transition.status is None and decision.transition.events == ()
    assert decision.transition.control.cancel_requested


def test_a_turn_already_being_cancelled_is_left_to_that_cancel():
    cancelling = turn(TaskStatus.RUNNING, "replica-1:ab", ControlState(cancel_requested=True))

    decision = interruption(cancelling, "rollback", "user-1", NOW)

    assert decision.transition is None and not decision.notify_runner
