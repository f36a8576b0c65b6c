"""What an authenticated read costs against a bare Falcon request, per process, in one run.

Starts its own throwaway processes on 127.0.0.1: a redis-server and an orchestrator on a SQLite
file (``bench.edge_stack``), two taskgate gateways (two gevent workers each, limits in Redis: one
with the per-user windows counted, one with ``TASKGATE_RATE_LIMIT_DISABLED=1``), and the
**baseline**: a bare Falcon app (this module's ``bare_application``, one resource answering
``GET /health`` with ``{"status":"healthy"}``, no middleware) under gunicorn with the gateway's
worker class, worker count and connections. The rows:

- bare Falcon ``GET /health`` (the baseline);
- taskgate ``GET /health`` through the whole middleware stack (no credential, no limit);
- ``GET /api/v1/tasks/{id}`` of one finished task with an API key, the Redis limiter on;
- the same read with the limiter off.

``wrk -t2 -c32`` (else client threads) loads each row in turn for ``--seconds``, for ``--rounds``
rounds, alternating, so drift on the machine hits every row alike; before each run and after it
the CPU time of each process group is read from /proc: the gunicorn master and workers serving
the row, the orchestrator, redis-server. The ratios printed are the issue's goals: the read's
gateway + orchestrator CPU per request against the bare request's, taskgate's ``/health`` against
the bare one, and the limiter's throughput against the limiter off.

``--gthread`` adds the limited read served by a gateway on gunicorn's gthread workers (the same
two workers): the gRPC client under gevent against plain threads, for the whole request.

``--before DIR`` adds the same three taskgate rows served by the gateway code of another checkout
(``git worktree add DIR <commit>``), in front of the same orchestrator and Redis: the change side
by side with the commit before it.

    .venv/bin/python -m bench.read_cost --seconds 10 --rounds 3 [--before ../h-before]

Bounded: at most 60 s a run and 7 rounds; it stops by itself and removes everything it started.
"""

import argparse
import contextlib
import dataclasses
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

import falcon
import httpx

from bench.edge_stack import REDIS
from bench.edge_stack import Run
from bench.edge_stack import edge_stack
from bench.edge_stack import finished_task_path
from bench.edge_stack import load_with_threads
from bench.edge_stack import load_with_wrk
from bench.proc_readings import cpu_seconds
from bench.proc_readings import process_tree
from gateway.settings import GatewaySettings
from tests.integration.processes import Gateway
from tests.integration.processes import create_api_key
from tests.integration.processes import free_port
from tests.integration.processes import wait_until

MAX_SECONDS = 60.0
MAX_ROUNDS = 7
BARE = "bare Falcon /health"
HEALTH = "taskgate /health"
READ_LIMITED = "task read, Redis limiter"
READ_UNLIMITED = "task read, limiter off"
READ_GTHREAD = "task read, Redis limiter, gthread workers"
BEFORE = " (before)"
LIMITER_ON = {"TASKGATE_REDIS_URL": REDIS}
LIMITER_OFF = {"TASKGATE_REDIS_URL": REDIS, "TASKGATE_RATE_LIMIT_DISABLED": "1"}
GTHREAD = {"TASKGATE_REDIS_URL": REDIS, "TASKGATE_GATEWAY_WORKER_CLASS": "gthread"}


class _BareHealth:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "healthy"}


bare_application = falcon.App()
bare_application.add_route("/health", _BareHealth())


