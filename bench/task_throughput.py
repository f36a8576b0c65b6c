"""Task throughput through the gateway, per store: how many tasks are submitted and completed a second.

Starts its own throwaway processes on 127.0.0.1 (as the integration tests do): for ``sqlite`` an
orchestrator on a SQLite file with the in-process bus; for ``postgres`` one or more orchestrator
replicas on a throwaway PostgreSQL cluster with the Redis Streams bus. One gateway in front of
the first orchestrator. Client threads submit ``--tasks`` tasks through the gateway with an API
key; the simulated runner runs them (``--step-seconds``, 0 by default: the cost measured is the
platform's, not the agent's). Bounded: at most 5,000 tasks and ``--timeout`` seconds per store;
it stops by itself and removes everything it started.

    .venv/bin/python -m bench.task_throughput --stores sqlite postgres --tasks 1000 --clients 8

Side by side: ``--trees HEAD_CHECKOUT OTHER_CHECKOUT --rounds 3`` runs each store on the code of
each checkout in turn (``git worktree add ../before <commit>`` makes one), round after round, so
both see the same machine; each row also gives the CPU time the orchestrator, the gateway and (on
PostgreSQL) the database's and Redis's server processes spent per task, read from /proc, which
moves far less with other load than throughput does. A second table then gives, per store and
checkout, the medians, and each checkout's completed/s and CPU per task against the last
checkout's, round by round (the goal: completed/s at least 3 times the commit before, and at
least 0.9 times submitted/s).
"""

import argparse
import contextlib
import dataclasses
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx

from bench.proc_readings import cpu_seconds
from bench.proc_readings import process_tree
from tests.integration.processes import REPO
from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import free_port
from tests.integration.servers import start_postgres
from tests.integration.servers import start_redis

MAX_TASKS = 5000
MAX_CLIENTS = 64
POLL_SECONDS = 0.05


@dataclasses.dataclass
class Result:
    """What one run measured."""

    label: str
    tasks: int
    submit_seconds: float
    complete_seconds: float
    latencies_ms: list[float]
    orchestrator_cpu_seconds: float = 0.0
    gateway_cpu_seconds: float = 0.0
    # PostgreSQL's server processes and redis-server (none for SQLite: it runs in the orchestrator).
    servers_cpu_seconds: float = 0.0

    @property
    def submitted_per_second(self) -> float:
        return self.tasks / self.submit_seconds

    @property
    def completed_per_second(self) -> float:
        return self.tasks / self.complete_seconds

    @property
    def orchestrator_ms_per_task(self) -> float:
        return self.orchestrator_cpu_seconds * 1000 / self.tasks

    def line(self) -> str:
        """Return the result as one table row."""
        latencies = sorted(self.latencies_ms)
        p50 = statistics.median(latencies)
        p95 = latencies[int(len(latencies) * 0.95) - 1]
        submitted, completed = self.submitted_per_second, self.completed_per_second
        gateway_ms = self.gateway_cpu_seconds * 1000 / self.tasks
        servers_ms = self.servers_cpu_seconds * 1000 / self.tasks
        return (
            f"| {self.label} | {self.tasks} | {submitted:,.0f} | {p50:.1f} | {p95:.1f} | {completed:,.0f} |"
            f" {completed / submitted:.2f} | {self.orchestrator_ms_per_task:.2f} | {gateway_ms:.2f} |"
            f" {servers_ms:.2f} |"
        )


def _submit(url: str, key: str, count: int, latencies: list[float], errors: list[str]) -> None:
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as client:
        for n in range(count):
            started = time.perf_counter()
            response = client.post("/api/v1/tasks", json={"query": f"What is {n}+1?"})
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text[:200]}")


def completed_count(url: str, key: str) -> int:
    """Return how many of the key's user's tasks are COMPLETED."""
    response = httpx.get(
        url + "/api/v1/tasks",
        headers={"X-API-Key": key},
        params={"status": "COMPLETED", "limit": 1},
        timeout=10,
    )
    return response.json()["total_count"]


