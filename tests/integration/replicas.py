"""Several orchestrator replicas on one PostgreSQL database and one Redis, and a gateway on the first.

``TASKGATE_WORKER_CONCURRENCY=0`` makes a replica serve the API and streams without running tasks,
which decides where a task runs. Used by the replica tests, the durable execution tests and the
crash drill (``bench/crash_drill.py``).
"""

import contextlib
import dataclasses
import pathlib

import httpx
import psycopg

from tests.integration.processes import REPO
from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import free_port

REPLICA_NAMES = ("r1", "r2")


@dataclasses.dataclass
class Replicas:
    """Orchestrators on one database, a gateway in front of the first, and a user's API key."""

    database_url: str
    orchestrators: dict[str, Orchestrator]
    gateway: Gateway
    api_key: str
    # The environment every process shares, and the checkout whose code runs: for a late replica.
    env: dict = dataclasses.field(default_factory=dict)
    cwd: pathlib.Path = REPO

    @property
    def headers(self) -> dict:
        """Headers that authenticate the test user at the gateway."""
        return {"X-API-Key": self.api_key}

    def task(self, task_id: str) -> dict:
        """Return a task as the gateway shows it."""
        response = httpx.get(f"{self.gateway.url}/api/v1/tasks/{task_id}", headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def events(self, task_id: str) -> list[dict]:
        """Return every stored event of a task as the gateway shows them, in seq order."""
        response = httpx.get(
            f"{self.gateway.url}/api/v1/tasks/{task_id}/events",
            headers=self.headers,
            params={"limit": 200},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["events"]

    def claimed_by(self, task_id: str) -> str:
        """Return the worker that claimed a task last (the column the API does not show)."""
        with psycopg.connect(self.database_url) as connection:
            row = connection.execute("SELECT claimed_by FROM tasks WHERE task_id = %s", (task_id,)).fetchone()
        return row[0] or ""

    def start_replica(self, name: str, **settings: str) -> Orchestrator:
        """Start one more replica, ``name``, on the same database and Redis, with its own settings."""
        orchestrator = _start_orchestrator(self.env, name, self.gateway.log_path.parent, self.cwd, settings)
        self.orchestrators[name] = orchestrator
        return orchestrator

    def stop(self) -> None:
        """Stop the gateway, then every orchestrator."""
        with contextlib.suppress(Exception):
            self.gateway.stop()
        for orchestrator in self.orchestrators.values():
            with contextlib.suppress(Exception):
                orchestrator.stop()


def start_replicas(
    tmp: pathlib.Path,
    database_url: str,
    redis_url: str,
    *,
    names: tuple[str, ...] = REPLICA_NAMES,
    shared: dict | None = None,
    cwd: pathlib.Path = REPO,
    **per_replica: dict,
) -> Replicas:
    """Start one orchestrator per name and a gateway on the first, running the code of ``cwd``.

    Every process gets ``shared`` on top of the throwaway environment; each replica also gets its
    own settings from ``per_replica`` (by name) and ``TASKGATE_REPLICA_ID`` set to its name.
    """
    env = base_env(tmp, TASKGATE_DATABASE_URL=database_url, TASKGATE_REDIS_URL=redis_url, **(shared or {}))
    orchestrators = {}
    try:
        for name in names:
            orchestrators[name] = _start_orchestrator(env, name, tmp, cwd, per_replica.get(name, {}))
        first = orchestrators[names[0]]
        gateway_env = {
            **env,
            "TASKGATE_ORCHESTRATOR_ADDR": first.grpc_addr,
            "TASKGATE_ADMIN_URL": first.admin_url,
        }
        gateway = Gateway(
            env=gateway_env,
            url="http://" + gateway_env["TASKGATE_GATEWAY_BIND"],
            log_path=tmp / "gateway.log",
            cwd=cwd,
        ).start()
    except BaseException:
        for orchestrator in orchestrators.values():
            orchestrator.stop()
        raise
    api_key = create_api_key(env, "replicas@example.com", cwd=cwd)
    return Replicas(database_url, orchestrators, gateway, api_key, env, cwd)


def _start_orchestrator(
    env: dict, name: str, tmp: pathlib.Path, cwd: pathlib.Path, settings: dict
) -> Orchestrator:
    """Start the replica ``name`` on free ports with the shared environment and its own settings."""
    grpc_port, admin_port = free_port(), free_port()
    replica_env = {
        **env,
        "TASKGATE_REPLICA_ID": name,
        "TASKGATE_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
        "TASKGATE_ADMIN_ADDR": f"127.0.0.1:{admin_port}",
        **settings,
    }
    return Orchestrator(
        env=replica_env,
        grpc_addr=replica_env["TASKGATE_GRPC_ADDR"],
        admin_url=f"http://{replica_env['TASKGATE_ADMIN_ADDR']}",
        log_path=tmp / f"orchestrator-{name}.log",
        cwd=cwd,
    ).start()