@dataclasses.dataclass
class Row:
    """One line of the table: whose processes serve it, the URL loaded, and its runs."""

    name: str
    server: subprocess.Popen
    url: str
    runs: list[Run] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def bare_falcon(work: pathlib.Path):
    """Serve ``bare_application`` under gunicorn as the gateway runs (worker class, count, connections)."""
    bind = f"127.0.0.1:{free_port()}"
    command = [
        sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", "2",
        "--worker-class", GatewaySettings.worker_class,
        "--worker-connections", str(GatewaySettings.worker_connections),
        "--keep-alive", "5", "--log-level", "warning", "bench.read_cost:bare_application",
    ]  # fmt: skip
    log = (work / "bare.log").open("ab")
    process = subprocess.Popen(
        command, cwd=pathlib.Path(__file__).resolve().parents[1], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://{bind}"
        wait_until(lambda: _answers(url + "/health"), what="the bare Falcon app")
        yield process, url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def before_gateways(env: dict, checkout: pathlib.Path, work: pathlib.Path, redis_url: str):
    """Start the limiter-on and limiter-off gateways of another checkout; yield them by name."""
    with contextlib.ExitStack() as cleanup:
        gateways = {}
        for name, overrides in ((HEALTH, LIMITER_ON), (READ_UNLIMITED, LIMITER_OFF)):
            bind = f"127.0.0.1:{free_port()}"
            settings = {key: redis_url if value == REDIS else value for key, value in overrides.items()}
            gateway = Gateway(
                env={**env, "TASKGATE_GATEWAY_BIND": bind, **settings},
                url=f"http://{bind}",
                log_path=work / f"before-{len(gateways)}.log",
                cwd=checkout,
            )
            gateway.start()
            cleanup.callback(gateway.stop)
            gateways[name] = gateway
        yield gateways


def measure(
    row: Row, key: str, seconds: float, connections: int, orchestrator: list[int], redis_pid: int, load
) -> None:
    """Load one row once and append the run, with each process group's CPU per request."""
    server = process_tree(row.server.pid)
    before = cpu_seconds(server), cpu_seconds(orchestrator), cpu_seconds([redis_pid])
    run = load(row.url, key, seconds, connections)
    requests = max(run.requests, 1)
    run.gateway_cpu_us = (cpu_seconds(server) - before[0]) / requests * 1e6
    run.orchestrator_cpu_us = (cpu_seconds(orchestrator) - before[1]) / requests * 1e6
    run.redis_cpu_us = (cpu_seconds([redis_pid]) - before[2]) / requests * 1e6
    row.runs.append(run)


def main(argv: list[str] | None = None) -> int:
    """Run the rows in alternating rounds and print the table and the goals' ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per row, alternating")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--before", type=pathlib.Path, help="a checkout whose gateway is measured beside")
    parser.add_argument("--gthread", action="store_true", help="add the limited read on gthread workers")
    args = parser.parse_args(argv)
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    load = load_with_wrk if shutil.which("wrk") else load_with_threads
    tool = "wrk -t2" if load is load_with_wrk else "httpx threads"

    with contextlib.ExitStack() as cleanup:
        work = pathlib.Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="taskgate-bench-")))
        configurations = {HEALTH: LIMITER_ON, READ_UNLIMITED: LIMITER_OFF}
        if args.gthread:
            configurations[READ_GTHREAD] = GTHREAD
        stack = cleanup.enter_context(edge_stack(work, configurations))
        limited, unlimited = stack.gateways[HEALTH], stack.gateways[READ_UNLIMITED]
        key = create_api_key(stack.env, "reader@example.com")
        path = finished_task_path(limited.url, key)
        bare, bare_url = cleanup.enter_context(bare_falcon(work))
        rows = [
            Row(BARE, bare, bare_url + "/health"),
            Row(HEALTH, limited.process, limited.url + "/health"),
            Row(READ_LIMITED, limited.process, limited.url + path),
            Row(READ_UNLIMITED, unlimited.process, unlimited.url + path),
        ]
        if args.gthread:
            gthread = stack.gateways[READ_GTHREAD]
            rows.append(Row(READ_GTHREAD, gthread.process, gthread.url + path))
        if args.before is not None:
            before = cleanup.enter_context(
                before_gateways(stack.env, args.before.resolve(), work, stack.redis_server.url)
            )
            rows += [
                Row(HEALTH + BEFORE, before[HEALTH].process, before[HEALTH].url + "/health"),
                Row(READ_LIMITED + BEFORE, before[HEALTH].process, before[HEALTH].url + path),
                Row(
                    READ_UNLIMITED + BEFORE, before[READ_UNLIMITED].process, before[READ_UNLIMITED].url + path
                ),
            ]
        orchestrator = process_tree(stack.orchestrator.process.pid)
        redis_pid = stack.redis_server.process.pid
        for row in rows:
            load(row.url, key, 2.0, args.connections)  # warm-up
        for _ in range(rounds):
            for row in rows:
                measure(row, key, seconds, args.connections, orchestrator, redis_pid, load)

    print(f"{tool}, {args.connections} connections, {rounds} × {seconds:g} s a row, alternating; GET {path}")
    print()
    print_table(rows)
    print()
    print_goals({row.name: row for row in rows}, args.before is not None)
    return 0


def _median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def print_table(rows: list[Row]) -> None:
    """Print every row: medians, then each round."""
    bare_cpu = _median(rows[0].runs, "gateway_cpu_us")
    print(
        "| row | req/s (median) | rounds | p50 / p99 ms | gateway CPU µs/req | rounds "
        "| orchestrator CPU µs/req | Redis CPU µs/req | gateway + orchestrator | vs bare | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        rate = statistics.median(run.rate for run in row.runs)
        gateway = _median(row.runs, "gateway_cpu_us")
        orchestrator = _median(row.runs, "orchestrator_cpu_us")
        redis_cpu = _median(row.runs, "redis_cpu_us")
        total = statistics.median(run.gateway_cpu_us + run.orchestrator_cpu_us for run in row.runs)
        print(
            f"| {row.name} | {rate:,.0f} | {' / '.join(f'{run.rate:,.0f}' for run in row.runs)} "
            f"| {_median(row.runs, 'p50_ms'):.2f} / {_median(row.runs, 'p99_ms'):.2f} | {gateway:,.0f} "
            f"| {' / '.join(f'{run.gateway_cpu_us:,.0f}' for run in row.runs)} | {orchestrator:,.0f} "
            f"| {redis_cpu:,.0f} | {total:,.0f} | {total / bare_cpu:.2f} "
            f"| {sum(run.errors for run in row.runs)} |"
        )


def print_goals(rows: dict[str, Row], with_before: bool) -> None:
    """Print the issue's ratios, for this checkout and (with ``--before``) the one before."""
    bare_cpu = _median(rows[BARE].runs, "gateway_cpu_us")
    print("| goal | this checkout | before | target |")
    print("|---|---|---|---|")

    def ratio(suffix: str, measure) -> str:
        return f"{measure(suffix):.2f}" if suffix == "" or with_before else "–"

    def read_total(suffix: str) -> float:
        runs = rows[READ_LIMITED + suffix].runs
        return statistics.median(run.gateway_cpu_us + run.orchestrator_cpu_us for run in runs) / bare_cpu

    def read_gateway(suffix: str) -> float:
        return _median(rows[READ_LIMITED + suffix].runs, "gateway_cpu_us") / bare_cpu

    def health(suffix: str) -> float:
        return _median(rows[HEALTH + suffix].runs, "gateway_cpu_us") / bare_cpu

    def limiter(suffix: str) -> float:
        on = statistics.median(run.rate for run in rows[READ_LIMITED + suffix].runs)
        off = statistics.median(run.rate for run in rows[READ_UNLIMITED + suffix].runs)
        return on / off

    def limiter_cpu(suffix: str) -> float:
        on = _median(rows[READ_LIMITED + suffix].runs, "gateway_cpu_us")
        return on - _median(rows[READ_UNLIMITED + suffix].runs, "gateway_cpu_us")

    def limiter_share(suffix: str) -> float:
        """The limiter's CPU (the gateway's extra and redis-server's) over the read's without it."""
        extra = limiter_cpu(suffix) + _median(rows[READ_LIMITED + suffix].runs, "redis_cpu_us")
        off = rows[READ_UNLIMITED + suffix].runs
        return extra / statistics.median(run.gateway_cpu_us + run.orchestrator_cpu_us for run in off)

    for name, measure, target in (
        ("1: read, gateway + orchestrator CPU / bare CPU", read_total, "≤ 3.5"),
        ("1: read, gateway's share / bare CPU", read_gateway, "–"),
        ("1: taskgate /health CPU / bare CPU", health, "≤ 1.15"),
        ("5: read req/s, Redis limiter on / off", limiter, "≥ 0.90"),
        ("5: the limiter's CPU (gateway extra + Redis) / the read's with it off", limiter_share, "≤ 0.10"),
    ):
        print(f"| {name} | {ratio('', measure)} | {ratio(BEFORE, measure)} | {target} |")
    print(
        f"| 5: the limiter's gateway CPU µs/req (on − off) | {limiter_cpu(''):+.0f} "
        f"| {f'{limiter_cpu(BEFORE):+.0f}' if with_before else '–'} | – |"
    )


if __name__ == "__main__":
    sys.exit(main())
