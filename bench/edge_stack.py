"""The pieces the edge benchmarks share: a throwaway orchestrator with gateways in front, and load.

``edge_stack`` starts a redis-server, one orchestrator on a SQLite file and one gateway per named
configuration (the environment each sets over the orchestrator's, with ``REDIS`` standing for the
redis-server's URL), limits far above what a run reaches; ``finished_task_path`` submits a task and
waits until it has finished, for the benches that read it. ``load_with_wrk`` (else
``load_with_threads``) loads one URL for a while and returns the ``Run``.
"""

import contextlib
import dataclasses
import json
import pathlib
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from collections.abc import Mapping

import httpx

from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import free_port
from tests.integration.processes import wait_until
from tests.integration.servers import RedisServer
from tests.integration.servers import start_redis

ROOMY_LIMIT = 10_000_000
ROOMY_TIERS = json.dumps({"default": {"minute": ROOMY_LIMIT, "hour": ROOMY_LIMIT}})
# In a configuration's environment, stands for the redis-server's URL.
REDIS = "redis"


@dataclasses.dataclass(frozen=True)
class EdgeStack:
    """What ``edge_stack`` started: the redis-server, the orchestrator and its environment, the gateways."""

    redis_server: RedisServer
    env: dict
    orchestrator: Orchestrator
    gateways: dict[str, Gateway]


@contextlib.contextmanager
def edge_stack(
    work: pathlib.Path, configurations: Mapping[str, Mapping[str, str]], **env: str
) -> Iterator[EdgeStack]:
    """Start Redis, an orchestrator and a gateway per configuration; stop them all afterwards."""
    with contextlib.ExitStack() as cleanup:
        redis_server = start_redis()
        cleanup.callback(redis_server.stop)
        orchestrator_env = base_env(
            work, TASKGATE_LOG_LEVEL="WARNING", TASKGATE_RATE_LIMIT_TIERS=ROOMY_TIERS, **env
        )
        orchestrator = Orchestrator(
            env=orchestrator_env,
            grpc_addr=orchestrator_env["TASKGATE_GRPC_ADDR"],
            admin_url=orchestrator_env["TASKGATE_ADMIN_URL"],
            log_path=work / "orchestrator.log",
        )
        orchestrator.start()
        cleanup.callback(orchestrator.stop)
        gateways = {}
        for number, (name, overrides) in enumerate(configurations.items()):
            bind = f"127.0.0.1:{free_port()}"
            settings = {
                key: redis_server.url if value == REDIS else value for key, value in overrides.items()
            }
            gateway_env = {**orchestrator_env, "TASKGATE_GATEWAY_BIND": bind, **settings}
            gateway = Gateway(env=gateway_env, url=f"http://{bind}", log_path=work / f"gateway-{number}.log")
            gateway.start()
            cleanup.callback(gateway.stop)
            gateways[name] = gateway
        yield EdgeStack(redis_server, orchestrator_env, orchestrator, gateways)


def finished_task_path(gateway_url: str, key: str) -> str:
    """Submit a task through a gateway, wait until it has completed, and return its path."""
    headers = {"X-API-Key": key}
    task_id = httpx.post(
        gateway_url + "/api/v1/tasks", json={"query": "What is 2+2?"}, headers=headers, timeout=30
    ).json()["task_id"]
    wait_until(
        lambda: (
            httpx.get(f"{gateway_url}/api/v1/tasks/{task_id}", headers=headers).json()["status"]
            == "COMPLETED"
        ),
        what="the benchmark task to finish",
    )
    return f"/api/v1/tasks/{task_id}"


@dataclasses.dataclass
class Run:
    """One load run against one gateway."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    gateway_cpu_us: float = 0.0
    orchestrator_cpu_us: float = 0.0
    redis_cpu_us: float = 0.0

    @property
    def rate(self) -> float:
        """Requests a second."""
        return self.requests / self.seconds


def load_with_wrk(url: str, key: str, seconds: float, connections: int) -> Run:
    """Load one URL with wrk and parse its summary."""
    output = subprocess.run(
        [
            "wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency",
            "-H", f"X-API-Key: {key}", url,
        ],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout  # fmt: skip
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return Run(
        requests=requests,
        seconds=seconds,
        errors=(int(errors.group(1)) if errors else 0) + (1 if socket_errors else 0),
        p50_ms=_wrk_latency(output, "50%"),
        p99_ms=_wrk_latency(output, "99%"),
    )


def _wrk_latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{percentile}\s+([0-9.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def load_with_threads(url: str, key: str, seconds: float, connections: int) -> Run:
    """Load one URL from client threads (when wrk is not installed); slower, but side by side."""
    counts = [0] * connections
    errors = [0] * connections
    deadline = time.monotonic() + seconds

    def work(index: int) -> None:
        with httpx.Client(headers={"X-API-Key": key}, timeout=30) as client:
            while time.monotonic() < deadline:
                if client.get(url).status_code != 200:
                    errors[index] += 1
                counts[index] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Run(requests=sum(counts), seconds=seconds, errors=sum(errors), p50_ms=None, p99_ms=None)
