"""Sessions in the store, the same contract on SQLite and on a real PostgreSQL.

Sessions as their first task creates them; reading, listing with their tasks' aggregates, renaming
and deleting them; a session's tasks, its history and its events; full-text search over tasks and
usage statistics.
"""

import pytest

from orchestrator import events
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.errors import SessionNotFoundError
from taskgate.rfc3339 import utc_now
from taskgate.session_titles import title_from_query
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import BOB
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import event
from tests.integration.store_fixtures import frozen_clock as frozen_clock
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run
from tests.integration.store_fixtures import start_task

pytestmark = pytest.mark.integration

NO_USAGE = TokenUsage()


async def finished_task(store, task, status=TaskStatus.COMPLETED, result="", usage=NO_USAGE):
    """Store, claim and finish a task (no other task may be QUEUED); return it as stored."""
    claimed = await start_task(store, task)
    outcome = TaskOutcome(status, result=result, usage=usage)
    assert await store.finish_task(task.task_id, claimed.claim, outcome, ()) == []
    return await store.get_task(task.task_id, task.user_id)


def test_a_session_is_created_by_its_first_task_read_renamed_and_soft_deleted_by_its_owner_only(
    database_url,
):
    async def scenario(store):
        before = utc_now()
        first = (
            await store.create_task(new_task("task-1", query="Trip plans\tfor  May", context={"days": 3}))
        ).task
        created = await store.get_session("session-1", ALICE.user_id)
        assert (created.id, created.user_id, created.tenant_id, created.title) == (
            "session-1",
            ALICE.user_id,
            ALICE.tenant_id,
            title_from_query("Trip plans\tfor  May"),
        )
        assert created.title == "Trip plans for May"
        assert (created.tokens_used, created.cost_usd, created.task_count, created.deleted_at) == (
            0,
            0,
            1,
            None,
        )
        assert (created.token_budget, created.context) == (None, {"days": 3})
        assert before <= created.created_at == created.updated_at <= utc_now()
        assert created.created_at == created.last_activity_at == first.created_at
        assert await store.get_session("session-1", ALICE.user_id) == created

        # Ids are per user: another user has no session of that id until they start one.
        assert await store.get_session("session-1", BOB.user_id) is None
        assert await store.get_session("session-1", ALICE.user_id) == created
        assert await store.get_session("no-such-session", ALICE.user_id) is None

        assert not await store.rename_session("session-1", BOB.user_id, "Mine now")
        assert not await store.rename_session("no-such-session", ALICE.user_id, "Nothing")
        assert await store.rename_session("session-1", ALICE.user_id, "Trip to Lyon")
        renamed = await store.get_session("session-1", ALICE.user_id)
        assert renamed.title == "Trip to Lyon" and renamed.updated_at > created.updated_at

        assert not await store.delete_session("session-1", BOB.user_id)
        assert not await store.delete_session("no-such-session", ALICE.user_id)
        assert await store.delete_session("session-1", ALICE.user_id)
        assert await store.get_session("session-1", ALICE.user_id) is None
        assert await store.get_session_summary("session-1", ALICE.user_id) is None
        deleted = await store.get_session("session-1", ALICE.user_id, include_deleted=True)
        assert deleted.deleted_at is not None and deleted.title == "Trip to Lyon"
        assert await store.get_session("session-1", BOB.user_id, include_deleted=True) is None
        # Deleting again is still "found", and leaves the deletion as it was.
        assert await store.delete_session("session-1", ALICE.user_id)
        assert await store.get_session("session-1", ALICE.user_id, include_deleted=True) == deleted
        assert not await store.rename_session("session-1", ALICE.user_id, "Back")
        with pytest.raises(SessionNotFoundError):
            await store.create_task(new_task("task-2", session_id="session-1"))
        assert await store.get_task("task-2", ALICE.user_id) is None
        assert await store.get_session("session-1", ALICE.user_id, include_deleted=True) == deleted

        # Another user's task naming the id starts a session of their own, Alice's deletion no part of it.
        await store.create_task(new_task("task-bob", owner=BOB, session_id="session-1", query="Bob here"))
        bobs = await store.get_session("session-1", BOB.user_id)
        assert (bobs.user_id, bobs.title, bobs.task_count, bobs.deleted_at) == (
            BOB.user_id,
            "Bob here",
            1,
            None,
        )
        assert await store.get_session("session-1", ALICE.user_id, include_deleted=True) == deleted

    run(database_url, scenario)


