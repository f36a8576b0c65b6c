"""The task-control rules: pause, resume and cancel in every state, and recovery of orphaned tasks."""

import dataclasses
import datetime

import pytest

from orchestrator.domain.task_control import ControlRequest
from orchestrator.domain.task_control import Interruption
from orchestrator.domain.task_control import decide_cancel
from orchestrator.domain.task_control import decide_pause
from orchestrator.domain.task_control import decide_resume
from orchestrator.domain.task_control import recovery_transition
from orchestrator.domain.task_control import visible_control_state
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import TaskGuard
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.engine.run_control import timeout_budget
from orchestrator.errors import TaskStateError

NOW = datetime.datetime(2026, 11, 23, 14, 0, tzinfo=datetime.UTC)
REQUEST = ControlRequest("user-1", "a reason", NOW)
WORKER = "replica-1:abcd"
PAUSED = ControlState(pause_requested=True, paused_at=NOW, pause_reason="why", paused_by="user-1")
CANCELLING = ControlState(cancel_requested=True, cancel_reason="stop", cancelled_by="user-1")
UNTOUCHED = ControlState()
TERMINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMEOUT)


def task(status: TaskStatus, control: ControlState = UNTOUCHED, claimed_by: str | None = None, **fields):
    return TaskRecord(
        task_id="task-1",
        user_id="user-1",
        tenant_id="tenant-1",
        session_id="session-1",
        query="What is 2+2?",
        status=status,
        progress=0.0,
        result="",
        error="",
        mode="standard",
        context={},
        options={},
        model_used="",
        provider="",
        usage=TokenUsage(),
        created_at=NOW,
        updated_at=NOW,
        claimed_by=claimed_by,
        control=control,
        **fields,
    )


def running() -> TaskRecord:
    return task(TaskStatus.RUNNING, claimed_by=WORKER, started_at=NOW)


def held() -> TaskRecord:
    return task(TaskStatus.PAUSED, PAUSED, claimed_by=WORKER, started_at=NOW)


def parked() -> TaskRecord:
    return task(TaskStatus.PAUSED, PAUSED, started_at=NOW)


def event_types(decision) -> list[str]:
    return [event.type for event in decision.transition.events]


@pytest.mark.parametrize("decide", [decide_pause, decide_resume, decide_cancel])
@pytest.mark.parametrize("status", TERMINAL)
def test_a_finished_task_refuses_everything(decide, status):
    with pytest.raises(TaskStateError, match="Task has already finished"):
        decide(task(status, PAUSED), REQUEST)


def test_a_queued_task_pauses_at_once_with_its_event():
    decision = decide_pause(task(TaskStatus.QUEUED), REQUEST)

    assert decision.transition.status == TaskStatus.PAUSED
    assert decision.transition.guard == TaskGuard(TaskStatus.QUEUED, None, False, False)
    assert decision.transition.control == ControlState(True, NOW, "a reason", "user-1")
    assert event_types(decision) == ["WORKFLOW_PAUSED"]
    assert decision.transition.events[0].payload == {"reason": "a reason", "paused_by": "user-1"}
    assert not decision.notify_runner and not decision.requeued


def test_a_running_task_is_only_asked_to_pause_and_its_runner_told():
    decision = decide_pause(running(), REQUEST)

    assert decision.transition.status is None and decision.transition.events == ()
    assert decision.transition.control.pause_requested
    assert decision.notify_runner
    assert decision.message == "Pause requested; the task pauses at its next checkpoint"


@pytest.mark.parametrize(
    "record",
    [held(), parked(), task(TaskStatus.RUNNING, PAUSED, claimed_by=WORKER)],
    ids=["held", "parked", "pause-pending"],
)
def test_pausing_a_paused_or_pausing_task_is_a_conflict(record):
    with pytest.raises(TaskStateError, match="Task is already paused"):
        decide_pause(record, REQUEST)


@pytest.mark.parametrize("decide", [decide_pause, decide_resume])
def test_a_task_being_cancelled_cannot_be_paused_or_resumed(decide):
    with pytest.raises(TaskStateError, match="Task is being cancelled"):
        decide(task(TaskStatus.RUNNING, CANCELLING, claimed_by=WORKER), REQUEST)


@pytest.mark.parametrize("record", [task(TaskStatus.QUEUED), running()], ids=["queued", "running"])
def test_resuming_a_task_that_is_not_paused_is_a_conflict(record):
    with pytest.raises(TaskStateError, match="Task is not paused"):
        decide_resume(record, REQUEST)


def test_a_paused_task_a_gone_worker_still_claims_is_released_and_queued_again():
    decision = decide_resume(held(), REQUEST)

    assert decision.transition.status == TaskStatus.QUEUED
    assert decision.transition.release
    assert decision.transition.control == ControlState()
    assert event_types(decision) == ["WORKFLOW_RESUMED"]
    assert decision.requeued and not decision.notify_runner


def test_a_parked_task_is_queued_again_to_continue_from_its_checkpoint():
    record = dataclasses.replace(parked(), attempt=2)
    decision = decide_resume(record, REQUEST)

    assert decision.transition.status == TaskStatus.QUEUED
    assert decision.requeued and not decision.notify_runner
    assert decision.transition.events[0].message == "Workflow resumed; it continues from its last checkpoint"
    assert decision.transition.events[0].payload == {
        "reason": "a reason",
        "resumed_by": "user-1",
        "attempt": 2,
    }


