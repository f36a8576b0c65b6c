"""Approvals in the store, the same contract on SQLite and on a real PostgreSQL.

A running task parks for a decision (RUNNING, held by no worker); the first resolution wins and
moves the task on with its events; approvals are read and listed by their owner.
"""

import asyncio
import datetime

import pytest

from orchestrator import events
from orchestrator.domain.approvals import ApprovalFilter
from orchestrator.domain.approvals import ApprovalResolution
from orchestrator.domain.approvals import ApprovalStatus
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskGuard
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TaskTransition
from taskgate.rfc3339 import utc_now
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import BASE
from tests.integration.store_fixtures import BOB
from tests.integration.store_fixtures import approval
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import event
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run
from tests.integration.store_fixtures import start_task

pytestmark = pytest.mark.integration

MINUTE = datetime.timedelta(minutes=1)
ASKED = NewEvent("APPROVAL_REQUESTED", "Waiting for approval", {"step": "send-email"})


def approved(
    decided_by: str = ALICE.user_id, modified_action=None, api_key_id: str = ""
) -> ApprovalResolution:
    return ApprovalResolution(
        status=ApprovalStatus.APPROVED,
        decided_by=decided_by,
        decided_at=BASE + 5 * MINUTE,
        feedback="go ahead",
        modified_action=modified_action,
        task_status=TaskStatus.QUEUED,
        task_error="",
        events=(NewEvent("APPROVAL_DECISION", "Approved", {"approved": True}),),
        decided_by_api_key_id=api_key_id,
    )


def rejected() -> ApprovalResolution:
    return ApprovalResolution(
        status=ApprovalStatus.REJECTED,
        decided_by=ALICE.user_id,
        decided_at=BASE + 6 * MINUTE,
        feedback="not now",
        modified_action=None,
        task_status=TaskStatus.FAILED,
        task_error="Rejected: not now",
        events=(
            NewEvent("APPROVAL_DECISION", "Rejected"),
            NewEvent(events.WORKFLOW_FAILED, "Rejected: not now"),
            NewEvent(events.STREAM_END),
        ),
    )


async def parked_task(
    store, task_id, approval_id, owner=ALICE, step="send-email", requested_at=BASE, **fields
):
    """Start a task (no other may be QUEUED) and park it for an approval; return the approval asked for."""
    task = await start_task(store, new_task(task_id, owner=owner, session_id=f"session-{task_id}"))
    asked = approval(approval_id, task, step, requested_at, **fields)
    assert await store.park_for_approval(asked, task.claim, 1.0, ASKED) is not None
    return asked