def test_sessions_are_listed_most_recently_active_first_with_their_task_aggregates(database_url):
    async def scenario(store):
        await finished_task(store, new_task("t1", session_id="busy"), TaskStatus.COMPLETED)
        await finished_task(store, new_task("t2", session_id="busy"), TaskStatus.FAILED)
        await finished_task(store, new_task("t3", session_id="busy"), TaskStatus.TIMEOUT)
        await finished_task(store, new_task("t4", session_id="busy"), TaskStatus.CANCELLED)
        # A session whose only task was cancelled: that task is neither successful nor failed.
        cancelled = new_task("t0", session_id="idle", query="Never mind")
        await finished_task(store, cancelled, TaskStatus.CANCELLED)
        await store.create_task(new_task("t5", session_id="busy", query="What next?"))
        await store.create_task(new_task("t6", session_id="quiet"))
        await store.create_task(new_task("t-bob", owner=BOB, session_id="bob-1"))

        def ids(page):
            summaries, total = page
            return [summary.session.id for summary in summaries], total

        assert ids(await store.list_sessions(ALICE.user_id, 10, 0)) == (["quiet", "busy", "idle"], 3)
        busy = await store.get_session_summary("busy", ALICE.user_id)
        assert (busy.successful_tasks, busy.failed_tasks) == (1, 2)
        assert (busy.latest_task_query, busy.latest_task_status) == ("What next?", TaskStatus.QUEUED)
        assert busy.session == await store.get_session("busy", ALICE.user_id)
        assert busy.session.task_count == 5
        idle = await store.get_session_summary("idle", ALICE.user_id)
        assert (idle.successful_tasks, idle.failed_tasks) == (0, 0)
        assert (idle.latest_task_query, idle.latest_task_status) == ("Never mind", TaskStatus.CANCELLED)
        assert (idle.session.title, idle.session.task_count) == ("Never mind", 1)
        summaries, _ = await store.list_sessions(ALICE.user_id, 10, 0)
        assert summaries[1] == busy and summaries[2] == idle

        # A task changing status is activity; a rename is not.
        assert (await store.claim_next("worker-1", 60)).task_id == "t5"
        assert await store.rename_session("idle", ALICE.user_id, "Still idle")
        assert ids(await store.list_sessions(ALICE.user_id, 10, 0)) == (["busy", "quiet", "idle"], 3)
        busy = await store.get_session_summary("busy", ALICE.user_id)
        assert busy.latest_task_status == TaskStatus.RUNNING
        assert busy.session.last_activity_at >= busy.session.created_at

        assert ids(await store.list_sessions(ALICE.user_id, 1, 1)) == (["quiet"], 3)
        assert ids(await store.list_sessions(ALICE.user_id, 5, 3)) == ([], 3)
        assert ids(await store.list_sessions(BOB.user_id, 10, 0)) == (["bob-1"], 1)
        assert await store.get_session_summary("busy", BOB.user_id) is None
        assert await store.delete_session("quiet", ALICE.user_id)
        assert ids(await store.list_sessions(ALICE.user_id, 10, 0)) == (["busy", "idle"], 2)

    run(database_url, scenario)


def test_sessions_active_in_one_instant_are_listed_latest_created_first(database_url, frozen_clock):
    async def scenario(store):
        for session_id in ("session-b", "session-c", "session-a"):
            await store.create_task(new_task(f"task-{session_id}", session_id=session_id))
        summaries, _ = await store.list_sessions(ALICE.user_id, 10, 0)
        assert [summary.session.id for summary in summaries] == ["session-a", "session-c", "session-b"]

    run(database_url, scenario)


