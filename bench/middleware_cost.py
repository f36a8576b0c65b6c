"""What the edge's checks cost a request: the same authenticated read with each check on and off.

Starts its own throwaway processes on 127.0.0.1 (as the integration tests do): a redis-server, an
orchestrator on a SQLite file, and one gateway (2 gevent workers) per configuration. The
configurations are rows of ``CONFIGURATIONS``: a name, the gateway settings that differ, and the
API key the load uses, so a new check is one more row. Today's rows: the per-user windows counted
in Redis (the production setup), in process (``make run``'s), in Redis with a key whose own lower
limit adds two more windows (a sub-limit), in Redis with a scoped key (``tasks:read``: the scope
checks of the gateway and of the orchestrator's interceptor walk their tables, where a key without
scopes is answered at once), and the limiter switched off (``TASKGATE_RATE_LIMIT_DISABLED=1``,
allowed in dev/test only), the baseline. The orchestrator is shared by every row; its CPU per
request is read beside the gateway's. Each serves ``GET
/api/v1/tasks/{id}`` of one finished task with an API key; limits are set far above what the run
reaches, so every request is counted and none is refused. ``wrk`` (else client threads with
httpx) loads each gateway in turn for ``--seconds``, for ``--rounds`` rounds, alternating, so
drift on the machine hits every configuration alike. It also counts the Redis commands clients
sent per request (MONITOR for a sequential sample, INFO commandstats for the wrk runs) and the CPU
time the gateway's processes and redis-server used per request (from /proc), which other load on
the machine does not distort the way it does throughput.

The token and cost budgets are checked when a task is submitted, not on reads, so they have a
table of their own: two orchestrators (and a gateway each, limits in Redis) that differ only in
their tier having budgets (far above what the run uses) or none; ``--submits`` tasks are submitted
to each in turn from 8 client threads and run to the end, and the CPU the orchestrator and gateway
used per task (submission, the budget check, running it, recording its usage) is compared.

    .venv/bin/python -m bench.middleware_cost --seconds 10 --rounds 3 --submits 300

Bounded: at most 60 s a run and 5 rounds; it stops by itself and removes everything it started.
"""

import argparse
import contextlib
import dataclasses
import json
import pathlib
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping

import httpx
import redis

from bench.edge_stack import REDIS
from bench.edge_stack import ROOMY_LIMIT
from bench.edge_stack import ROOMY_TIERS
from bench.edge_stack import Run
from bench.edge_stack import edge_stack
from bench.edge_stack import finished_task_path
from bench.edge_stack import load_with_threads
from bench.edge_stack import load_with_wrk
from bench.proc_readings import cpu_seconds
from bench.proc_readings import process_tree
from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import taskgate_command
from tests.integration.processes import wait_until
from tests.integration.redis_monitor import client_commands
from tests.integration.servers import start_redis

MAX_SECONDS = 60.0
MAX_ROUNDS = 5
SAMPLE_REQUESTS = 200
# A key's own limits, below the user's (so they add windows) and still never reached.
SUB_LIMITS = {"rate_limit_per_minute": ROOMY_LIMIT - 1, "rate_limit_per_hour": ROOMY_LIMIT - 1}
PLAIN_KEY = "plain"
SUB_LIMITED_KEY = "sub-limited"
SCOPED_KEY = "scoped"
# Budgets far above what a run uses: every submission is checked and admitted.
BUDGET_TIERS = json.dumps(
    {
        "default": {
            "minute": ROOMY_LIMIT,
            "hour": ROOMY_LIMIT,
            "tokens_per_minute": 10**9,
            "usd_per_day": 10**6,
        }
    }
)
SUBMIT_THREADS = 8


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One row: a gateway whose settings differ from the others' by ``env``, loaded with one key."""

    name: str
    env: Mapping[str, str]
    key: str = PLAIN_KEY


