"""Schedules and their runs in the store, the same contract on SQLite and on a real PostgreSQL.

A schedule is created under a per-user cap, read and listed by its owner, changed by a compare and
set on next_run_at; each due run is claimed exactly once, its task stored in the same transaction,
and a run's task is read live.
"""

import asyncio
import dataclasses
import datetime

import pytest

from orchestrator.domain.schedules import PAUSED
from orchestrator.domain.schedules import RunClaim
from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import BASE
from tests.integration.store_fixtures import BOB
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run
from tests.integration.store_fixtures import schedule

pytestmark = pytest.mark.integration

HOUR = datetime.timedelta(hours=1)


def run_task(task_id: str, owner=ALICE) -> NewTask:
    """Return the task a run starts: its owner's, in a session of its own."""
    return new_task(task_id, owner=owner, session_id=f"session-of-{task_id}")


async def earlier_version_run(store, schedule_id: str, task_id: str, at: datetime.datetime, manual=False):
    """Insert a run as a version before migration 0012 did: claimed first, its task stored (and marked) after.

    No method of the store writes such a run any more, so it is written in SQL.
    """
    await store.database.execute(
        "INSERT INTO schedule_runs (schedule_id, task_id, scheduled_for, triggered_at, manual)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            schedule_id,
            task_id,
            store.database.dialect.encode_time(at),
            store.database.dialect.encode_time(at),
            manual,
        ),
    )


def test_schedules_are_created_under_a_per_user_cap_and_read_by_their_owner(database_url):
    async def scenario(store):
        first = schedule("sched-1", created_at=BASE)
        assert await store.create_schedule(first, max_per_user=3)
        assert await store.get_schedule("sched-1", ALICE.user_id) == first
        assert await store.get_schedule("sched-1", BOB.user_id) is None
        assert await store.get_schedule("no-such-schedule", ALICE.user_id) is None

        paused = dataclasses.replace(
            schedule("sched-2", created_at=BASE + HOUR, next_run_at=None, status=PAUSED),
            paused_at=BASE + HOUR,
            pause_reason="holidays",
            max_budget_per_run_usd=None,
            timeout_seconds=None,
        )
        assert await store.create_schedule(paused, max_per_user=3)
        assert await store.get_schedule("sched-2", ALICE.user_id) == paused
        assert await store.create_schedule(schedule("sched-3", created_at=BASE + 2 * HOUR), max_per_user=3)
        # The cap counts the user's schedules, whatever their status; other users have their own.
        assert not await store.create_schedule(
            schedule("sched-4", created_at=BASE + 3 * HOUR), max_per_user=3
        )
        assert await store.get_schedule("sched-4", ALICE.user_id) is None
        assert await store.create_schedule(schedule("sched-bob", owner=BOB), max_per_user=3)

        def ids(page):
            schedules, total = page
            return [each.schedule_id for each in schedules], total

        assert ids(await store.list_schedules(ALICE.user_id, None, 10, 0)) == (
            ["sched-3", "sched-2", "sched-1"],
            3,
        )
        assert ids(await store.list_schedules(ALICE.user_id, None, 1, 1)) == (["sched-2"], 3)
        assert ids(await store.list_schedules(ALICE.user_id, None, 10, 3)) == ([], 3)
        assert ids(await store.list_schedules(ALICE.user_id, "ACTIVE", 10, 0)) == (["sched-3", "sched-1"], 2)
        assert ids(await store.list_schedules(ALICE.user_id, PAUSED, 10, 0)) == (["sched-2"], 1)
        assert ids(await store.list_schedules(BOB.user_id, None, 10, 0)) == (["sched-bob"], 1)
        listed, _ = await store.list_schedules(ALICE.user_id, PAUSED, 10, 0)
        assert listed == [paused]

    run(database_url, scenario)


def test_schedules_created_in_one_instant_are_listed_by_id_descending(database_url):
    async def scenario(store):
        for schedule_id in ("sched-b", "sched-c", "sched-a"):
            assert await store.create_schedule(schedule(schedule_id, created_at=BASE), max_per_user=10)
        listed, _ = await store.list_schedules(ALICE.user_id, None, 10, 0)
        assert [each.schedule_id for each in listed] == ["sched-c", "sched-b", "sched-a"]

    run(database_url, scenario)