def test_a_sessions_tasks_are_paged_oldest_first_and_its_history_is_its_latest_completed_turns(database_url):
    async def scenario(store):
        statuses = [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.COMPLETED, TaskStatus.COMPLETED]
        done = [
            await finished_task(store, new_task(f"turn-{number}"), status, result=f"answer {number}")
            for number, status in enumerate(statuses, start=1)
        ]
        await finished_task(store, new_task("elsewhere", session_id="session-2"))
        latest = (await store.create_task(new_task("turn-5"))).task

        tasks, total = await store.list_session_tasks("session-1", ALICE.user_id, 10, 0)
        assert [task.task_id for task in tasks] == ["turn-1", "turn-2", "turn-3", "turn-4", "turn-5"]
        assert total == 5 and tasks[0] == done[0] and tasks[4] == latest
        tasks, total = await store.list_session_tasks("session-1", ALICE.user_id, 2, 1)
        assert ([task.task_id for task in tasks], total) == (["turn-2", "turn-3"], 5)
        assert await store.list_session_tasks("session-1", BOB.user_id, 10, 0) == ([], 0)
        assert await store.list_session_tasks("no-such-session", ALICE.user_id, 10, 0) == ([], 0)

        def ids(tasks):
            return [task.task_id for task in tasks]

        assert ids(await store.session_history("session-1", ALICE.user_id, latest.created_at, 2)) == [
            "turn-3",
            "turn-4",
        ]
        assert ids(await store.session_history("session-1", ALICE.user_id, latest.created_at, 10)) == [
            "turn-1",
            "turn-3",
            "turn-4",
        ]
        # Created before, strictly: a turn is not its own history.
        assert ids(await store.session_history("session-1", ALICE.user_id, done[3].created_at, 10)) == [
            "turn-1",
            "turn-3",
        ]
        history = await store.session_history("session-1", ALICE.user_id, utc_now(), 1)
        assert history == [done[3]] and history[0].result == "answer 4"
        assert await store.session_history("session-1", BOB.user_id, utc_now(), 10) == []

    run(database_url, scenario)


def test_events_of_several_workflows_come_by_workflow_then_seq_without_the_excluded_types(database_url):
    async def scenario(store):
        # Created in the opposite order of their ids: the list follows the ids.
        await store.create_task(new_task("wf-b"))
        await store.create_task(new_task("wf-a"))
        await store.create_task(new_task("wf-c"))
        kinds = [events.WORKFLOW_STARTED, events.LLM_PARTIAL, events.LLM_OUTPUT, events.STREAM_END]
        for workflow_id in ("wf-b", "wf-a", "wf-c"):
            for seq, kind in enumerate(kinds, start=1):
                await store.append_event(event(workflow_id, seq, kind))

        def keys(listed):
            return [(e.workflow_id, e.seq) for e in listed]

        listed = await store.list_workflow_events(["wf-b", "wf-a"], {events.LLM_PARTIAL}, 100)
        assert keys(listed) == [("wf-a", 1), ("wf-a", 3), ("wf-a", 4), ("wf-b", 1), ("wf-b", 3), ("wf-b", 4)]
        assert listed[0] == (await store.list_events("wf-a", limit=1))[0]
        excluded = {events.LLM_PARTIAL, events.STREAM_END}
        assert keys(await store.list_workflow_events(["wf-b", "wf-a"], excluded, 3)) == [
            ("wf-a", 1),
            ("wf-a", 3),
            ("wf-b", 1),
        ]
        assert len(await store.list_workflow_events(["wf-a", "wf-b", "wf-c"], (), 100)) == 12
        assert await store.list_workflow_events([], (), 100) == []
        assert await store.list_workflow_events(["no-such-task"], (), 100) == []

    run(database_url, scenario)