def test_a_task_paused_before_it_started_is_queued_again():
    decision = decide_resume(task(TaskStatus.PAUSED, PAUSED), REQUEST)

    assert decision.transition.status == TaskStatus.QUEUED
    assert decision.transition.events[0].message == "Workflow resumed"


def test_resuming_before_the_runner_reached_the_pause_withdraws_it():
    decision = decide_resume(task(TaskStatus.RUNNING, PAUSED, claimed_by=WORKER), REQUEST)

    assert decision.transition.status is None and decision.transition.events == ()
    assert not decision.transition.control.pause_requested
    assert decision.notify_runner


@pytest.mark.parametrize("record", [task(TaskStatus.QUEUED), parked()], ids=["queued", "parked"])
def test_a_task_without_a_runner_is_cancelled_at_once(record):
    decision = decide_cancel(record, REQUEST)

    assert decision.transition.status == TaskStatus.CANCELLED
    assert decision.transition.error == "The task was cancelled"
    assert event_types(decision) == ["WORKFLOW_CANCELLED", "STREAM_END"]
    assert decision.transition.control.cancel_reason == "a reason"
    assert decision.message == "Task cancelled"


@pytest.mark.parametrize("record", [running(), held()], ids=["running", "held"])
def test_a_task_with_a_runner_is_asked_to_stop(record):
    decision = decide_cancel(record, REQUEST)

    assert decision.transition.status is None and decision.transition.events == ()
    assert decision.transition.control.cancel_requested
    assert decision.notify_runner


def test_a_repeated_cancel_changes_nothing():
    decision = decide_cancel(task(TaskStatus.RUNNING, CANCELLING, claimed_by=WORKER), REQUEST)

    assert decision.transition is None


@pytest.mark.parametrize(
    ("record", "status", "types"),
    [
        (running(), TaskStatus.QUEUED, ["WORKFLOW_RESUMED"]),
        (task(TaskStatus.RUNNING, PAUSED, claimed_by=WORKER), TaskStatus.PAUSED, ["WORKFLOW_PAUSED"]),
        (held(), None, []),
        (
            task(TaskStatus.RUNNING, CANCELLING, claimed_by=WORKER),
            TaskStatus.CANCELLED,
            ["WORKFLOW_CANCELLED", "STREAM_END"],
        ),
        (
            task(TaskStatus.PAUSED, dataclasses.replace(PAUSED, cancel_requested=True), claimed_by=WORKER),
            TaskStatus.CANCELLED,
            ["WORKFLOW_CANCELLED", "STREAM_END"],
        ),
    ],
    ids=["running", "pause-pending", "held", "cancel-pending", "held-cancel-pending"],
)
@pytest.mark.parametrize("interruption", list(Interruption))
def test_recovery_follows_the_control_state(record, status, types, interruption):
    transition = recovery_transition(record, interruption)

    assert transition.status == status
    assert [event.type for event in transition.events] == types
    assert transition.guard == TaskGuard.of(record)
    if status in (TaskStatus.PAUSED, TaskStatus.QUEUED, None):
        assert transition.release


@pytest.mark.parametrize("interruption", list(Interruption))
def test_an_interrupted_task_is_queued_again_as_its_next_attempt_from_its_checkpoint(interruption):
    record = dataclasses.replace(running(), attempt=2, lost_attempts=1)
    transition = recovery_transition(record, interruption, max_attempts=3, checkpoint_seq=12)

    assert transition.status == TaskStatus.QUEUED and transition.release
    assert transition.attempt == 3
    lost = interruption is Interruption.LOST
    assert transition.lost_attempts == (2 if lost else 1)
    [resumed] = transition.events
    assert resumed.type == "WORKFLOW_RESUMED"
    assert resumed.payload["attempt"] == 3
    assert resumed.payload["checkpoint_seq"] == 12
    assert resumed.payload["reason"] == interruption.value


def test_a_task_whose_replica_died_in_every_allowed_attempt_fails_with_the_reason():
    record = dataclasses.replace(running(), attempt=3, lost_attempts=2)

    transition = recovery_transition(record, Interruption.LOST, max_attempts=3)

    assert transition.status == TaskStatus.FAILED
    assert transition.error == "The replica running the task stopped 3 times; it is not resumed again"
    assert [event.type for event in transition.events] == ["WORKFLOW_FAILED", "STREAM_END"]


def test_a_graceful_hand_over_never_counts_against_the_attempts():
    record = dataclasses.replace(running(), attempt=9, lost_attempts=2)

    transition = recovery_transition(record, Interruption.HANDED_OVER, max_attempts=3)

    assert transition.status == TaskStatus.QUEUED
    assert (transition.attempt, transition.lost_attempts) == (10, 2)


def test_a_finished_task_is_never_shown_as_paused():
    assert visible_control_state(task(TaskStatus.CANCELLED, PAUSED)) == ControlState()
    assert visible_control_state(parked()) == PAUSED


@pytest.mark.parametrize(("options", "budget"), [({}, 600.0), ({"timeout_seconds": 5}, 5.0)])
def test_a_task_s_own_timeout_wins_over_the_default(options, budget):
    assert timeout_budget(options, 600.0) == budget
