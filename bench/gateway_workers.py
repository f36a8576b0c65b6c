"""What the embedded default gives up by running one gateway worker: one gevent worker against two.

Without ``TASKGATE_REDIS_URL`` the gateway keeps its rate-limit windows and idempotency records in
the worker process, so it runs a single gunicorn worker (``gateway.settings``): two workers would
each count and remember on their own. The alternative is a store the workers share. This starts
``make run``'s shape on 127.0.0.1 (an orchestrator on a SQLite file with the in-process event
bus, a gateway started by ``taskgate gateway`` with its default worker settings) and, in front of
the same orchestrator, gateways that differ only in their workers and what they share:

- ``1 worker, in-process``: the embedded default (exact: every request meets the same windows);
- ``2 workers, Redis``: a store the workers share, here the one that exists (exact);
- ``2 workers, no limiter``: two workers with nothing to share (``TASKGATE_RATE_LIMIT_DISABLED``,
  dev/test only): what any shared store could at best give, since it costs nothing.

Each is loaded in turn with an authenticated read (``GET /api/v1/tasks/{id}`` of one finished
task, with an API key; limits far above what the run reaches) and with ``GET /health``, round
after round, so drift on the machine hits every configuration alike. Each row gives req/s and the
CPU time, read from /proc, that the gateway's processes, the orchestrator and redis-server spent
per request, which other load on the machine distorts less than it does throughput.

    .venv/bin/python -m bench.gateway_workers --seconds 8 --rounds 3

Bounded: at most 60 s a run and 5 rounds; it stops by itself and removes everything it started.
"""

import argparse
import contextlib
import pathlib
import shutil
import statistics
import sys
import tempfile

from bench.edge_stack import REDIS
from bench.edge_stack import Run
from bench.edge_stack import edge_stack
from bench.edge_stack import finished_task_path
from bench.edge_stack import load_with_threads
from bench.edge_stack import load_with_wrk
from bench.proc_readings import cpu_seconds
from bench.proc_readings import process_tree
from tests.integration.processes import create_api_key

MAX_SECONDS = 60.0
MAX_ROUNDS = 5
# What each gateway sets on top of the orchestrator's environment (REDIS: the redis-server's URL).
CONFIGURATIONS = {
    "1 worker, in-process": {},
    "2 workers, Redis": {"TASKGATE_REDIS_URL": REDIS, "TASKGATE_GATEWAY_WORKERS": "2"},
    "2 workers, no limiter": {
        # Redis is configured only so that two workers are allowed; a read without an
        # Idempotency-Key never asks it anything once the limiter is off.
        "TASKGATE_REDIS_URL": REDIS,
        "TASKGATE_GATEWAY_WORKERS": "2",
        "TASKGATE_RATE_LIMIT_DISABLED": "1",
    },
}


@contextlib.contextmanager
def running_gateways(work: pathlib.Path):
    """Start Redis, the orchestrator and one gateway per configuration; yield them, a read's path, a key."""
    with edge_stack(work, CONFIGURATIONS) as stack:
        key = create_api_key(stack.env, "bench@example.com")
        path = finished_task_path(next(iter(stack.gateways.values())).url, key)
        yield stack.gateways, stack.orchestrator, stack.redis_server, path, key


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each load run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per configuration and route, alternating")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    load = load_with_wrk if shutil.which("wrk") else load_with_threads
    tool = "wrk" if load is load_with_wrk else "httpx threads"

    with (
        tempfile.TemporaryDirectory(prefix="taskgate-bench-") as work,
        running_gateways(pathlib.Path(work)) as (gateways, orchestrator, redis_server, read_path, key),
    ):
        routes = {"authenticated read": read_path, "/health": "/health"}
        orchestrator_pids = process_tree(orchestrator.process.pid)
        redis_pids = [redis_server.process.pid]
        for gateway in gateways.values():
            for path in routes.values():
                load(gateway.url + path, key, 2.0, args.connections)  # warm-up
        runs: dict[tuple[str, str], list[Run]] = {}
        orchestrator_cpu: dict[tuple[str, str], list[float]] = {}
        for _ in range(rounds):
            for route, path in routes.items():
                for label, gateway in gateways.items():
                    gateway_pids = process_tree(gateway.process.pid)
                    before = [cpu_seconds(pids) for pids in (gateway_pids, orchestrator_pids, redis_pids)]
                    run = load(gateway.url + path, key, seconds, args.connections)
                    after = [cpu_seconds(pids) for pids in (gateway_pids, orchestrator_pids, redis_pids)]
                    requests = max(run.requests, 1)
                    used = [(end - start) / requests * 1e6 for start, end in zip(before, after, strict=True)]
                    run.gateway_cpu_us, run.redis_cpu_us = used[0], used[2]
                    runs.setdefault((route, label), []).append(run)
                    orchestrator_cpu.setdefault((route, label), []).append(used[1])

    print(f"{tool}, {args.connections} connections, {rounds} × {seconds:g} s per configuration and route")
    print()
    print(
        "| route | gateway | req/s (median) | runs | vs 1 worker | gateway CPU µs/req "
        "| orchestrator CPU µs/req | Redis CPU µs/req | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for route in routes:
        baseline = statistics.median(run.rate for run in runs[(route, next(iter(gateways)))])
        for label in gateways:
            label_runs = runs[(route, label)]
            rates = [run.rate for run in label_runs]
            median = statistics.median(rates)
            gateway_cpu = statistics.median(run.gateway_cpu_us for run in label_runs)
            redis_cpu = statistics.median(run.redis_cpu_us for run in label_runs)
            print(
                f"| {route} | {label} | {median:,.0f} | {' / '.join(f'{rate:,.0f}' for rate in rates)} | "
                f"{median / baseline:.2f} | {gateway_cpu:.0f} | "
                f"{statistics.median(orchestrator_cpu[(route, label)]):.0f} | {redis_cpu:.0f} | "
                f"{sum(run.errors for run in label_runs)} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
