"""The task queue of the store, the same contract on SQLite and on a real PostgreSQL.

Submitting (with its session and budget), reading and listing, claiming, leases and their take-over,
progress and finishing.
"""

import asyncio
import datetime

import pytest

from orchestrator import events
from orchestrator.domain.task_control import stream_end_event
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskFilter
from orchestrator.domain.tasks import TaskGuard
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TaskTransition
from orchestrator.domain.tasks import TokenUsage
from orchestrator.errors import SessionBudgetExhaustedError
from orchestrator.store import open_store
from taskgate.rfc3339 import utc_now
from taskgate.session_titles import title_from_query
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import BOB
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import frozen_clock as frozen_clock
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run
from tests.integration.store_fixtures import start_task

pytestmark = pytest.mark.integration

ANY_TASK = TaskFilter()
COMPLETED_EVENTS = (NewEvent(events.WORKFLOW_COMPLETED, "Workflow completed"), stream_end_event())
FAILED_EVENTS = (NewEvent(events.WORKFLOW_FAILED, "Workflow failed"), stream_end_event())
LONG_QUERY = "Summarise\tthe quarterly report\nand list every risk the finance team raised in the appendix"


def seconds_from_now(moment: datetime.datetime) -> float:
    return (moment - utc_now()).total_seconds()


def test_migrations_apply_once_and_a_reopened_store_has_nothing_left_to_apply(database_url):
    async def scenario():
        store = await open_store(database_url)
        try:
            applied = await store.migrate()
            again = await store.migrate()
        finally:
            await store.close()
        reopened = await open_store(database_url)
        try:
            return applied, again, await reopened.migrate()
        finally:
            await reopened.close()

    applied, again, after_reopening = asyncio.run(scenario())
    assert applied[0] == 1 and applied == sorted(set(applied))
    assert again == [] and after_reopening == []


def test_a_task_is_stored_queued_in_its_session_which_it_creates_if_absent(database_url):
    async def scenario(store):
        submitted = new_task(
            "task-1", query=LONG_QUERY, budget=1000, context={"lang": "fr"}, options={"temperature": 0.2}
        )
        created = (await store.create_task(submitted)).task
        assert (created.task_id, created.user_id, created.tenant_id, created.session_id) == (
            "task-1",
            ALICE.user_id,
            ALICE.tenant_id,
            "session-1",
        )
        assert (created.status, created.progress, created.result, created.error) == (
            TaskStatus.QUEUED,
            0,
            "",
            "",
        )
        assert (created.query, created.mode, created.context, created.options) == (
            LONG_QUERY,
            "standard",
            {"lang": "fr"},
            {"temperature": 0.2},
        )
        assert created.usage == TokenUsage() and created.created_at == created.updated_at
        assert (created.started_at, created.completed_at, created.claimed_by, created.lease_expires_at) == (
            None,
            None,
            None,
            None,
        )
        assert created.claim_epoch == 0
        assert abs(seconds_from_now(created.created_at)) < 5
        assert await store.get_task("task-1", ALICE.user_id) == created
        # Someone else's task reads exactly like a missing one.
        assert await store.get_task("task-1", BOB.user_id) is None
        assert await store.get_task("no-such-task", ALICE.user_id) is None

        session = await store.get_session("session-1", ALICE.user_id)
        assert session.title == title_from_query(LONG_QUERY) and session.title.endswith("…")
        assert (session.token_budget, session.context, session.task_count) == (1000, {"lang": "fr"}, 1)
        assert (session.tokens_used, session.cost_usd, session.tenant_id) == (0, 0, ALICE.tenant_id)

        # A later task joins the session as it is: its own budget and context do not apply.
        await store.create_task(new_task("task-2", query="Next", budget=5, context={"lang": "de"}))
        session = await store.get_session("session-1", ALICE.user_id)
        assert (session.title, session.token_budget, session.context, session.task_count) == (
            title_from_query(LONG_QUERY),
            1000,
            {"lang": "fr"},
            2,
        )

        # Another user naming the same session id gets a session of their own.
        await store.create_task(new_task("task-bob", owner=BOB))
        assert (await store.get_task("task-bob", BOB.user_id)).session_id == "session-1"
        assert (await store.get_session("session-1", BOB.user_id)).task_count == 1
        assert (await store.get_session("session-1", ALICE.user_id)).task_count == 2

    run(database_url, scenario)