@dataclasses.dataclass
class RunningStack:
    """The gateway URL and API key of a running stack, and its processes (for their CPU time)."""

    url: str
    key: str
    orchestrators: list[Orchestrator]
    gateway: Gateway
    # The database's and Redis's server processes, for their CPU time.
    server_pids: list[int] = dataclasses.field(default_factory=list)

    def cpu_seconds(self) -> tuple[float, float, float]:
        """Return the CPU time used so far by the orchestrators, the gateway (all of it), the servers."""
        orchestrators = cpu_seconds([orchestrator.process.pid for orchestrator in self.orchestrators])
        servers = cpu_seconds([pid for server in self.server_pids for pid in process_tree(server)])
        return orchestrators, cpu_seconds(process_tree(self.gateway.process.pid)), servers


def measure(label: str, stack: RunningStack, tasks: int, clients: int, timeout: float) -> Result:
    """Submit ``tasks`` tasks from ``clients`` threads and wait until every one has completed."""
    url, key = stack.url, stack.key
    latencies: list[float] = []
    errors: list[str] = []
    shares = [tasks // clients + (1 if n < tasks % clients else 0) for n in range(clients)]
    threads = [
        threading.Thread(target=_submit, args=(url, key, share, latencies, errors)) for share in shares
    ]
    target = completed_count(url, key) + tasks
    orchestrator_cpu, gateway_cpu, servers_cpu = stack.cpu_seconds()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    submitted = time.perf_counter()
    if errors:
        raise RuntimeError(f"{len(errors)} submissions failed, e.g. {errors[0]}")
    deadline = started + timeout
    while completed_count(url, key) < target:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{label}: tasks not completed within {timeout:g} s")
        time.sleep(POLL_SECONDS)
    finished = time.perf_counter()
    orchestrator_after, gateway_after, servers_after = stack.cpu_seconds()
    return Result(
        label,
        tasks,
        submitted - started,
        finished - started,
        latencies,
        orchestrator_after - orchestrator_cpu,
        gateway_after - gateway_cpu,
        servers_after - servers_cpu,
    )


@contextlib.contextmanager
def running_stack(
    store: str, replicas: int, step_seconds: float, work: pathlib.Path, tree: pathlib.Path = REPO
):
    """Start the servers and the processes (running the code of ``tree``) of one configuration."""
    with contextlib.ExitStack() as cleanup:
        overrides = {"TASKGATE_SIM_STEP_SECONDS": str(step_seconds), "TASKGATE_LOG_LEVEL": "WARNING"}
        server_pids: list[int] = []
        if store == "postgres":
            postgres = start_postgres()
            cleanup.callback(postgres.stop)
            redis = start_redis()
            cleanup.callback(redis.stop)
            # The postmaster's pid heads postmaster.pid; the connections' processes are its children.
            server_pids.append(int((postgres.data_dir / "postmaster.pid").read_text().split()[0]))
            if redis.process is not None:
                server_pids.append(redis.process.pid)
            overrides.update(TASKGATE_DATABASE_URL=postgres.create_database(), TASKGATE_REDIS_URL=redis.url)
        env = base_env(work, **overrides)
        orchestrators: list[Orchestrator] = []
        for number in range(replicas):
            replica_env = dict(env)
            if number > 0:
                replica_env.update(
                    TASKGATE_GRPC_ADDR=f"127.0.0.1:{free_port()}",
                    TASKGATE_ADMIN_ADDR=f"127.0.0.1:{free_port()}",
                )
            orchestrator = Orchestrator(
                env=replica_env,
                grpc_addr=replica_env["TASKGATE_GRPC_ADDR"],
                admin_url="http://" + replica_env["TASKGATE_ADMIN_ADDR"],
                log_path=work / f"orchestrator-{number}.log",
                cwd=tree,
            )
            orchestrator.start()
            cleanup.callback(orchestrator.stop)
            orchestrators.append(orchestrator)
        gateway = Gateway(
            env=env, url="http://" + env["TASKGATE_GATEWAY_BIND"], log_path=work / "gateway.log", cwd=tree
        )
        gateway.start()
        cleanup.callback(gateway.stop)
        key = create_api_key(env, "bench@example.com", cwd=tree)
        yield RunningStack(gateway.url, key, orchestrators, gateway, server_pids)


def _store_label(store: str, replicas: int) -> str:
    return "SQLite, in-process bus" if store == "sqlite" else f"PostgreSQL + Redis, {replicas} replica(s)"


def tree_label(tree: pathlib.Path) -> str:
    commit = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return commit.stdout.strip() or tree.name


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark for each store (and checkout, round after round) and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"])
    parser.add_argument("--replicas", type=int, default=1, help="orchestrator replicas on PostgreSQL (1..4)")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--step-seconds", type=float, default=0.0, help="simulated runner's pause per step")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds allowed per store")
    parser.add_argument(
        "--trees", nargs="+", type=pathlib.Path, default=[REPO], help="checkouts whose code to run, in turn"
    )
    parser.add_argument("--rounds", type=int, default=1, help="times to run every store on every checkout")
    args = parser.parse_args(argv)
    trees = [tree.resolve() for tree in args.trees]
    tasks = max(1, min(args.tasks, MAX_TASKS))
    clients = max(1, min(args.clients, MAX_CLIENTS, tasks))
    replicas = max(1, min(args.replicas, 4))
    side_by_side = len(trees) > 1

    print(
        "| store | tasks | submitted/s | submit p50 ms | submit p95 ms | completed/s (end to end)"
        " | completed / submitted | orchestrator CPU ms/task | gateway CPU ms/task"
        " | PostgreSQL + Redis CPU ms/task |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    results: dict[tuple[str, pathlib.Path], list[Result]] = {}
    for _ in range(max(1, args.rounds)):
        for store in args.stores:
            for tree in trees:
                count = replicas if store == "postgres" else 1
                label = _store_label(store, count)
                if side_by_side:
                    label += f", {tree_label(tree)}"
                with (
                    tempfile.TemporaryDirectory(prefix="taskgate-bench-") as work,
                    running_stack(store, count, args.step_seconds, pathlib.Path(work), tree) as stack,
                ):
                    measure(label, stack, min(50, tasks), clients, args.timeout)  # warm-up
                    result = measure(label, stack, tasks, clients, args.timeout)
                print(result.line(), flush=True)
                results.setdefault((store, tree), []).append(result)
    if side_by_side:
        print_ratios(results, args.stores, trees, replicas)
    return 0


def print_ratios(
    results: dict[tuple[str, pathlib.Path], list[Result]],
    stores: list[str],
    trees: list[pathlib.Path],
    replicas: int,
) -> None:
    """Print, per store, the medians of each checkout and the first checkout's against the others'.

    A round's ratio compares the runs of one round (run one after the other), so each is measured
    on the machine as it was then; the median of those is the figure to quote.
    """
    print()
    print(
        "| store | checkout | completed/s (median) | completed / submitted (median)"
        " | orchestrator CPU ms/task (median) | completed/s vs the last checkout, per round (median)"
        " | CPU ms/task vs the last checkout (median) |"
    )
    print("|---|---|---|---|---|---|---|")
    baseline = trees[-1]
    for store in stores:
        label = _store_label(store, replicas if store == "postgres" else 1)
        base_runs = results.get((store, baseline), [])
        for tree in trees:
            runs = results.get((store, tree), [])
            if not runs:
                continue
            completed = statistics.median(run.completed_per_second for run in runs)
            keeps_up = statistics.median(run.completed_per_second / run.submitted_per_second for run in runs)
            cpu = statistics.median(run.orchestrator_ms_per_task for run in runs)
            speedups = [
                run.completed_per_second / base.completed_per_second
                for run, base in zip(runs, base_runs, strict=True)
            ]
            cpu_ratios = [
                run.orchestrator_ms_per_task / base.orchestrator_ms_per_task
                for run, base in zip(runs, base_runs, strict=True)
            ]
            print(
                f"| {label} | {tree_label(tree)} | {completed:,.0f} | {keeps_up:.2f} | {cpu:.2f}"
                f" | {' '.join(f'{ratio:.2f}' for ratio in speedups)} ({statistics.median(speedups):.2f})"
                f" | {statistics.median(cpu_ratios):.2f} |"
            )


if __name__ == "__main__":
    sys.exit(main())