def test_a_running_task_parks_for_an_approval_only_while_its_worker_holds_it(database_url):
    async def scenario(store):
        running = await start_task(store, new_task("task-1", query="Email the ops team"), "worker-1")
        await store.append_event(event("task-1", 1, events.WORKFLOW_STARTED))
        asked = approval("approval-1", running)

        assert (
            await store.park_for_approval(asked, Claim("worker-2", running.claim_epoch), 2.5, ASKED) is None
        )
        assert await store.get_approval("approval-1", ALICE.user_id) is None
        assert await store.get_task("task-1", ALICE.user_id) == running

        before = utc_now()
        [recorded] = await store.park_for_approval(asked, running.claim, 2.5, ASKED)
        assert (recorded.workflow_id, recorded.seq, recorded.type) == ("task-1", 2, "APPROVAL_REQUESTED")
        assert (recorded.message, dict(recorded.payload)) == ("Waiting for approval", {"step": "send-email"})
        assert before <= recorded.timestamp <= utc_now()
        assert await store.list_events("task-1", after_seq=1) == [recorded]

        waiting = await store.get_task("task-1", ALICE.user_id)
        assert (waiting.status, waiting.claimed_by, waiting.lease_expires_at, waiting.run_seconds) == (
            TaskStatus.RUNNING,
            None,
            None,
            2.5,
        )
        # A waiting task is no worker's: not claimed, not renewed, never taken over.
        assert await store.list_claimed_tasks() == []
        assert await store.renew_leases("worker-1", ["task-1"], 60) == []
        assert await store.take_over_expired_leases("rescuer", 60, 10) == []

        stored = await store.get_approval("approval-1", ALICE.user_id)
        assert (stored.approval_id, stored.task_id, stored.user_id, stored.tenant_id, stored.step) == (
            "approval-1",
            "task-1",
            ALICE.user_id,
            ALICE.tenant_id,
            "send-email",
        )
        assert (stored.status, stored.query, stored.reason) == (
            ApprovalStatus.PENDING,
            "Email the ops team",
            "send-email needs a human",
        )
        assert stored.proposed_action == {"tool": "email", "to": ["ops@example.com"]}
        assert (stored.requested_at, stored.expires_at) == (asked.requested_at, asked.expires_at)
        assert (stored.decided_by, stored.decided_at, stored.feedback, stored.modified_action) == (
            "",
            None,
            "",
            None,
        )
        assert await store.get_approval("approval-1", BOB.user_id) is None
        assert await store.get_approval("no-such-approval", ALICE.user_id) is None

        # Parked already, or asked to cancel: no park.
        again = approval("approval-2", running, step="another-step")
        assert await store.park_for_approval(again, running.claim, 3.0, ASKED) is None
        cancelling = await start_task(store, new_task("task-2", session_id="session-2"), "worker-1")
        cancel = ControlState(cancel_requested=True, cancel_reason="stop", cancelled_by=ALICE.user_id)
        assert await store.transition_task("task-2", TaskTransition(TaskGuard.of(cancelling), cancel)) == []
        assert (
            await store.park_for_approval(approval("approval-3", cancelling), cancelling.claim, 1.0, ASKED)
            is None
        )
        assert await store.get_approval("approval-3", ALICE.user_id) is None
        assert await store.count_events("task-2") == 0
        # A queued task is held by nobody.
        queued = (await store.create_task(new_task("task-3", session_id="session-3"))).task
        assert (
            await store.park_for_approval(approval("approval-4", queued), Claim("worker-1", 1), 1.0, ASKED)
            is None
        )
        assert await store.list_task_approvals("task-3") == []

    run(database_url, scenario)


def test_an_approval_is_resolved_once_and_moves_its_waiting_task_on(database_url):
    async def scenario(store):
        await parked_task(store, "task-1", "approval-1")
        modified = {"tool": "email", "to": ["lead@example.com"]}
        before = utc_now()
        results = await asyncio.gather(
            store.resolve_approval("approval-1", approved(modified_action=modified)),
            store.resolve_approval("approval-1", rejected()),
        )
        winner = [result for result in results if result is not None]
        assert len(winner) == 1 and results.count(None) == 1
        decided = await store.get_approval("approval-1", ALICE.user_id)
        task = await store.get_task("task-1", ALICE.user_id)
        if decided.status is ApprovalStatus.APPROVED:
            assert [(e.seq, e.type) for e in winner[0]] == [(2, "APPROVAL_DECISION")]
            assert (decided.feedback, decided.modified_action, decided.action_to_run) == (
                "go ahead",
                modified,
                modified,
            )
            assert (task.status, task.error, task.completed_at, task.claimed_by) == (
                TaskStatus.QUEUED,
                "",
                None,
                None,
            )
        else:
            assert [(e.seq, e.type) for e in winner[0]] == [
                (2, "APPROVAL_DECISION"),
                (3, events.WORKFLOW_FAILED),
                (4, events.STREAM_END),
            ]
            assert (decided.feedback, decided.modified_action) == ("not now", None)
            assert (task.status, task.error) == (TaskStatus.FAILED, "Rejected: not now")
            assert task.completed_at is not None
        assert decided.decided_by == ALICE.user_id and decided.decided_at in (
            BASE + 5 * MINUTE,
            BASE + 6 * MINUTE,
        )
        assert all(before <= e.timestamp <= utc_now() for e in winner[0])
        assert await store.list_events("task-1", after_seq=1) == winner[0]
        # Decided is decided.
        assert await store.resolve_approval("approval-1", approved()) is None
        assert await store.resolve_approval("no-such-approval", approved()) is None
        assert await store.count_events("task-1") == 1 + len(winner[0])

    run(database_url, scenario)


