"""Progress values go in the group commit's batches on both databases, and never wait there for a lock.

``update_task_progress`` joins the batch of events (``orchestrator/store/group_commit.py``). On
PostgreSQL the batch's UPDATE passes over task rows another transaction holds (a lease renewal
locks many at once) instead of waiting for them while it holds others; such a value goes in a later
batch, and in the end waits for its row on its own. These tests check that many tasks' values are
written in shared batches, and that a held row delays its own value only: the others are written
meanwhile, and it is written once the row is free.
"""

import asyncio

import psycopg
import pytest

from orchestrator.store import group_commit
from orchestrator.store import open_store
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run

pytestmark = pytest.mark.integration

TASKS = 12


@pytest.fixture()
def batch_sizes(monkeypatch) -> list[int]:
    """The number of items of every batch the group commit writes."""
    sizes: list[int] = []
    write = group_commit._write

    def counted(transaction, dialect, batch):
        sizes.append(len(batch))
        return write(transaction, dialect, batch)

    monkeypatch.setattr(group_commit, "_write", counted)
    return sizes


async def claimed_tasks(store, count: int):
    for number in range(count):
        await store.create_task(new_task(f"task-{number:02d}", session_id=f"session-{number:02d}"))
    claimed = await store.claim_tasks("worker-1", 60.0, count)
    assert len(claimed) == count
    return sorted(claimed, key=lambda task: task.task_id)


async def progress_of(store, task) -> float:
    return (await store.get_task(task.task_id, ALICE.user_id)).progress


def test_many_tasks_progress_in_shared_batches(database_url, batch_sizes):
    async def scenario(store):
        tasks = await claimed_tasks(store, TASKS)
        for fraction in (0.2, 0.9):
            await asyncio.gather(*(store.update_task_progress(task.task_id, fraction) for task in tasks))
            assert [await progress_of(store, task) for task in tasks] == [fraction] * TASKS
        # Out of range is clamped, as a single statement did.
        await store.update_task_progress(tasks[0].task_id, 1.5)
        assert await progress_of(store, tasks[0]) == 1.0

    run(database_url, scenario)
    assert sum(batch_sizes) == 2 * TASKS + 1
    assert len(batch_sizes) < 2 * TASKS


def test_a_held_task_row_delays_only_its_own_progress(postgres_server):
    url = postgres_server.create_database()

    async def main() -> None:
        store = await open_store(url)
        try:
            await store.migrate()
            held, free = await claimed_tasks(store, 2)
            async with await psycopg.AsyncConnection.connect(url) as other:
                # Another transaction holds the first task's row, as a lease renewal does.
                await other.execute(
                    "UPDATE tasks SET lease_expires_at = lease_expires_at WHERE task_id = %s", (held.task_id,)
                )
                delayed = asyncio.ensure_future(store.update_task_progress(held.task_id, 0.5))
                await asyncio.wait_for(store.update_task_progress(free.task_id, 0.5), timeout=60)
                assert await progress_of(store, free) == 0.5
                assert not delayed.done()
                assert await progress_of(store, held) == 0.0
                await other.commit()
                await asyncio.wait_for(delayed, timeout=60)
            assert await progress_of(store, held) == 0.5
        finally:
            await store.close()

    asyncio.run(main())
