"""The task feed's rows in the store, the same contract on SQLite and on a real PostgreSQL.

Triggers record the changes of tasks; numbers only go up, per caller and across pruning.
"""

import datetime

import pytest

from taskgate.rfc3339 import utc_now
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import BOB
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run
from tests.integration.store_fixtures import start_task

pytestmark = pytest.mark.integration


def test_a_tasks_changes_are_recorded_for_its_owner_only_in_order(database_url):
    async def scenario(store):
        await start_task(store, new_task("task-a", ALICE))
        await store.create_task(new_task("task-b", BOB))
        await store.number_pending_task_changes()
        mine = await store.list_user_task_changes(ALICE.user_id, 0, 100)
        assert [(change.task_id, change.kind, change.status) for change in mine] == [
            ("task-a", "task.created", "QUEUED"),
            ("task-a", "task.status", "RUNNING"),
        ]
        assert mine[0].change_id < mine[1].change_id
        assert mine[0].session_id == "session-1" and mine[0].created_at.tzinfo is not None
        after_first = await store.list_user_task_changes(ALICE.user_id, mine[0].change_id, 100)
        assert after_first == mine[1:]
        everyone = await store.list_task_changes(0, 100)
        assert {change.user_id for change in everyone} == {ALICE.user_id, BOB.user_id}
        assert await store.last_task_change_id() == everyone[-1].change_id

    run(database_url, scenario)


def test_pruning_keeps_the_newest_so_numbers_never_go_back(database_url):
    async def scenario(store):
        await store.create_task(new_task("task-1"))
        await store.create_task(new_task("task-2"))
        await store.number_pending_task_changes()
        last = await store.last_task_change_id()
        assert await store.prune_task_changes(utc_now() + datetime.timedelta(days=1)) == 1
        assert [change.task_id for change in await store.list_task_changes(0, 100)] == ["task-2"]
        await store.create_task(new_task("task-3"))
        await store.number_pending_task_changes()
        newest = await store.list_task_changes(last, 100)
        assert [change.task_id for change in newest] == ["task-3"] and newest[0].change_id > last
        assert await store.prune_task_changes(utc_now() - datetime.timedelta(days=1)) == 0

    run(database_url, scenario)
