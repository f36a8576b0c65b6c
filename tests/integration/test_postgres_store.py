"""The store on a real PostgreSQL: migrations, claims and leases under concurrency, outages."""

import asyncio
import collections
import subprocess

import httpx
import pytest

from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import TaskStatus
from orchestrator.store import open_store
from orchestrator.store.base import Store
from tests.integration.processes import REPO
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import free_port
from tests.integration.processes import start_stack
from tests.integration.processes import taskgate_command
from tests.integration.processes import wait_until
from tests.integration.servers import ServerUnavailableError
from tests.integration.servers import start_postgres

pytestmark = pytest.mark.integration


def new_task(number: int) -> NewTask:
    return NewTask(
        f"task-{number:04d}", "user-1", "tenant-1", f"session-{number}", f"query {number}", "standard", {}, {}
    )


async def open_stores(url: str, count: int) -> list[Store]:
    return [await open_store(url) for _ in range(count)]


@pytest.fixture()
def database_url(postgres_server) -> str:
    return postgres_server.create_database()


@pytest.fixture()
def own_postgres():
    """A PostgreSQL cluster of this test's own, which it may stop and start."""
    try:
        server = start_postgres()
    except ServerUnavailableError as ex:
        pytest.skip(str(ex))
    yield server
    server.stop()


def test_replicas_migrating_at_once_apply_each_migration_once(database_url):
    async def scenario():
        stores = await open_stores(database_url, 3)
        try:
            applied = await asyncio.gather(*(store.migrate() for store in stores))
            again = await stores[0].migrate()
        finally:
            for store in stores:
                await store.close()
        return applied, again

    applied, again = asyncio.run(scenario())
    versions = sorted(version for each in applied for version in each)
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert again == []


def test_concurrent_claims_from_several_replicas_get_each_task_once(database_url):
    async def scenario():
        stores = await open_stores(database_url, 4)
        try:
            await stores[0].migrate()
            for number in range(120):
                await stores[0].create_task(new_task(number))
            claims: collections.Counter[str] = collections.Counter()

            async def claim_all(store: Store, worker: str) -> None:
                while (task := await store.claim_next(worker, 30)) is not None:
                    claims[task.task_id] += 1

            await asyncio.gather(
                *(claim_all(store, f"w{n}") for n, store in enumerate(stores) for _ in range(3))
            )
            return claims, await stores[0].claim_next("late", 30)
        finally:
            for store in stores:
                await store.close()

    claims, late = asyncio.run(scenario())
    assert len(claims) == 120 and set(claims.values()) == {1}
    assert late is None


def test_an_expired_lease_is_taken_over_by_one_replica_and_its_holder_learns_it(database_url):
    async def scenario():
        one, two, three = await open_stores(database_url, 3)
        try:
            await one.migrate()
            await one.create_task(new_task(1))
            claimed = await one.claim_next("dead", 0.2)
            kept = await one.renew_leases("dead", [claimed.task_id], 0.2)
            early = await two.take_over_expired_leases("two", 5, 10)
            await asyncio.sleep(0.4)
            taken = await asyncio.gather(
                two.take_over_expired_leases("two", 5, 10), three.take_over_expired_leases("three", 5, 10)
            )
            lost = await one.renew_leases("dead", [claimed.task_id], 5)
            task = await one.get_task(claimed.task_id, "user-1")
            return kept, early, taken, lost, task
        finally:
            for store in (one, two, three):
                await store.close()

    kept, early, taken, lost, task = asyncio.run(scenario())
    assert kept == [] and early == []
    assert sorted(len(each) for each in taken) == [0, 1]
    assert lost == ["task-0001"]
    assert task.status == TaskStatus.RUNNING and task.claimed_by in ("two", "three")


def test_the_gateway_answers_503_while_postgresql_is_down_and_no_task_stays_running(tmp_path, own_postgres):
    stack = start_stack(
        tmp_path,
        TASKGATE_DATABASE_URL=own_postgres.create_database(),
        TASKGATE_SIM_STEP_SECONDS="0.3",
        TASKGATE_LEASE_SECONDS="2",
    )
    try:
        headers = {"X-API-Key": create_api_key(stack.env, "outage@example.com")}
        task_id = httpx.post(stack.url + "/api/v1/tasks", headers=headers, json={"query": "hi"}).json()[
            "task_id"
        ]
        wait_until(
            lambda: (
                httpx.get(f"{stack.url}/api/v1/tasks/{task_id}", headers=headers).json()["status"]
                == "RUNNING"
            ),
            what="the task to start",
        )
        # The gateway trusts a validated key for a few seconds, so the next calls reach the store.
        own_postgres.halt()
        down = httpx.get(f"{stack.url}/api/v1/tasks/{task_id}", headers=headers, timeout=30)
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "unavailable"
        assert "Retry-After" in down.headers

        own_postgres.start()
        # The task could not record its events meanwhile: once its lease expires it is recovered.
        task = wait_until(
            lambda: (
                (r := httpx.get(f"{stack.url}/api/v1/tasks/{task_id}", headers=headers)).status_code == 200
                and r.json()["status"] not in ("QUEUED", "RUNNING")
                and r.json()
            ),
            what="the orchestrator to reach PostgreSQL again and end the task",
        )
        assert task["status"] in ("COMPLETED", "FAILED")
        if task["status"] == "FAILED":
            assert task["error"]
    finally:
        stack.stop()


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("TASKGATE_DATABASE_URL", "postgresql://taskgate:s3cret-pw@127.0.0.1:{port}/taskgate"),
        ("TASKGATE_REDIS_URL", "redis://:s3cret-pw@127.0.0.1:{port}/0"),
    ],
)
def test_an_orchestrator_that_cannot_reach_its_servers_says_so_in_one_line(tmp_path, variable, url):
    env = base_env(tmp_path, **{variable: url.format(port=free_port())})

    result = subprocess.run(
        taskgate_command("orchestrator"), env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