BASELINE = "limiter off"
CONFIGURATIONS = (
    Configuration("per-user windows, Redis", {}),
    Configuration("per-user windows + key sub-limit, Redis", {}, key=SUB_LIMITED_KEY),
    Configuration("per-user windows + scoped key (tasks:read), Redis", {}, key=SCOPED_KEY),
    Configuration("per-user windows, in-process", {"TASKGATE_REDIS_URL": ""}),
    Configuration(BASELINE, {"TASKGATE_RATE_LIMIT_DISABLED": "1"}),
)
_SCRIPT_COMMANDS = ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_script|load")


def script_calls(client: redis.Redis) -> int:
    """Return how many script calls Redis has answered since its stats were reset."""
    stats = client.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in _SCRIPT_COMMANDS)


@contextlib.contextmanager
def running_gateways(work: pathlib.Path):
    """Start Redis, an orchestrator and a gateway per configuration; yield them, a task's path, the keys."""
    configurations = {
        configuration.name: {"TASKGATE_REDIS_URL": REDIS, **configuration.env}
        for configuration in CONFIGURATIONS
    }
    with edge_stack(work, configurations) as stack:
        first = next(iter(stack.gateways.values()))
        keys = user_keys(stack.env, first.url)
        path = finished_task_path(first.url, keys[PLAIN_KEY])
        yield stack.gateways, path, keys, stack.redis_server, stack.orchestrator


