"""Idempotency-Key through real gateway processes in front of a real orchestrator.

Most tests go through two single-worker gateways sharing a real Redis; concurrent repeats also go
through the embedded default as ``make run`` starts it (``taskgate gateway`` without Redis and
with its default worker settings: one gevent worker keeping the records).
"""

import concurrent.futures
import os
import pathlib
import signal
import threading
import uuid

import httpx
import pytest
import redis

from tests.integration.gateway_workers import worker_pids
from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import free_port
from tests.integration.processes import wait_until

CONCURRENT_REPEATS = 20


class Deployment:
    """One orchestrator (which a test may stop and start) and two single-worker gateways."""

    def __init__(self, tmp, redis_url: str) -> None:
        # One worker per gateway and a long key cache: a key validated once stays valid in the
        # worker while the orchestrator is stopped, so the 503 comes from the route, not from auth.
        self.env = base_env(
            tmp,
            TASKGATE_REDIS_URL=redis_url,
            TASKGATE_GATEWAY_WORKERS="1",
            TASKGATE_API_KEY_CACHE_SECONDS="600",
        )
        self.orchestrator = Orchestrator(
            env=self.env,
            grpc_addr=self.env["TASKGATE_GRPC_ADDR"],
            admin_url=self.env["TASKGATE_ADMIN_URL"],
            log_path=tmp / "orchestrator.log",
        ).start()
        self.gateways = []
        for n in range(2):
            bind = f"127.0.0.1:{free_port()}"
            env = {**self.env, "TASKGATE_GATEWAY_BIND": bind}
            self.gateways.append(
                Gateway(env=env, url=f"http://{bind}", log_path=tmp / f"gateway-{n}.log").start()
            )

    def start_gateway(self, tmp: pathlib.Path, **overrides: str) -> Gateway:
        """Start one more gateway with these settings on top of the shared ones."""
        bind = f"127.0.0.1:{free_port()}"
        env = {**self.env, "TASKGATE_GATEWAY_BIND": bind, **overrides}
        gateway = Gateway(
            env=env, url=f"http://{bind}", log_path=tmp / f"gateway-{len(self.gateways)}.log"
        ).start()
        self.gateways.append(gateway)
        return gateway

    def client(self, api_key: str, gateway: int = 0) -> httpx.Client:
        return httpx.Client(base_url=self.gateways[gateway].url, headers={"X-API-Key": api_key}, timeout=30)

    def stop(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(len(self.gateways) or 1) as pool:
            list(pool.map(lambda gateway: gateway.stop(), self.gateways))
        self.orchestrator.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, redis_server):
    running = Deployment(tmp_path_factory.mktemp("idempotency"), redis_server.url)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def alice_key(deployment) -> str:
    return create_api_key(deployment.env, "idem-alice@example.com")


@pytest.fixture(scope="module")
def bob_key(deployment) -> str:
    return create_api_key(deployment.env, "idem-bob@example.com")


@pytest.fixture
def alice(deployment, alice_key):
    with deployment.client(alice_key) as client:
        yield client


@pytest.fixture(scope="module", params=["redis", "embedded"])
def submit_urls(request, deployment, tmp_path_factory) -> tuple[str, ...]:
    """The gateways concurrent repeats are spread over, in each shape records are kept in.

    ``redis``: the deployment's two gateways sharing Redis. ``embedded``: one gateway without
    Redis and with the default worker settings, started as ``make run`` starts it.
    """
    if request.param == "redis":
        return tuple(gateway.url for gateway in deployment.gateways[:2])
    embedded = deployment.start_gateway(
        tmp_path_factory.mktemp("embedded"), TASKGATE_REDIS_URL="", TASKGATE_GATEWAY_WORKERS=""
    )
    assert len(worker_pids(embedded.process.pid)) == 1
    return (embedded.url,)


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


def tasks_with_query(client: httpx.Client, query: str) -> list[dict]:
    listed = client.get("/api/v1/tasks", params={"limit": 100}).json()["tasks"]
    return [task for task in listed if task["query"] == query]