def test_a_schedule_is_saved_only_while_its_next_run_is_as_read_and_deleted_by_its_owner(database_url):
    async def scenario(store):
        original = schedule("sched-1")
        assert await store.create_schedule(original, max_per_user=5)
        edited = dataclasses.replace(
            original,
            name="Morning digest",
            description="weekdays",
            cron_expression="0 7 * * 1-5",
            timezone="UTC",
            task_query="Summarise the news",
            task_context={"topics": ["tech"]},
            max_budget_per_run_usd=0.75,
            timeout_seconds=60,
            updated_at=BASE + HOUR,
            next_run_at=BASE + 2 * HOUR,
        )
        assert await store.save_schedule(edited, expected_next_run_at=BASE)
        assert await store.get_schedule("sched-1", ALICE.user_id) == edited
        # A save that read next_run_at before a claim moved it writes nothing.
        stale = dataclasses.replace(edited, name="Stale")
        assert not await store.save_schedule(stale, expected_next_run_at=BASE)
        assert (await store.get_schedule("sched-1", ALICE.user_id)).name == "Morning digest"
        # Only the owner's schedule is written.
        assert not await store.save_schedule(
            dataclasses.replace(edited, user_id=BOB.user_id), BASE + 2 * HOUR
        )

        paused = dataclasses.replace(
            edited, status=PAUSED, next_run_at=None, paused_at=BASE + HOUR, pause_reason="away"
        )
        assert await store.save_schedule(paused, expected_next_run_at=BASE + 2 * HOUR)
        assert await store.get_schedule("sched-1", ALICE.user_id) == paused
        resumed = dataclasses.replace(paused, status="ACTIVE", next_run_at=BASE + 5 * HOUR, paused_at=None)
        resumed = dataclasses.replace(resumed, pause_reason="")
        assert await store.save_schedule(resumed, expected_next_run_at=None)
        assert await store.get_schedule("sched-1", ALICE.user_id) == resumed

        assert await store.claim_schedule_run(
            RunClaim("sched-1", BASE + 5 * HOUR, BASE + 6 * HOUR, run_task("run-1"), BASE)
        )
        assert not await store.delete_schedule("sched-1", BOB.user_id)
        assert await store.delete_schedule("sched-1", ALICE.user_id)
        assert await store.get_schedule("sched-1", ALICE.user_id) is None
        assert not await store.delete_schedule("sched-1", ALICE.user_id)
        assert not await store.delete_schedule("no-such-schedule", ALICE.user_id)
        # Its runs go with it; the tasks they started stay.
        assert await store.list_schedule_runs("sched-1", 10, 0) == ([], 0)
        assert (await store.get_task("run-1", ALICE.user_id)).status == TaskStatus.QUEUED
        assert await store.unconfirmed_schedule_runs(BASE + 100 * HOUR, 10) == []

    run(database_url, scenario)


def test_due_schedules_are_the_active_ones_whose_next_run_has_come_most_overdue_first(database_url):
    async def scenario(store):
        now = BASE
        for schedule_id, owner, next_run_at, status in (
            ("due-now", ALICE, now, "ACTIVE"),
            ("due-bob", BOB, now - 2 * HOUR, "ACTIVE"),
            ("due-earlier", ALICE, now - HOUR, "ACTIVE"),
            ("later", ALICE, now + datetime.timedelta(seconds=1), "ACTIVE"),
            ("paused", ALICE, now - 3 * HOUR, PAUSED),
            ("unscheduled", ALICE, None, PAUSED),
        ):
            created = schedule(schedule_id, owner=owner, next_run_at=next_run_at, status=status)
            assert await store.create_schedule(created, max_per_user=10)

        due = await store.due_schedules(now, 10)
        assert [each.schedule_id for each in due] == ["due-bob", "due-earlier", "due-now"]
        assert due[0] == await store.get_schedule("due-bob", BOB.user_id)
        assert [each.schedule_id for each in await store.due_schedules(now, 2)] == ["due-bob", "due-earlier"]
        assert await store.due_schedules(now - 3 * HOUR, 10) == []

    run(database_url, scenario)