def user_keys(env: dict, gateway_url: str) -> dict[str, str]:
    """Create a user with a plain key, a key with its own limits and a scoped key; return them by name."""
    email = "bench@example.com"
    plain = create_api_key(env, email)
    subprocess.run(
        taskgate_command("users", "set-role", "--email", email, "--role", "owner"),
        env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    with httpx.Client(base_url=gateway_url, headers={"X-API-Key": plain}, timeout=30) as client:
        created = client.post("/api/v1/auth/api-keys", json={"name": "sub-limited"}).json()
        client.patch(f"/api/v1/auth/api-keys/{created['id']}", json=SUB_LIMITS).raise_for_status()
        scoped = client.post(
            "/api/v1/auth/api-keys", json={"name": "scoped", "scopes": ["tasks:read"]}
        ).json()
    return {PLAIN_KEY: plain, SUB_LIMITED_KEY: created["api_key"], SCOPED_KEY: scoped["api_key"]}


def sample_round_trips(url: str, key: str, redis_url: str) -> tuple[float, int]:
    """Return the Redis commands sent per request (MONITOR, sequential) and the windows it counted in.

    The windows are read from a response's ``RateLimit-Policy``; 0 when the limiter is off.
    """
    with httpx.Client(headers={"X-API-Key": key}, timeout=30) as client:
        policy = client.get(url).headers.get("RateLimit-Policy")
        with client_commands(redis_url) as counts:
            for _ in range(SAMPLE_REQUESTS):
                client.get(url)
    return sum(counts.values()) / SAMPLE_REQUESTS, len(policy.split(",")) if policy else 0


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per configuration, alternating")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--submits", type=int, default=300, help="tasks per budget run (0: skip that table)")
    args = parser.parse_args(argv)
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    load = load_with_wrk if shutil.which("wrk") else load_with_threads
    tool = "wrk" if load is load_with_wrk else "httpx threads"

    with (
        tempfile.TemporaryDirectory(prefix="taskgate-bench-") as work,
        running_gateways(pathlib.Path(work)) as (gateways, path, keys, redis_server, orchestrator),
    ):
        orchestrator_pids = process_tree(orchestrator.process.pid)
        redis_url, redis_pid = redis_server.url, redis_server.process.pid
        stats_client = redis.Redis.from_url(redis_url)
        key_of = {configuration.name: keys[configuration.key] for configuration in CONFIGURATIONS}
        round_trips = {
            name: sample_round_trips(gateway.url + path, key_of[name], redis_url)
            for name, gateway in gateways.items()
        }
        for name, gateway in gateways.items():
            load(gateway.url + path, key_of[name], 2.0, args.connections)  # warm-up
        runs: dict[str, list[Run]] = {name: [] for name in gateways}
        scripts_per_request: dict[str, list[float]] = {name: [] for name in gateways}
        for _ in range(rounds):
            for name, gateway in gateways.items():
                stats_client.config_resetstat()
                gateway_pids = process_tree(gateway.process.pid)
                gateway_cpu, redis_cpu = cpu_seconds(gateway_pids), cpu_seconds([redis_pid])
                orchestrator_cpu = cpu_seconds(orchestrator_pids)
                run = load(gateway.url + path, key_of[name], seconds, args.connections)
                requests = max(run.requests, 1)
                run.gateway_cpu_us = (cpu_seconds(gateway_pids) - gateway_cpu) / requests * 1e6
                run.orchestrator_cpu_us = (cpu_seconds(orchestrator_pids) - orchestrator_cpu) / requests * 1e6
                run.redis_cpu_us = (cpu_seconds([redis_pid]) - redis_cpu) / requests * 1e6
                scripts_per_request[name].append(script_calls(stats_client) / requests)
                runs[name].append(run)
        stats_client.close()

    baseline_rate = statistics.median(run.rate for run in runs[BASELINE])
    baseline_cpu = statistics.median(run.gateway_cpu_us for run in runs[BASELINE])
    baseline_orchestrator = statistics.median(run.orchestrator_cpu_us for run in runs[BASELINE])
    print(f"{tool}, {args.connections} connections, {rounds} × {seconds:g} s per configuration, GET {path}")
    print()
    print(
        "| configuration | windows | req/s (median) | runs | vs off | p50 ms | p99 ms | gateway CPU µs/req "
        "| vs off µs/req | orchestrator CPU µs/req | vs off µs/req | Redis CPU µs/req "
        "| Redis commands/req | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, name_runs in runs.items():
        rates = [run.rate for run in name_runs]
        median = statistics.median(rates)
        p50 = _median_or_dash([run.p50_ms for run in name_runs])
        p99 = _median_or_dash([run.p99_ms for run in name_runs])
        sampled, windows = round_trips[name]
        per_request = f"{sampled:.2f} (load: {statistics.median(scripts_per_request[name]):.2f})"
        errors = sum(run.errors for run in name_runs)
        gateway_cpu = statistics.median(run.gateway_cpu_us for run in name_runs)
        redis_cpu = statistics.median(run.redis_cpu_us for run in name_runs)
        orchestrator_cpu = statistics.median(run.orchestrator_cpu_us for run in name_runs)
        print(
            f"| {name} | {windows} | {median:,.0f} | {' / '.join(f'{rate:,.0f}' for rate in rates)} | "
            f"{median / baseline_rate:.2f} | {p50} | {p99} | {gateway_cpu:.0f} | "
            f"{gateway_cpu - baseline_cpu:+.0f} | {orchestrator_cpu:.0f} | "
            f"{orchestrator_cpu - baseline_orchestrator:+.0f} | {redis_cpu:.0f} | {per_request} | {errors} |"
        )
    if args.submits > 0:
        print()
        print_budget_table(args.submits, rounds)
    return 0


@dataclasses.dataclass(frozen=True)
class SubmitStack:
    """An orchestrator and its gateway, and the key and store the budget runs use."""

    orchestrator: Orchestrator
    gateway: Gateway
    key: str
    database: pathlib.Path


@contextlib.contextmanager
def budget_stacks(work: pathlib.Path):
    """Start Redis and two stacks, one whose tier has token and cost budgets; yield them by name."""
    with contextlib.ExitStack() as cleanup:
        redis_server = start_redis()
        cleanup.callback(redis_server.stop)
        stacks = {}
        for name, tiers in (("budgets on", BUDGET_TIERS), ("budgets off", ROOMY_TIERS)):
            home = work / name.replace(" ", "-")
            home.mkdir()
            env = base_env(
                home,
                TASKGATE_LOG_LEVEL="WARNING",
                TASKGATE_RATE_LIMIT_TIERS=tiers,
                TASKGATE_REDIS_URL=redis_server.url,
                TASKGATE_SIM_STEP_SECONDS="0.01",
            )
            orchestrator = Orchestrator(
                env=env, grpc_addr=env["TASKGATE_GRPC_ADDR"], admin_url=env["TASKGATE_ADMIN_URL"],
                log_path=home / "orchestrator.log",
            )  # fmt: skip
            orchestrator.start()
            cleanup.callback(orchestrator.stop)
            bind = env["TASKGATE_GATEWAY_BIND"]
            gateway = Gateway(env=env, url=f"http://{bind}", log_path=home / "gateway.log")
            gateway.start()
            cleanup.callback(gateway.stop)
            key = create_api_key(env, "budget@example.com")
            stacks[name] = SubmitStack(orchestrator, gateway, key, home / "taskgate.db")
        yield stacks


def finished_tasks(database: pathlib.Path) -> int:
    """Count the finished tasks in a stack's SQLite store, read-only (no work for the services)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return connection.execute(
            "SELECT count(*) FROM tasks WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT')"
        ).fetchone()[0]
    finally:
        connection.close()


def submit_and_finish(stack: SubmitStack, submits: int) -> tuple[float, float, int]:
    """Submit tasks from client threads, wait until all have finished; return CPU µs per task and refusals."""
    orchestrator_pids = process_tree(stack.orchestrator.process.pid)
    gateway_pids = process_tree(stack.gateway.process.pid)
    before = finished_tasks(stack.database)
    orchestrator_cpu, gateway_cpu = cpu_seconds(orchestrator_pids), cpu_seconds(gateway_pids)
    refused = [0] * SUBMIT_THREADS

    def work(index: int) -> None:
        with httpx.Client(base_url=stack.gateway.url, headers={"X-API-Key": stack.key}, timeout=60) as client:
            for _ in range(index, submits, SUBMIT_THREADS):
                if client.post("/api/v1/tasks", json={"query": "What is 2+2?"}).status_code != 200:
                    refused[index] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(SUBMIT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = submits - sum(refused)
    wait_until(
        lambda: finished_tasks(stack.database) >= before + accepted,
        timeout=600,
        what="the submitted tasks to finish",
    )
    tasks = max(accepted, 1)
    return (
        (cpu_seconds(orchestrator_pids) - orchestrator_cpu) / tasks * 1e6,
        (cpu_seconds(gateway_pids) - gateway_cpu) / tasks * 1e6,
        sum(refused),
    )


def print_budget_table(submits: int, rounds: int) -> None:
    """Run the submissions with budgets on and off, alternating, and print their table."""
    with (
        tempfile.TemporaryDirectory(prefix="taskgate-bench-") as work,
        budget_stacks(pathlib.Path(work)) as stacks,
    ):
        for stack in stacks.values():
            submit_and_finish(stack, max(submits // 10, SUBMIT_THREADS))  # warm-up
        readings: dict[str, list[tuple[float, float, int]]] = {name: [] for name in stacks}
        for _ in range(rounds):
            for name, stack in stacks.items():
                readings[name].append(submit_and_finish(stack, submits))
    off = statistics.median(reading[0] for reading in readings["budgets off"])
    print(
        f"{submits} tasks submitted from {SUBMIT_THREADS} threads and run to the end, "
        f"{rounds} rounds, alternating"
    )
    print()
    print(
        "| configuration | orchestrator CPU µs/task (median) | runs | vs off "
        "| gateway CPU µs/task | refused |"
    )
    print("|---|---|---|---|---|---|")
    for name, name_readings in readings.items():
        orchestrator = statistics.median(reading[0] for reading in name_readings)
        gateway = statistics.median(reading[1] for reading in name_readings)
        runs = " / ".join(f"{reading[0]:,.0f}" for reading in name_readings)
        refused = sum(reading[2] for reading in name_readings)
        print(
            f"| {name} | {orchestrator:,.0f} | {runs} | {orchestrator / off:.3f} "
            f"| {gateway:,.0f} | {refused} |"
        )


def _median_or_dash(values: list[float | None]) -> str:
    present = [value for value in values if value is not None]
    return f"{statistics.median(present):.2f}" if present else "–"


if __name__ == "__main__":
    sys.exit(main())