def test_a_decision_records_the_api_key_it_was_made_with(database_url):
    async def scenario(store):
        await parked_task(store, "task-1", "approval-1")
        await parked_task(store, "task-2", "approval-2", requested_at=BASE + MINUTE)
        assert (await store.get_approval("approval-1", ALICE.user_id)).decided_by_api_key_id == ""

        assert await store.resolve_approval("approval-1", approved(api_key_id="key-1"))
        # Decided with an access token: no key.
        assert await store.resolve_approval("approval-2", rejected())

        decided = await store.get_approval("approval-1", ALICE.user_id)
        assert (decided.decided_by, decided.decided_by_api_key_id) == (ALICE.user_id, "key-1")
        listed, _ = await store.list_approvals(ALICE.user_id, ApprovalFilter.DECIDED, 10, 0)
        assert [(a.approval_id, a.decided_by, a.decided_by_api_key_id) for a in listed] == [
            ("approval-2", ALICE.user_id, ""),
            ("approval-1", ALICE.user_id, "key-1"),
        ]

    run(database_url, scenario)


def test_an_approved_task_is_claimed_again_and_a_task_no_longer_waiting_only_resolves_its_approval(
    database_url,
):
    async def scenario(store):
        first = await parked_task(store, "task-1", "approval-1")
        [decision] = await store.resolve_approval("approval-1", approved())
        rerun = await store.claim_next("worker-2", 60)
        assert (rerun.task_id, rerun.status, rerun.claimed_by) == ("task-1", TaskStatus.RUNNING, "worker-2")
        second = approval("approval-2", rerun, "second-step", BASE + MINUTE)
        [asked_again] = await store.park_for_approval(second, rerun.claim, 7.0, ASKED)
        assert asked_again.seq == decision.seq + 1
        listed = await store.list_task_approvals("task-1")
        assert [(each.approval_id, each.status) for each in listed] == [
            (first.approval_id, ApprovalStatus.APPROVED),
            (second.approval_id, ApprovalStatus.PENDING),
        ]
        assert listed[1] == await store.get_approval("approval-2", ALICE.user_id)
        assert await store.list_task_approvals("no-such-task") == []

        # Parking released the claim: the worker that parked the task cannot end it any more.
        outcome = TaskOutcome(TaskStatus.TIMEOUT, error="too slow")
        assert await store.finish_task("task-1", rerun.claim, outcome, (NewEvent(events.STREAM_END),)) is None
        waiting = await store.get_task("task-1", ALICE.user_id)
        assert (waiting.status, waiting.claimed_by) == (TaskStatus.RUNNING, None)
        assert await store.count_events("task-1") == asked_again.seq

        # The task moved on some other way while it waited (a transition that ends it closes the
        # approval too: see the next test): the decision is recorded, the task stays as it is.
        requeued = TaskTransition(TaskGuard.of(waiting), waiting.control, status=TaskStatus.QUEUED)
        assert await store.transition_task("task-1", requeued) == []
        assert await store.resolve_approval("approval-2", approved()) == []
        assert (await store.get_approval("approval-2", ALICE.user_id)).status == ApprovalStatus.APPROVED
        assert (await store.get_task("task-1", ALICE.user_id)).status == TaskStatus.QUEUED
        assert await store.count_events("task-1") == asked_again.seq

    run(database_url, scenario)


def test_cancelling_a_waiting_task_cancels_its_pending_approval(database_url):
    async def scenario(store):
        await parked_task(store, "task-1", "approval-1")
        waiting = await store.get_task("task-1", ALICE.user_id)
        cancel = TaskTransition(
            TaskGuard.of(waiting),
            ControlState(cancel_requested=True, cancel_reason="stop", cancelled_by=ALICE.user_id),
            status=TaskStatus.CANCELLED,
            error="The task was cancelled",
            events=(NewEvent(events.WORKFLOW_CANCELLED), NewEvent(events.STREAM_END)),
        )
        before = utc_now()
        assert [e.seq for e in await store.transition_task("task-1", cancel)] == [2, 3]
        cancelled = await store.get_approval("approval-1", ALICE.user_id)
        assert cancelled.status == ApprovalStatus.CANCELLED and before <= cancelled.decided_at <= utc_now()
        assert await store.resolve_approval("approval-1", approved()) is None
        assert (await store.get_task("task-1", ALICE.user_id)).status == TaskStatus.CANCELLED
        assert await store.list_expired_approvals(BASE + 100 * MINUTE, 10) == []

    run(database_url, scenario)