def test_concurrent_repeats_through_every_gateway_create_one_task(deployment, alice_key, submit_urls) -> None:
    key, query = new_key(), f"concurrent {uuid.uuid4()}"
    barrier = threading.Barrier(CONCURRENT_REPEATS)

    def submit(n: int) -> httpx.Response:
        url = submit_urls[n % len(submit_urls)]
        with httpx.Client(base_url=url, headers={"X-API-Key": alice_key}, timeout=30) as client:
            barrier.wait()
            return client.post("/api/v1/tasks", json={"query": query}, headers={"Idempotency-Key": key})

    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_REPEATS) as pool:
        responses = list(pool.map(submit, range(CONCURRENT_REPEATS)))
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 409}, statuses
    assert statuses.count(200) >= 1
    for conflict in (response for response in responses if response.status_code == 409):
        assert conflict.json()["code"] == "idempotency_key_in_flight"
        assert conflict.headers["Retry-After"] == "1"
    assert len({response.json()["task_id"] for response in responses if response.status_code == 200}) == 1
    fresh = [
        response
        for response in responses
        if response.status_code == 200 and "Idempotent-Replayed" not in response.headers
    ]
    assert len(fresh) == 1
    with httpx.Client(base_url=submit_urls[-1], headers={"X-API-Key": alice_key}, timeout=30) as client:
        assert len(tasks_with_query(client, query)) == 1
        # Once the first has finished, a repeat is a replay of it.
        again = client.post("/api/v1/tasks", json={"query": query}, headers={"Idempotency-Key": key})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == fresh[0].content


