"""Fixtures that start the real orchestrator and gateway processes."""

import dataclasses

import httpx
import pytest

from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until
from tests.integration.replicas import Replicas
from tests.integration.replicas import start_replicas
from tests.integration.servers import ServerUnavailableError
from tests.integration.servers import start_postgres
from tests.integration.servers import start_redis

TERMINAL_STATUSES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


@dataclasses.dataclass
class User:
    """A user of the running stack, with an HTTP client that sends its API key."""

    email: str
    api_key: str
    client: httpx.Client

    @property
    def headers(self) -> dict:
        """Headers that authenticate this user."""
        return {"X-API-Key": self.api_key}

    def submit(self, query: str = "What is 2+2?", **fields) -> dict:
        """Submit a task and return the response body."""
        response = self.client.post("/api/v1/tasks", json={"query": query, **fields})
        assert response.status_code == 200, response.text
        return response.json()

    def wait_finished(self, task_id: str, timeout: float = 30.0) -> dict:
        """Poll the task until it reaches a terminal status and return it."""

        def finished():
            task = self.client.get(f"/api/v1/tasks/{task_id}").json()
            return task if task["status"] in TERMINAL_STATUSES else None

        return wait_until(finished, timeout=timeout, what=f"task {task_id} to finish")

    def events(self, task_id: str) -> list[dict]:
        """Return every stored event of the task."""
        response = self.client.get(f"/api/v1/tasks/{task_id}/events", params={"limit": 200})
        assert response.status_code == 200, response.text
        return response.json()["events"]


@pytest.fixture(scope="session")
def redis_server():
    """A throwaway redis-server for the whole session (skips when redis-server is missing)."""
    try:
        server = start_redis()
    except ServerUnavailableError as ex:
        pytest.skip(str(ex))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster for the whole session (skips when PostgreSQL is missing)."""
    try:
        server = start_postgres()
    except ServerUnavailableError as ex:
        pytest.skip(str(ex))
    yield server
    server.stop()


@pytest.fixture()
def replicas_of(tmp_path, postgres_server, redis_server):
    """Start two replicas (``r1``, ``r2``) with the given settings per replica; stop them after the test."""
    started = []

    def start(**per_replica: dict) -> Replicas:
        replicas = start_replicas(
            tmp_path, postgres_server.create_database(), redis_server.url, **per_replica
        )
        started.append(replicas)
        return replicas

    yield start
    for replicas in started:
        replicas.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    """One orchestrator and one gateway shared by the tests that only add data, once per store.

    ``sqlite``: the embedded default (SQLite file, in-process event bus). ``postgres``: a fresh
    database on the session's PostgreSQL and the Redis Streams event bus, as replicas run.
    """
    overrides = {}
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres_server")
        redis = request.getfixturevalue("redis_server")
        overrides = {"TASKGATE_DATABASE_URL": postgres.create_database(), "TASKGATE_REDIS_URL": redis.url}
    running = start_stack(tmp_path_factory.mktemp(f"stack-{request.param}"), **overrides)
    yield running
    running.stop()


def _user(stack, email: str) -> User:
    key = create_api_key(stack.env, email)
    client = httpx.Client(base_url=stack.url, headers={"X-API-Key": key}, timeout=30)
    return User(email=email, api_key=key, client=client)


@pytest.fixture(scope="session")
def alice(stack) -> User:
    """A user who owns tasks."""
    user = _user(stack, "alice@example.com")
    yield user
    user.client.close()


@pytest.fixture(scope="session")
def bob(stack) -> User:
    """Another user, who must never see alice's tasks."""
    user = _user(stack, "bob@example.com")
    yield user
    user.client.close()


@pytest.fixture(scope="session")
def finished_task(alice) -> dict:
    """A task of alice's that has run to completion."""
    task = alice.submit("What is 2+2?")
    return alice.wait_finished(task["task_id"])
