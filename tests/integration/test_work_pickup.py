"""Prompt pick-up of queued work across replicas: PostgreSQL notices, the listener, real processes.

A task becoming QUEUED notifies ``taskgate_work_queued`` (migration 0013's trigger); each store
listens on a connection of its own and wakes its worker pool. The replicas here poll only every
600 s, so a task they start within a minute was started by a notice, not by a poll.
"""

import asyncio
import dataclasses

import httpx
import psycopg
import pytest

from orchestrator.domain.tasks import NewTask
from orchestrator.store import open_store
from orchestrator.store.base import Store
from orchestrator.store.sql_store import WORK_QUEUED_CHANNEL
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration

LISTENER_APPLICATION = f"taskgate-listen-{WORK_QUEUED_CHANNEL}"
NOTICE_TIMEOUT = 30.0
SENTINEL = "sentinel"


def new_task(number: int) -> NewTask:
    return NewTask(
        f"task-{number:04d}", "user-1", "tenant-1", "session-1", f"query {number}", "standard", {}, {}
    )


@pytest.fixture()
def database_url(postgres_server) -> str:
    return postgres_server.create_database()


async def migrated_store(url: str) -> Store:
    store = await open_store(url)
    await store.migrate()
    return store


async def wait_for(check, what: str, timeout: float = NOTICE_TIMEOUT):
    """Wait on the loop until ``check()`` is truthy and return it (AssertionError after ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return result


@dataclasses.dataclass
class Wakes:
    """Counts the calls of a store's work-queued callback."""

    count: int = 0

    def __call__(self) -> None:
        self.count += 1


def listener_pids(url: str) -> list[int]:
    """Return the server processes of this database's work-queued listeners."""
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            (LISTENER_APPLICATION,),
        ).fetchall()
    return [row[0] for row in rows]


class NoticeRecorder:
    """A plain connection listening on the channel: what the trigger sent, in commit order."""

    def __init__(self, url: str) -> None:
        self._connection = psycopg.connect(url, autocommit=True)
        self._connection.execute(f"LISTEN {WORK_QUEUED_CHANNEL}")

    def close(self) -> None:
        self._connection.close()

    def notices_until_sentinel(self) -> list[str]:
        """Send a sentinel notice, then return the payloads of every notice received before it."""
        self._connection.execute("SELECT pg_notify(%s, %s)", (WORK_QUEUED_CHANNEL, SENTINEL))
        payloads = []
        for notice in self._connection.notifies(timeout=NOTICE_TIMEOUT):
            if notice.payload == SENTINEL:
                return payloads
            payloads.append(notice.payload)
        raise AssertionError("the sentinel notice never arrived")


def test_the_trigger_notifies_once_per_transaction_that_queues_work(database_url):
    async def prepare() -> None:
        store = await migrated_store(database_url)
        await store.close()

    asyncio.run(prepare())
    recorder = NoticeRecorder(database_url)
    try:
        with psycopg.connect(database_url, autocommit=True) as writer:

            async def submit_two() -> None:
                store = await open_store(database_url)
                try:
                    await store.create_task(new_task(1))
                    await store.create_task(new_task(2))
                finally:
                    await store.close()

            asyncio.run(submit_two())
            # Notices arrive in commit order; the sentinel marks where these writes end.
            assert recorder.notices_until_sentinel() == ["", ""]

            writer.execute("UPDATE tasks SET status = 'RUNNING', claimed_by = 'w:1'")
            writer.execute("UPDATE tasks SET progress = 0.5")
            assert recorder.notices_until_sentinel() == []

            # A requeue or a resume: the task goes back to QUEUED by an UPDATE.
            writer.execute(
                "UPDATE tasks SET status = 'QUEUED', claimed_by = NULL WHERE task_id = %s", ("task-0001",)
            )
            assert recorder.notices_until_sentinel() == [""]

            # Identical notices of one transaction are delivered once, at commit.
            with writer.transaction():
                writer.execute("UPDATE tasks SET status = 'RUNNING'")
                writer.execute("UPDATE tasks SET status = 'QUEUED'")
                writer.execute("UPDATE tasks SET status = 'PAUSED' WHERE task_id = 'task-0001'")
            assert recorder.notices_until_sentinel() == [""]
    finally:
        recorder.close()