def test_finishing_adds_usage_to_the_session_until_its_budget_refuses_more_tasks(database_url):
    async def scenario(store):
        first = await start_task(store, new_task("task-1", budget=100))
        await store.update_task_progress("task-1", 0.4)
        assert (await store.get_task("task-1", ALICE.user_id)).progress == pytest.approx(0.4)
        await store.update_task_progress("task-1", 1.7)
        assert (await store.get_task("task-1", ALICE.user_id)).progress == 1.0
        await store.update_task_progress("task-1", -0.3)
        assert (await store.get_task("task-1", ALICE.user_id)).progress == 0.0

        outcome = TaskOutcome(
            TaskStatus.COMPLETED, "4", "", TokenUsage(25, 35, 0.25), model_used="gpt-test", provider="openai"
        )
        recorded = await store.finish_task("task-1", first.claim, outcome, COMPLETED_EVENTS)
        assert [(e.seq, e.type) for e in recorded] == [(1, events.WORKFLOW_COMPLETED), (2, events.STREAM_END)]
        assert await store.list_events("task-1") == recorded
        task = await store.get_task("task-1", ALICE.user_id)
        assert (task.status, task.progress, task.result, task.error) == (TaskStatus.COMPLETED, 1.0, "4", "")
        assert (task.usage, task.model_used, task.provider) == (
            TokenUsage(25, 35, 0.25),
            "gpt-test",
            "openai",
        )
        assert task.completed_at is not None and task.completed_at >= task.started_at
        assert task.lease_expires_at is None
        session = await store.get_session("session-1", ALICE.user_id)
        assert (session.tokens_used, session.cost_usd, session.budget_exhausted) == (60, 0.25, False)
        # The claim ended with the task: finishing it again records nothing and adds no usage.
        assert await store.finish_task("task-1", first.claim, outcome, COMPLETED_EVENTS) is None
        assert await store.get_session("session-1", ALICE.user_id) == session
        assert await store.count_events("task-1") == 2

        # A failed task keeps the progress it reached, and its usage counts too.
        second = await start_task(store, new_task("task-2"))
        await store.update_task_progress("task-2", 0.5)
        failed = TaskOutcome(TaskStatus.FAILED, error="boom", usage=TokenUsage(30, 10, 0.5))
        recorded = await store.finish_task("task-2", second.claim, failed, FAILED_EVENTS)
        assert [e.type for e in recorded] == [events.WORKFLOW_FAILED, events.STREAM_END]
        task = await store.get_task("task-2", ALICE.user_id)
        assert (task.status, task.progress, task.error, task.result) == (TaskStatus.FAILED, 0.5, "boom", "")
        session = await store.get_session("session-1", ALICE.user_id)
        assert (session.tokens_used, session.cost_usd, session.budget_exhausted) == (100, 0.75, True)

        with pytest.raises(SessionBudgetExhaustedError):
            await store.create_task(new_task("task-3"))
        assert await store.get_task("task-3", ALICE.user_id) is None
        assert (await store.get_session("session-1", ALICE.user_id)).task_count == 2
        # A session without a budget never runs out.
        fourth = await start_task(store, new_task("task-4", session_id="session-2"))
        huge = TaskOutcome(TaskStatus.COMPLETED, usage=TokenUsage(10**6, 10**6, 9.0))
        assert await store.finish_task("task-4", fourth.claim, huge, ()) == []
        await store.create_task(new_task("task-5", session_id="session-2"))
        assert (await store.get_session("session-2", ALICE.user_id)).tokens_used == 2 * 10**6

    run(database_url, scenario)


def test_tasks_are_listed_newest_first_in_pages_of_one_user_session_or_status(database_url):
    async def scenario(store):
        for number, session_id in enumerate(["s-a", "s-b", "s-a", "s-a", "s-b"], start=1):
            await store.create_task(new_task(f"task-{number}", session_id=session_id))
        await store.create_task(new_task("task-6", session_id="s-b"))
        await store.create_task(new_task("task-bob", owner=BOB, session_id="s-bob"))
        assert (await store.claim_next("worker-1", 60)).task_id == "task-1"

        async def ids(which=ANY_TASK, limit=10, offset=0, user_id=ALICE.user_id):
            tasks, total = await store.list_tasks(user_id, which, limit, offset)
            return [task.task_id for task in tasks], total

        assert await ids() == (["task-6", "task-5", "task-4", "task-3", "task-2", "task-1"], 6)
        assert await ids(limit=2, offset=1) == (["task-5", "task-4"], 6)
        assert await ids(limit=5, offset=6) == ([], 6)
        assert await ids(TaskFilter(session_id="s-a")) == (["task-4", "task-3", "task-1"], 3)
        assert await ids(TaskFilter(session_id="s-b", status=TaskStatus.QUEUED), limit=1) == (["task-6"], 3)
        assert await ids(TaskFilter(status=TaskStatus.RUNNING)) == (["task-1"], 1)
        assert await ids(TaskFilter(status=TaskStatus.FAILED)) == ([], 0)
        # Another user's session filters nothing in: a user only ever lists their own tasks.
        assert await ids(TaskFilter(session_id="s-bob")) == ([], 0)
        assert await ids(user_id=BOB.user_id) == (["task-bob"], 1)

    run(database_url, scenario)