def test_a_replay_repeats_status_body_and_headers(deployment, alice_key) -> None:
    key = new_key()
    body = {"query": "stream me", "context": {"b": 2, "a": 1}}
    with (
        deployment.client(alice_key, gateway=0) as first_client,
        deployment.client(alice_key, gateway=1) as other,
    ):
        first = first_client.post("/api/v1/tasks/stream", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201
        repeat = other.post(
            "/api/v1/tasks/stream",
            content=b'{"context": {"a": 1, "b": 2},\n  "query": "stream me"}',
            headers={"Idempotency-Key": key, "Content-Type": "application/json"},
        )
    assert repeat.status_code == 201
    assert repeat.content == first.content
    for name in ("Content-Type", "Link", "X-Workflow-ID", "X-Session-ID"):
        assert repeat.headers[name] == first.headers[name], name
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert repeat.headers["X-Idempotency-Cached"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert repeat.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert "X-RateLimit-Remaining-Minute" in repeat.headers


def test_the_same_key_with_another_body_is_422(alice) -> None:
    key = new_key()
    assert (
        alice.post("/api/v1/tasks", json={"query": "one"}, headers={"Idempotency-Key": key}).status_code
        == 200
    )
    response = alice.post("/api/v1/tasks", json={"query": "two"}, headers={"Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_mismatch"
    assert tasks_with_query(alice, "two") == []


def test_a_state_conflict_is_replayed(alice) -> None:
    task_id = alice.post("/api/v1/tasks", json={"query": "resume me"}).json()["task_id"]
    key = new_key()
    conflict = alice.post(f"/api/v1/tasks/{task_id}/resume", headers={"Idempotency-Key": key})
    assert conflict.status_code == 409
    again = alice.post(f"/api/v1/tasks/{task_id}/resume", headers={"Idempotency-Key": key})
    assert (again.status_code, again.content) == (409, conflict.content)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_server_errors_are_not_stored(deployment, alice) -> None:
    key, query = new_key(), f"after the outage {uuid.uuid4()}"
    assert alice.get("/api/v1/tasks").status_code == 200  # the key is now cached by the worker
    deployment.orchestrator.stop()
    try:
        failed = alice.post("/api/v1/tasks", json={"query": query}, headers={"Idempotency-Key": key})
        assert failed.status_code == 503
        assert failed.json()["code"] == "unavailable"
    finally:
        deployment.orchestrator.start()

    def submitted() -> httpx.Response | None:
        response = alice.post("/api/v1/tasks", json={"query": query}, headers={"Idempotency-Key": key})
        return response if response.status_code == 200 else None

    response = wait_until(submitted, timeout=20, interval=0.2, what="the orchestrator to take tasks again")
    assert "Idempotent-Replayed" not in response.headers
    assert len(tasks_with_query(alice, query)) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9".encode(), b"tab\there"])
def test_a_malformed_key_is_400(alice, key) -> None:
    response = alice.post("/api/v1/tasks", json={"query": "bad key"}, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.json()["details"] == [
        {"field": "Idempotency-Key", "message": "must be 1 to 255 printable ASCII characters"}
    ]


def test_keys_are_scoped_to_the_caller(deployment, alice, bob_key) -> None:
    key = new_key()
    mine = alice.post("/api/v1/tasks", json={"query": "shared key"}, headers={"Idempotency-Key": key})
    with deployment.client(bob_key) as bob:
        theirs = bob.post("/api/v1/tasks", json={"query": "shared key"}, headers={"Idempotency-Key": key})
        assert theirs.status_code == 200
        assert "Idempotent-Replayed" not in theirs.headers
        assert theirs.json()["task_id"] != mine.json()["task_id"]
        assert len(tasks_with_query(bob, "shared key")) == 1


def test_keys_are_scoped_to_the_route_and_its_parameters(alice) -> None:
    key = new_key()
    first = alice.post("/api/v1/tasks", json={}, headers={"Idempotency-Key": key})
    assert first.status_code == 400
    tasks = [alice.post("/api/v1/tasks", json={"query": f"cancel {n}"}).json()["task_id"] for n in range(2)]
    cancels = [
        alice.post(f"/api/v1/tasks/{task_id}/cancel", json={}, headers={"Idempotency-Key": key})
        for task_id in tasks
    ]
    assert [response.status_code for response in cancels] == [202, 202]
    assert all("Idempotent-Replayed" not in response.headers for response in cancels)
    for task_id in tasks:
        assert alice.get(f"/api/v1/tasks/{task_id}/control-state").json()["is_cancelled"] is True


def test_a_patch_is_replayed(alice) -> None:
    session_id = alice.post("/api/v1/tasks", json={"query": "title me"}).json()["session_id"]
    key = new_key()
    renamed = alice.patch(
        f"/api/v1/sessions/{session_id}", json={"title": "First"}, headers={"Idempotency-Key": key}
    )
    assert renamed.json()["title"] == "First"
    alice.patch(f"/api/v1/sessions/{session_id}", json={"title": "Second"})
    again = alice.patch(
        f"/api/v1/sessions/{session_id}", json={"title": "First"}, headers={"Idempotency-Key": key}
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert alice.get(f"/api/v1/sessions/{session_id}").json()["title"] == "Second"


def child_pids(pid: int) -> list[int]:
    return [int(child) for child in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_key_held_by_a_worker_that_died_is_free_once_its_lease_ends(
    deployment, alice_key, redis_server, tmp_path
) -> None:
    # A 2 s upstream deadline makes the lease 2 × 2 + 5 = 9 s.
    gateway = deployment.start_gateway(tmp_path, TASKGATE_UPSTREAM_TIMEOUT_SECONDS="2")
    key, query = new_key(), f"orphaned {uuid.uuid4()}"
    plain = redis.Redis.from_url(redis_server.url)
    with httpx.Client(base_url=gateway.url, headers={"X-API-Key": alice_key}, timeout=30) as client:
        assert client.get("/api/v1/tasks").status_code == 200  # the worker has the key cached
        orchestrator_pid = deployment.orchestrator.process.pid
        os.kill(orchestrator_pid, signal.SIGSTOP)
        try:
            hanging = threading.Thread(
                target=lambda: _ignore_errors(
                    lambda: client.post(
                        "/api/v1/tasks", json={"query": query}, headers={"Idempotency-Key": key}
                    )
                )
            )
            hanging.start()
            wait_until(lambda: _in_flight_records(plain), timeout=2, interval=0.02, what="the claim")
            for worker in child_pids(gateway.process.pid):
                os.kill(worker, signal.SIGKILL)
            hanging.join()
        finally:
            os.kill(orchestrator_pid, signal.SIGCONT)
        held = wait_until(
            lambda: _ignore_errors(
                lambda: client.post("/api/v1/tasks", json={"query": query}, headers={"Idempotency-Key": key})
            ),
            timeout=10,
            what="the respawned worker",
        )
        assert held.status_code == 409
        assert held.json()["code"] == "idempotency_key_in_flight"

        def runs_again() -> httpx.Response | None:
            response = client.post("/api/v1/tasks", json={"query": query}, headers={"Idempotency-Key": key})
            return response if response.status_code == 200 else None

        response = wait_until(runs_again, timeout=15, interval=0.5, what="the lease to end")
    assert "Idempotent-Replayed" not in response.headers
    plain.close()


def _in_flight_records(client: redis.Redis) -> bool:
    return any((client.get(key) or b"").startswith(b"P") for key in client.scan_iter("tg:*:idem:*"))


def _ignore_errors(call):
    try:
        return call()
    except httpx.HTTPError:
        return None
