"""Session ids are per user, the same contract on SQLite and on a real PostgreSQL; migration 0017.

Two users who name the same session id each get a session of their own: its tasks, history, turns,
aggregates, usage, search and deletion never mix with the other's, and neither's answers tell that
the other's exists. Migration 0017 keys sessions by (user, id) and keeps the rows stored before it.
"""

import dataclasses
import datetime

import pytest

from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.store import migrations as migration_files
from orchestrator.store import postgres_database
from orchestrator.store import sqlite_database
from taskgate.rfc3339 import utc_now
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import BOB
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run
from tests.integration.store_fixtures import start_task

pytestmark = pytest.mark.integration

SHARED = "shared-id"
WEEK = datetime.timedelta(days=7)


async def finish(store, task, usage, result):
    claimed = await start_task(store, task)
    outcome = TaskOutcome(TaskStatus.COMPLETED, result=result, usage=usage)
    assert await store.finish_task(task.task_id, claimed.claim, outcome, ()) == []


def test_two_users_with_one_session_id_have_two_separate_sessions(database_url):
    async def scenario(store):
        await finish(
            store, new_task("a1", ALICE, SHARED, "Alice plans lanterns"), TokenUsage(10, 5, 0.5), "red"
        )
        await finish(store, new_task("b1", BOB, SHARED, "Bob plans lanterns"), TokenUsage(1, 1, 0.01), "blue")
        await store.create_task(new_task("a2", ALICE, SHARED, "Alice again"))

        alice = await store.get_session_summary(SHARED, ALICE.user_id)
        bob = await store.get_session_summary(SHARED, BOB.user_id)
        assert (alice.session.user_id, alice.session.task_count, alice.session.tokens_used) == (
            ALICE.user_id,
            2,
            15,
        )
        assert (bob.session.user_id, bob.session.task_count, bob.session.tokens_used) == (BOB.user_id, 1, 2)
        assert (alice.successful_tasks, alice.latest_task_query) == (1, "Alice again")
        assert (bob.successful_tasks, bob.latest_task_query) == (1, "Bob plans lanterns")
        assert alice.session.title == "Alice plans lanterns" and bob.session.title == "Bob plans lanterns"

        def ids(tasks):
            return [task.task_id for task in tasks[0]]

        assert ids(await store.list_session_tasks(SHARED, ALICE.user_id, 10, 0)) == ["a1", "a2"]
        assert ids(await store.list_session_tasks(SHARED, BOB.user_id, 10, 0)) == ["b1"]
        history = await store.session_history(SHARED, BOB.user_id, utc_now() + WEEK, 10)
        assert [task.task_id for task in history] == ["b1"]
        hits, total = await store.search_tasks(BOB.user_id, ["lanterns"], 10, 0)
        assert ([hit.task_id for hit in hits], total) == (["b1"], 1)
        usage = await store.usage_stats(BOB.user_id, utc_now() - WEEK, utc_now() - WEEK)
        assert (usage.sessions_total, usage.usage.total_tokens) == (1, 2)

        # Bob's turn is not held up behind Alice's queued turn of the same id: his is claimable.
        await store.create_task(new_task("b2", BOB, SHARED, "Bob's second"))
        claimed = await store.claim_next("worker-1", 60.0)
        assert claimed.task_id in {"a2", "b2"}
        second = await store.claim_next("worker-1", 60.0)
        assert {claimed.task_id, second.task_id} == {"a2", "b2"}

        # Alice rolls back her active turn: Bob's session and turns are untouched.
        await store.create_task(
            dataclasses.replace(new_task("a3", ALICE, SHARED), multitask_strategy="rollback")
        )
        assert (await store.get_session(SHARED, BOB.user_id)).task_count == 2
        assert ids(await store.list_session_tasks(SHARED, BOB.user_id, 10, 0)) == ["b1", "b2"]

        # Deleting Alice's leaves Bob's, and Bob may keep adding to his.
        assert await store.delete_session(SHARED, ALICE.user_id)
        assert await store.get_session(SHARED, ALICE.user_id) is None
        assert (await store.get_session(SHARED, BOB.user_id)).deleted_at is None
        await store.create_task(new_task("b3", BOB, SHARED))
        assert (await store.get_session(SHARED, BOB.user_id)).task_count == 3
        sessions, total = await store.list_sessions(BOB.user_id, 10, 0)
        assert ([summary.session.id for summary in sessions], total) == ([SHARED], 1)
        assert await store.list_sessions(ALICE.user_id, 10, 0) == ([], 0)

    run(database_url, scenario)