def test_tasks_created_in_one_instant_keep_their_insertion_order(database_url, frozen_clock):
    async def scenario(store):
        # Ids out of alphabetical order: the tie is broken by insertion, not by id.
        for task_id in ("task-b", "task-c", "task-a"):
            await store.create_task(new_task(task_id))
        tasks, _ = await store.list_tasks(ALICE.user_id, ANY_TASK, 10, 0)
        assert len({task.created_at for task in tasks}) == 1
        assert [task.task_id for task in tasks] == ["task-a", "task-c", "task-b"]
        in_session, _ = await store.list_session_tasks("session-1", ALICE.user_id, 10, 0)
        assert [task.task_id for task in in_session] == ["task-b", "task-c", "task-a"]
        summary = await store.get_session_summary("session-1", ALICE.user_id)
        assert summary.latest_task_query == "query of task-a"

        # The session's first turn is the first inserted; the others wait until it has ended.
        claimed = [await store.claim_next("worker-1", 60) for _ in range(2)]
        assert [task.task_id if task else None for task in claimed] == ["task-b", None]
        assert [task.task_id for task in await store.list_claimed_tasks()] == ["task-b"]

    run(database_url, scenario)


def test_claim_next_gives_each_queued_task_once_oldest_first(database_url):
    async def scenario(store):
        for number in range(1, 4):
            await store.create_task(
                new_task(f"task-{number}", owner=ALICE if number % 2 else BOB, session_id=f"session-{number}")
            )
        claimed = await store.claim_next("worker-1", 30)
        assert (claimed.task_id, claimed.status, claimed.claimed_by) == (
            "task-1",
            TaskStatus.RUNNING,
            "worker-1",
        )
        assert claimed.started_at is not None and claimed.started_at >= claimed.created_at
        assert claimed.claim == Claim("worker-1", 1)
        assert 25 < seconds_from_now(claimed.lease_expires_at) <= 31
        assert await store.get_task("task-1", ALICE.user_id) == claimed

        # Claims at once (any user's tasks, one queue) never get the same task twice.
        racing = await asyncio.gather(*(store.claim_next(f"worker-{n}", 30) for n in range(2, 7)))
        won = [task for task in racing if task is not None]
        assert sorted(task.task_id for task in won) == ["task-2", "task-3"]
        assert all(task.claimed_by == f"worker-{n}" for n, task in enumerate(racing, start=2) if task)
        assert await store.claim_next("worker-1", 30) is None

        for number in range(10, 40):
            await store.create_task(new_task(f"task-{number}", session_id=f"session-{number}"))
        claims: list[str] = []

        async def claim_all(worker: str) -> None:
            while (task := await store.claim_next(worker, 30)) is not None:
                claims.append(task.task_id)

        await asyncio.gather(*(claim_all(f"drainer-{n}") for n in range(6)))
        assert sorted(claims) == sorted(f"task-{number}" for number in range(10, 40))

    run(database_url, scenario)


def test_a_claimed_task_requeued_keeps_its_first_start(database_url):
    async def scenario(store):
        first = await start_task(store, new_task("task-1"))
        parked = TaskTransition(
            guard=TaskGuard.of(first), control=first.control, status=TaskStatus.QUEUED, release=True
        )
        assert await store.transition_task("task-1", parked) == []
        again = await store.claim_next("worker-2", 30)
        assert (again.task_id, again.claimed_by, again.started_at) == ("task-1", "worker-2", first.started_at)
        assert again.claim_epoch == first.claim_epoch + 1

    run(database_url, scenario)