def test_a_task_queued_through_one_store_wakes_the_listeners_of_the_others(database_url):
    async def scenario() -> None:
        listening, other, submitting = (
            await migrated_store(database_url),
            await migrated_store(database_url),
            await migrated_store(database_url),
        )
        try:
            wakes, other_wakes = Wakes(), Wakes()
            listening.on_work_queued(wakes)
            other.on_work_queued(other_wakes)
            # Each listener calls back once when it starts listening: nothing queued meanwhile is lost.
            await wait_for(lambda: wakes.count >= 1 and other_wakes.count >= 1, "the listeners to start")
            before, other_before = wakes.count, other_wakes.count

            await submitting.create_task(new_task(1))

            await wait_for(lambda: wakes.count > before, "the first store's wake")
            await wait_for(lambda: other_wakes.count > other_before, "the second store's wake")
        finally:
            for store in (listening, other, submitting):
                await store.close()

    asyncio.run(scenario())


def test_a_flood_of_notices_is_coalesced_into_few_wakes(database_url):
    async def scenario() -> None:
        listening = await migrated_store(database_url)
        try:
            wakes = Wakes()
            listening.on_work_queued(wakes)
            await wait_for(lambda: wakes.count >= 1, "the listener to start")
            before = wakes.count
            # 500 notices, each its own transaction, sent while this loop is blocked (the writer
            # is synchronous), so they reach the listener's socket together.
            with psycopg.connect(database_url, autocommit=True) as writer:
                for _ in range(500):
                    writer.execute("SELECT pg_notify(%s, '')", (WORK_QUEUED_CHANNEL,))
            await wait_for(lambda: wakes.count > before, "a wake")
            # Let any notice still on its way arrive; each read's notices become one call.
            await asyncio.sleep(0.5)
            assert wakes.count - before < 100
        finally:
            await listening.close()

    asyncio.run(scenario())


def test_the_listener_survives_a_dropped_connection_and_notices_again(database_url):
    async def scenario() -> None:
        listening, submitting = await migrated_store(database_url), await migrated_store(database_url)
        try:
            wakes = Wakes()
            listening.on_work_queued(wakes)
            await wait_for(lambda: wakes.count >= 1, "the listener to start")
            [dropped] = await asyncio.to_thread(listener_pids, database_url)

            with psycopg.connect(database_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (dropped,))
            # The callback runs again once the listener has reconnected and listens again.
            before = wakes.count
            await wait_for(lambda: wakes.count > before, "the listener to reconnect")
            [replacement] = await asyncio.to_thread(listener_pids, database_url)
            assert replacement != dropped

            reconnected = wakes.count
            await submitting.create_task(new_task(1))
            await wait_for(lambda: wakes.count > reconnected, "a wake after the reconnection")
        finally:
            await listening.close()
            await submitting.close()

    asyncio.run(scenario())


def test_closing_the_store_closes_its_listener(database_url):
    async def scenario() -> None:
        listening = await migrated_store(database_url)
        wakes = Wakes()
        listening.on_work_queued(wakes)
        await wait_for(lambda: wakes.count >= 1, "the listener to start")
        assert len(await asyncio.to_thread(listener_pids, database_url)) == 1
        await listening.close()

    asyncio.run(scenario())
    wait_until(lambda: not listener_pids(database_url), timeout=NOTICE_TIMEOUT, what="the listener to go")


@pytest.fixture()
def long_polling_replicas(replicas_of):
    """Two replicas polling every 600 s; ``r1`` (behind the gateway) runs no tasks, ``r2`` does."""
    slow_poll = {"TASKGATE_WORKER_POLL_SECONDS": "600", "TASKGATE_SIM_STEP_SECONDS": "0"}
    return replicas_of(r1={**slow_poll, "TASKGATE_WORKER_CONCURRENCY": "0"}, r2=slow_poll)


def test_an_idle_replica_starts_a_task_queued_through_another_at_once(long_polling_replicas):
    replicas = long_polling_replicas
    response = httpx.post(
        f"{replicas.gateway.url}/api/v1/tasks",
        headers=replicas.headers,
        json={"query": "What is 2+2?"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]

    # r1 cannot run it and r2 would not poll for ten minutes: only r2 hearing the notice runs it.
    finished = wait_until(
        lambda: (task := replicas.task(task_id))["status"] == "COMPLETED" and task,
        timeout=60,
        interval=0.1,
        what="the task to complete on r2",
    )
    assert finished["result"].startswith("2 + 2 = 4")
    assert replicas.claimed_by(task_id).startswith("r2:")