def _before_0017(dialect):
    return [migration for migration in migration_files.load_migrations(dialect) if migration.version < 17]


def test_migration_0017_keeps_sessions_stored_before_it(database_url, monkeypatch):
    """Rows written under the schema of 0016 read the same after 0017, which then admits shared ids."""
    for module in (sqlite_database, postgres_database):
        monkeypatch.setattr(module, "load_migrations", _before_0017)

    async def before(store):
        dialect = store.database.dialect
        now = dialect.encode_time(utc_now())
        await store.database.execute(
            "INSERT INTO sessions (id, user_id, tenant_id, title, tokens_used, cost_usd, task_count,"
            " created_at, updated_at, last_activity_at, context_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (SHARED, ALICE.user_id, ALICE.tenant_id, "Old session", 42, 0.25, 2, now, now, now, '{"k": 1}'),
        )
        for task_id, status in (("old-1", "COMPLETED"), ("old-2", "QUEUED")):
            await store.database.execute(
                "INSERT INTO tasks (task_id, user_id, tenant_id, session_id, query, status, mode, result,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    task_id,
                    ALICE.user_id,
                    ALICE.tenant_id,
                    SHARED,
                    f"Old query {task_id}",
                    status,
                    "simple",
                    "kept answer",
                    now,
                    now,
                ),
            )

    run(database_url, before)
    monkeypatch.undo()

    async def after(store):
        assert await store.migrate() == []
        summary = await store.get_session_summary(SHARED, ALICE.user_id)
        session = summary.session
        assert (session.title, session.tokens_used, session.cost_usd, session.task_count) == (
            "Old session",
            42,
            0.25,
            2,
        )
        assert (session.context, summary.successful_tasks, summary.latest_task_query) == (
            {"k": 1},
            1,
            "Old query old-2",
        )
        tasks, total = await store.list_session_tasks(SHARED, ALICE.user_id, 10, 0)
        assert ([task.task_id for task in tasks], total) == (["old-1", "old-2"], 2)
        hits, _ = await store.search_tasks(ALICE.user_id, ["kept"], 10, 0)
        assert sorted(hit.task_id for hit in hits) == ["old-1", "old-2"]
        # The old queued turn is claimable, finishes and adds its usage to its session.
        claimed = await store.claim_next("worker-1", 60.0)
        assert claimed.task_id == "old-2"
        outcome = TaskOutcome(TaskStatus.COMPLETED, result="done", usage=TokenUsage(3, 4, 0.5))
        assert await store.finish_task("old-2", claimed.claim, outcome, ()) == []
        assert (await store.get_session(SHARED, ALICE.user_id)).tokens_used == 49
        # Now Bob may use the id; the new key refuses a task of a session its user does not have.
        await store.create_task(new_task("bob-1", BOB, SHARED))
        assert (await store.get_session(SHARED, BOB.user_id)).task_count == 1
        assert (await store.get_session(SHARED, ALICE.user_id)).task_count == 2
        with pytest.raises(Exception, match="(?i)foreign key"):
            await store.database.execute(
                "INSERT INTO tasks (task_id, user_id, tenant_id, session_id, query, status, mode,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    "orphan",
                    "user-carol",
                    "tenant-carol",
                    SHARED,
                    "q",
                    "QUEUED",
                    "simple",
                    store.database.dialect.encode_time(utc_now()),
                    store.database.dialect.encode_time(utc_now()),
                ),
            )

    run(database_url, after)