def test_each_due_run_is_claimed_exactly_once_and_its_runs_are_listed_newest_first(database_url):
    async def scenario(store):
        assert await store.create_schedule(schedule("sched-1", next_run_at=BASE), max_per_user=5)
        triggered = BASE + datetime.timedelta(seconds=3)
        assert await store.claim_schedule_run(
            RunClaim("sched-1", BASE, BASE + HOUR, run_task("run-1"), triggered)
        )
        assert not await store.claim_schedule_run(
            RunClaim("sched-1", BASE, BASE + HOUR, run_task("run-1b"), triggered)
        )
        claimed = await store.get_schedule("sched-1", ALICE.user_id)
        assert (claimed.next_run_at, claimed.last_run_at, claimed.total_runs) == (BASE + HOUR, triggered, 1)
        # Only a claimed run's task is stored, each in a session of its own.
        assert await store.get_task("run-1b", ALICE.user_id) is None
        assert (await store.get_session("session-of-run-1", ALICE.user_id)).task_count == 1

        # Replicas claiming the same run at once: one wins.
        racing = await asyncio.gather(
            *(
                store.claim_schedule_run(
                    RunClaim("sched-1", BASE + HOUR, BASE + 2 * HOUR, run_task(f"run-2{n}"), triggered + HOUR)
                )
                for n in "abcd"
            )
        )
        assert sorted(racing) == [False, False, False, True]
        winner = f"run-2{'abcd'[racing.index(True)]}"
        stored = [await store.get_task(f"run-2{n}", ALICE.user_id) for n in "abcd"]
        assert [task.task_id for task in stored if task is not None] == [winner]
        assert (await store.get_schedule("sched-1", ALICE.user_id)).next_run_at == BASE + 2 * HOUR

        # A manual run leaves next_run_at alone.
        manual_at = BASE + 90 * datetime.timedelta(minutes=1)
        assert await store.add_manual_run("sched-1", ALICE.user_id, run_task("manual-1"), manual_at)
        assert not await store.add_manual_run("sched-1", BOB.user_id, run_task("manual-bob", BOB), manual_at)
        assert not await store.add_manual_run(
            "no-such-schedule", ALICE.user_id, run_task("manual-x"), manual_at
        )
        assert await store.get_task("manual-bob", BOB.user_id) is None
        assert await store.get_task("manual-x", ALICE.user_id) is None
        after_manual = await store.get_schedule("sched-1", ALICE.user_id)
        assert (after_manual.next_run_at, after_manual.last_run_at) == (BASE + 2 * HOUR, manual_at)

        # A paused schedule's run cannot be claimed.
        paused = dataclasses.replace(after_manual, status=PAUSED, next_run_at=BASE + 2 * HOUR)
        assert await store.save_schedule(paused, expected_next_run_at=BASE + 2 * HOUR)
        assert not await store.claim_schedule_run(
            RunClaim("sched-1", BASE + 2 * HOUR, BASE + 3 * HOUR, run_task("run-3"), BASE)
        )
        assert await store.get_task("run-3", ALICE.user_id) is None

        runs, total = await store.list_schedule_runs("sched-1", 10, 0)
        assert total == 3
        assert [(each.task_id, each.scheduled_for, each.triggered_at, each.manual) for each in runs] == [
            ("manual-1", manual_at, manual_at, True),
            (winner, BASE + HOUR, triggered + HOUR, False),
            ("run-1", BASE, triggered, False),
        ]
        # A run has its task from the start, read live.
        assert [each.task.status for each in runs] == [TaskStatus.QUEUED] * 3
        assert runs[0].task == await store.get_task("manual-1", ALICE.user_id)
        started = await store.claim_next("worker-1", 60)
        assert started.task_id == "run-1"
        ok = TaskOutcome(TaskStatus.COMPLETED, "ok")
        assert await store.finish_task("run-1", started.claim, ok, ()) == []
        page, total = await store.list_schedule_runs("sched-1", 1, 2)
        assert total == 3 and [each.task_id for each in page] == ["run-1"]
        assert page[0].task == await store.get_task("run-1", ALICE.user_id)
        assert await store.list_schedule_runs("sched-1", 10, 3) == ([], 3)
        assert await store.list_schedule_runs("no-such-schedule", 10, 0) == ([], 0)

    run(database_url, scenario)


def test_run_counts_come_from_the_tasks_the_runs_started(database_url):
    async def scenario(store):
        assert await store.create_schedule(schedule("sched-1"), max_per_user=5)
        outcomes = {
            "ok-1": TaskStatus.COMPLETED,
            "ok-2": TaskStatus.COMPLETED,
            "failed": TaskStatus.FAILED,
            "timeout": TaskStatus.TIMEOUT,
            "cancelled": TaskStatus.CANCELLED,
        }
        for number, (task_id, status) in enumerate(outcomes.items()):
            assert await store.add_manual_run(
                "sched-1", ALICE.user_id, run_task(task_id), BASE + number * HOUR
            )
            started = await store.claim_next("worker-1", 60)
            assert started.task_id == task_id
            assert await store.finish_task(task_id, started.claim, TaskOutcome(status), ()) == []
        await earlier_version_run(store, "sched-1", "not-stored", BASE + 9 * HOUR, manual=True)
        assert await store.add_manual_run("sched-1", ALICE.user_id, run_task("queued"), BASE + 9 * HOUR)

        counted = await store.get_schedule("sched-1", ALICE.user_id)
        assert (counted.total_runs, counted.successful_runs, counted.failed_runs) == (7, 2, 2)
        [listed], _ = await store.list_schedules(ALICE.user_id, None, 10, 0)
        [due] = await store.due_schedules(BASE, 10)
        assert listed == due == counted

    run(database_url, scenario)