def test_search_finds_a_users_tasks_holding_every_term_as_stems(database_url):
    async def scenario(store):
        await finished_task(
            store, new_task("answered", query="What should I read?"), result="Try the Zeppelin chapter"
        )
        plan = (
            await store.create_task(new_task("plan", query="Plan the database migration for billing"))
        ).task
        await store.create_task(new_task("runbook", query="Write the runbook for schema migrations"))
        await store.create_task(new_task("cooking", query="A recipe for lentil soup"))
        await store.create_task(new_task("bob", owner=BOB, session_id="bob-1", query="Database migration"))
        await store.create_task(new_task("gone", session_id="deleted", query="Old migration notes"))
        assert await store.delete_session("deleted", ALICE.user_id)

        def ids(page):
            hits, total = page
            return sorted(hit.task_id for hit in hits), total

        assert ids(await store.search_tasks(ALICE.user_id, ["migrations"], 10, 0)) == (["plan", "runbook"], 2)
        assert ids(await store.search_tasks(ALICE.user_id, ["MIGRATION", "billing"], 10, 0)) == (["plan"], 1)
        assert ids(await store.search_tasks(ALICE.user_id, ["the", "migration"], 10, 0)) == (
            ["plan", "runbook"],
            2,
        )
        assert ids(await store.search_tasks(ALICE.user_id, ["migration", "soup"], 10, 0)) == ([], 0)
        assert ids(await store.search_tasks(ALICE.user_id, ["zeppelin"], 10, 0)) == (["answered"], 1)
        assert ids(await store.search_tasks(BOB.user_id, ["migration"], 10, 0)) == (["bob"], 1)

        first, total = await store.search_tasks(ALICE.user_id, ["migration"], 1, 0)
        second, _ = await store.search_tasks(ALICE.user_id, ["migration"], 1, 1)
        assert total == 2 and {first[0].task_id, second[0].task_id} == {"plan", "runbook"}
        assert await store.search_tasks(ALICE.user_id, ["migration"], 10, 2) == ([], 2)

        [hit], _ = await store.search_tasks(ALICE.user_id, ["billing"], 10, 0)
        assert (hit.task_id, hit.session_id, hit.created_at) == ("plan", "session-1", plan.created_at)
        # Each database marks the matches its own way around the passage; both put them between **.
        assert "**billing**" in hit.snippet and "migration" in hit.snippet
        [hit], _ = await store.search_tasks(ALICE.user_id, ["zeppelin"], 10, 0)
        assert "**Zeppelin**" in hit.snippet

    run(database_url, scenario)


def test_search_folds_accents(database_url):
    async def scenario(store):
        await store.create_task(new_task("cafe", query="Best café in Lyon"))
        hits, total = await store.search_tasks(ALICE.user_id, ["cafe"], 10, 0)
        assert ([hit.task_id for hit in hits], total) == (["cafe"], 1)

    run(database_url, scenario)


def test_search_ranks_equal_matches_newest_first(database_url, frozen_clock):

    async def scenario(store):
        for task_id in ("older", "newer"):
            await store.create_task(new_task(task_id, query="Quarterly report"))
        frozen_clock.advance(1)
        await store.create_task(new_task("newest", query="Quarterly report"))
        hits, _ = await store.search_tasks(ALICE.user_id, ["report"], 10, 0)
        assert [hit.task_id for hit in hits] == ["newest", "newer", "older"]

    run(database_url, scenario)


def test_usage_stats_count_a_window_of_tasks_and_sessions(database_url):
    async def scenario(store):
        await finished_task(
            store, new_task("old", session_id="old-session"), usage=TokenUsage(1000, 1000, 9.0)
        )
        since = utc_now()
        await finished_task(store, new_task("done-1"), usage=TokenUsage(10, 20, 0.25))
        await finished_task(
            store, new_task("failed", session_id="gone"), TaskStatus.FAILED, usage=TokenUsage(5, 0, 0.5)
        )
        assert await store.delete_session("gone", ALICE.user_id)
        active_since = utc_now()
        await finished_task(store, new_task("done-2", session_id="recent"), usage=TokenUsage(1, 2, 0.125))
        await store.create_task(new_task("queued", session_id="recent"))
        await store.create_task(new_task("bob", owner=BOB, session_id="bob-1"))

        stats = await store.usage_stats(ALICE.user_id, since, active_since)
        # Tasks of the deleted session still count; the session itself does not.
        assert stats.tasks_by_status == {TaskStatus.COMPLETED: 2, TaskStatus.FAILED: 1, TaskStatus.QUEUED: 1}
        assert stats.usage == TokenUsage(16, 22, 0.875)
        assert (stats.sessions_total, stats.sessions_active) == (2, 1)
        # By the UTC date of creation: the tasks summed per day add up to the window's.
        assert sum(day.tasks for day in stats.by_day) == 4
        assert sum(day.usage.prompt_tokens for day in stats.by_day) == 16
        assert [day.date for day in stats.by_day] == sorted({day.date for day in stats.by_day})

        everything = await store.usage_stats(ALICE.user_id, since.replace(year=2000), active_since)
        assert sum(everything.tasks_by_status.values()) == 5
        assert everything.usage == TokenUsage(1016, 1022, 9.875)
        assert (everything.sessions_total, everything.sessions_active) == (3, 1)

        nobody = await store.usage_stats("user-nobody", since, active_since)
        assert nobody.tasks_by_status == {} and nobody.usage == TokenUsage() and nobody.by_day == ()
        assert (nobody.sessions_total, nobody.sessions_active) == (0, 0)

    run(database_url, scenario)