def test_approvals_are_listed_newest_first_by_status_and_expired_ones_oldest_expiry_first(database_url):
    async def scenario(store):
        await parked_task(store, "t-1", "approval-1", requested_at=BASE, expires_at=BASE + 30 * MINUTE)
        await parked_task(
            store, "t-2", "approval-2", requested_at=BASE + MINUTE, expires_at=BASE + 10 * MINUTE
        )
        await parked_task(
            store, "t-3", "approval-3", requested_at=BASE + 2 * MINUTE, expires_at=BASE + 20 * MINUTE
        )
        await parked_task(
            store, "t-4", "approval-4", requested_at=BASE + 3 * MINUTE, expires_at=BASE + 5 * MINUTE
        )
        await parked_task(store, "t-bob", "approval-bob", owner=BOB, expires_at=BASE + MINUTE)
        assert await store.resolve_approval("approval-4", approved())
        assert await store.resolve_approval("approval-2", rejected())

        def ids(page):
            approvals, total = page
            return [each.approval_id for each in approvals], total

        assert ids(await store.list_approvals(ALICE.user_id, ApprovalFilter.ALL, 10, 0)) == (
            ["approval-4", "approval-3", "approval-2", "approval-1"],
            4,
        )
        assert ids(await store.list_approvals(ALICE.user_id, ApprovalFilter.PENDING, 10, 0)) == (
            ["approval-3", "approval-1"],
            2,
        )
        assert ids(await store.list_approvals(ALICE.user_id, ApprovalFilter.DECIDED, 10, 0)) == (
            ["approval-4", "approval-2"],
            2,
        )
        assert ids(await store.list_approvals(ALICE.user_id, ApprovalFilter.ALL, 2, 1)) == (
            ["approval-3", "approval-2"],
            4,
        )
        assert ids(await store.list_approvals(ALICE.user_id, ApprovalFilter.PENDING, 10, 2)) == ([], 2)
        assert ids(await store.list_approvals(BOB.user_id, ApprovalFilter.ALL, 10, 0)) == (
            ["approval-bob"],
            1,
        )
        [listed], _ = await store.list_approvals(ALICE.user_id, ApprovalFilter.DECIDED, 1, 1)
        assert listed == await store.get_approval("approval-2", ALICE.user_id)

        # Expired: pending ones past their time (at it included), any user's, oldest expiry first.
        expired = await store.list_expired_approvals(BASE + 20 * MINUTE, 10)
        assert [each.approval_id for each in expired] == ["approval-bob", "approval-3"]
        assert expired[1] == await store.get_approval("approval-3", ALICE.user_id)
        assert [each.approval_id for each in await store.list_expired_approvals(BASE + 60 * MINUTE, 2)] == [
            "approval-bob",
            "approval-3",
        ]
        assert await store.list_expired_approvals(BASE, 10) == []

    run(database_url, scenario)


def test_approvals_asked_in_one_instant_are_listed_by_id(database_url):
    async def scenario(store):
        for number, approval_id in enumerate(("approval-b", "approval-c", "approval-a")):
            await parked_task(store, f"t-{number}", approval_id, requested_at=BASE)
        listed, _ = await store.list_approvals(ALICE.user_id, ApprovalFilter.ALL, 10, 0)
        assert [each.approval_id for each in listed] == ["approval-a", "approval-b", "approval-c"]

    run(database_url, scenario)


def test_a_string_modified_action_is_stored_and_read_back_as_the_action_to_run(database_url):
    async def scenario(store):
        await parked_task(store, "task-1", "approval-1")
        rewritten = 'run "ls -la" — then stop ✓'
        assert await store.resolve_approval("approval-1", approved(modified_action=rewritten)) is not None
        decided = await store.get_approval("approval-1", ALICE.user_id)
        [listed] = await store.list_task_approvals("task-1")
        assert (decided.modified_action, decided.action_to_run) == (rewritten, rewritten)
        assert listed.modified_action == rewritten

    run(database_url, scenario)