def test_a_claimed_tick_and_its_task_are_stored_together_or_not_at_all(database_url):
    async def scenario(store):
        assert await store.create_schedule(schedule("sched-1", next_run_at=BASE), max_per_user=5)
        await store.create_task(new_task("taken"))
        # The task cannot be stored (its id is taken): the claim is undone with it.
        with pytest.raises(store.database.dialect.unique_violation):
            await store.claim_schedule_run(RunClaim("sched-1", BASE, BASE + HOUR, run_task("taken"), BASE))
        unclaimed = await store.get_schedule("sched-1", ALICE.user_id)
        assert (unclaimed.next_run_at, unclaimed.last_run_at, unclaimed.total_runs) == (BASE, None, 0)
        assert await store.get_session("session-of-taken", ALICE.user_id) is None
        with pytest.raises(store.database.dialect.unique_violation):
            await store.add_manual_run("sched-1", ALICE.user_id, run_task("taken"), BASE)
        assert (await store.get_schedule("sched-1", ALICE.user_id)).last_run_at is None
        assert await store.list_schedule_runs("sched-1", 10, 0) == ([], 0)

        assert await store.claim_schedule_run(
            RunClaim("sched-1", BASE, BASE + HOUR, run_task("tick-1"), BASE)
        )
        [tick] = (await store.list_schedule_runs("sched-1", 10, 0))[0]
        assert tick.task == await store.get_task("tick-1", ALICE.user_id)
        assert tick.task.status == TaskStatus.QUEUED and tick.task.session_id == "session-of-tick-1"
        # Runs of this version are never left for the sweep of unstarted runs.
        assert await store.unconfirmed_schedule_runs(BASE + 100 * HOUR, 10) == []

    run(database_url, scenario)


def test_runs_an_earlier_version_claimed_unmarked_are_found_by_the_sweep_until_confirmed(database_url):
    async def scenario(store):
        assert await store.create_schedule(schedule("sched-1", next_run_at=BASE), max_per_user=5)
        assert await store.create_schedule(schedule("sched-bob", owner=BOB, next_run_at=BASE), max_per_user=5)
        await earlier_version_run(store, "sched-1", "tick-1", BASE)
        await earlier_version_run(store, "sched-bob", "tick-bob", BASE + HOUR)
        await earlier_version_run(store, "sched-1", "manual-1", BASE + 2 * HOUR, manual=True)
        await earlier_version_run(store, "sched-1", "tick-2", BASE + 3 * HOUR)
        assert await store.add_manual_run("sched-1", ALICE.user_id, run_task("manual-2"), BASE + 3 * HOUR)
        await store.create_task(run_task("tick-1"))
        await store.create_task(run_task("tick-bob", BOB))

        def runs(found):
            return [(each.task_id, each.schedule_id, each.user_id, each.task_stored) for each in found]

        assert runs(await store.unconfirmed_schedule_runs(BASE + 3 * HOUR, 10)) == [
            ("tick-1", "sched-1", ALICE.user_id, True),
            ("tick-bob", "sched-bob", BOB.user_id, True),
            ("manual-1", "sched-1", ALICE.user_id, False),
        ]
        assert runs(await store.unconfirmed_schedule_runs(BASE + 3 * HOUR, 1)) == [
            ("tick-1", "sched-1", ALICE.user_id, True)
        ]
        assert await store.unconfirmed_schedule_runs(BASE, 10) == []

        await store.confirm_schedule_run("tick-1")
        await store.confirm_schedule_run("no-such-task")
        assert [each.task_id for each in await store.unconfirmed_schedule_runs(BASE + 4 * HOUR, 10)] == [
            "tick-bob",
            "manual-1",
            "tick-2",
        ]
        for task_id in ("tick-bob", "manual-1", "tick-2"):
            await store.confirm_schedule_run(task_id)
        assert await store.unconfirmed_schedule_runs(BASE + 4 * HOUR, 10) == []
        # Confirming changes nothing else of a run.
        runs_of_one, total = await store.list_schedule_runs("sched-1", 10, 0)
        assert total == 4 and [each.task_id for each in runs_of_one] == [
            "manual-2",
            "tick-2",
            "manual-1",
            "tick-1",
        ]

    run(database_url, scenario)