def test_leases_are_renewed_by_their_holder_and_expired_ones_taken_over(database_url):
    async def scenario(store):
        assert await store.renew_leases("worker-1", [], 60) == []
        held = await start_task(store, new_task("held"), "worker-1", lease_seconds=5)
        assert held.claim == Claim("worker-1", 1)
        renewed_from = utc_now()
        assert await store.renew_leases("worker-1", ["held", "no-such-task"], 120) == []
        held = await store.get_task("held", ALICE.user_id)
        assert held.lease_expires_at >= renewed_from + datetime.timedelta(seconds=115)
        assert held.claim == Claim("worker-1", 1)
        # Another worker's renewal changes nothing and learns the task is not its own.
        assert await store.renew_leases("worker-2", ["held"], 1) == ["held"]
        assert (await store.get_task("held", ALICE.user_id)).lease_expires_at == held.lease_expires_at

        lapsed = [
            await start_task(store, new_task("lapsed-a", session_id="session-a"), "dead", lease_seconds=0),
            await start_task(store, new_task("lapsed-b", session_id="session-b"), "dead", lease_seconds=-30),
        ]
        await store.create_task(new_task("queued", session_id="session-q"))
        taken = await store.take_over_expired_leases("rescuer", 60, 10)
        assert sorted(task.task_id for task in taken) == ["lapsed-a", "lapsed-b"]
        epochs = {task.task_id: task.claim_epoch for task in lapsed}
        for task in taken:
            assert (task.status, task.claimed_by) == (TaskStatus.RUNNING, "rescuer")
            assert task.claim_epoch == epochs[task.task_id] + 1
            assert 55 < seconds_from_now(task.lease_expires_at) <= 61
        # The previous holder's renewal tells it to stop running them, and leaves their leases alone.
        assert sorted(await store.renew_leases("dead", ["lapsed-a", "lapsed-b"], 600)) == [
            "lapsed-a",
            "lapsed-b",
        ]
        for task in taken:
            assert await store.get_task(task.task_id, ALICE.user_id) == task
        assert await store.take_over_expired_leases("rescuer", 60, 10) == []
        assert (await store.get_task("queued", ALICE.user_id)).status == TaskStatus.QUEUED

        # A caller's own lapsed lease (a renewal that failed) comes back to it too.
        lapsed_own = await store.claim_next("self", -1)
        assert lapsed_own.claim == Claim("self", 1)
        [own] = await store.take_over_expired_leases("self", 60, 10)
        assert (own.task_id, own.claim) == ("queued", Claim("self", 2))

        # Finished tasks have no lease to renew or take over.
        done = TaskOutcome(TaskStatus.COMPLETED, "done")
        assert await store.finish_task("held", held.claim, done, COMPLETED_EVENTS) is not None
        assert await store.renew_leases("worker-1", ["held"], 60) == []
        assert (await store.get_task("held", ALICE.user_id)).lease_expires_at is None

    run(database_url, scenario)


def test_expired_leases_are_taken_over_most_overdue_first_at_most_limit_at_a_time(database_url):
    async def scenario(store):
        for task_id, lease in (("overdue-10", -10), ("overdue-30", -30), ("overdue-20", -20)):
            await start_task(store, new_task(task_id, session_id=task_id), "dead", lease_seconds=lease)
        first = await store.take_over_expired_leases("rescuer", 60, 2)
        assert sorted(task.task_id for task in first) == ["overdue-20", "overdue-30"]
        second = await store.take_over_expired_leases("rescuer", 60, 2)
        assert [task.task_id for task in second] == ["overdue-10"]

    run(database_url, scenario)


def test_an_expired_lease_goes_to_exactly_one_of_several_callers_paused_tasks_included(database_url):
    async def scenario(store):
        running = await start_task(store, new_task("running", session_id="s-1"), "dead", lease_seconds=-1)
        paused = await start_task(store, new_task("paused", session_id="s-2"), "dead", lease_seconds=-1)
        held_at_pause = TaskTransition(
            guard=TaskGuard.of(paused), control=paused.control, status=TaskStatus.PAUSED
        )
        assert await store.transition_task("paused", held_at_pause) == []
        results = await asyncio.gather(
            *(store.take_over_expired_leases(f"replica-{n}", 60, 10) for n in range(4))
        )
        taken = [task for result in results for task in result]
        assert sorted(task.task_id for task in taken) == ["paused", "running"]
        by_id = {task.task_id: task for task in taken}
        assert by_id["paused"].status == TaskStatus.PAUSED
        assert by_id["running"].started_at == running.started_at

    run(database_url, scenario)
