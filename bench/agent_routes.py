"""What the OpenAI-compatible route costs over the native API, and what a task waiting for approval costs.

Starts its own throwaway processes on 127.0.0.1 (as the integration tests do): an orchestrator on
a SQLite file with the in-process bus and the simulated runner at ``TASKGATE_SIM_STEP_SECONDS=0``
(the task itself is fast, so the platform's overhead shows), and one gateway (2 gevent workers) in
front of it with the rate limiter off (``TASKGATE_RATE_LIMIT_DISABLED=1``, allowed in dev/test
only), so limits never interfere.

1. **Routes.** ``--concurrency`` client threads (one httpx client each) get ``--requests``
   answers to the same question three ways: the native API as a client does it (``POST
   /api/v1/tasks`` with ``X-API-Key``, then ``GET /api/v1/stream/sse?workflow_id=…&types=STREAM_END``
   to the ``done`` frame, then ``GET /api/v1/tasks/{id}``: the baseline); ``POST
   /v1/chat/completions`` whole; and the same with ``stream: true``, read to ``data: [DONE]`` (both
   with ``Authorization: Bearer``). The three alternate for ``--rounds`` rounds, so drift on the
   machine hits each alike. Per route: answers a second, latency p50/p99, the ratio to the
   baseline, and the CPU time the gateway's processes and the orchestrator used per answer (from
   /proc, which other load on the machine distorts less than throughput).
2. **Waiting approvals.** A fresh orchestrator (``TASKGATE_WORKER_CONCURRENCY`` 100) and gateway.
   With no task waiting it reads the orchestrator's VmRSS, its CPU time over a quiet window
   (``--quiet-seconds``), the latency of a plain task (submit to COMPLETED) and of ``GET
   /api/v1/approvals?status=pending``; then again after ``--control-tasks`` plain tasks have run
   to completion (the control: what the orchestrator grows once while it handles its first few
   thousand tasks, waiting or not — SQLite's page cache of 2 MB a connection, the allocator's
   arenas — is in it); then submits ``--waiting`` tasks with ``require_approval`` (more than the
   worker slots), waits until every one is pending, and reads the same again.

    .venv/bin/python -m bench.agent_routes --requests 300 --concurrency 10 --waiting 2000

Bounded: at most 2,000 requests a run, 5 rounds, 10,000 waiting and 10,000 control tasks; every
wait has a deadline; a default run takes about two minutes. It stops by itself and removes
everything it started.
"""

import argparse
import contextlib
import dataclasses
import math
import pathlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import httpx

from bench.proc_readings import cpu_seconds
from bench.proc_readings import process_tree
from bench.proc_readings import rss_mb
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until

MAX_REQUESTS = 2000
MAX_CONCURRENCY = 64
MAX_ROUNDS = 5
MAX_WAITING = 10_000
MAX_CONTROL_TASKS = 10_000
MAX_QUIET_SECONDS = 30.0
WORKER_CONCURRENCY = 100
WARMUP_REQUESTS = 30
PLAIN_SAMPLES = 50
LIST_SAMPLES = 100
LIST_PAGE = 20  # the route's default limit
PARK_TIMEOUT_SECONDS = 240.0
QUERY = "What is 2+2?"
CHAT_MODEL = "taskgate-small"
DONE_LINE = "data: [DONE]"


class AnswerError(Exception):
    """One request did not get its answer."""


# One answer, three ways. Each raises AnswerError unless the answer arrived whole.


def ask_native(client: httpx.Client, key: str) -> None:
    """Submit, follow the task's stream to its ``done`` frame, then read the finished task."""
    headers = {"X-API-Key": key}
    submitted = client.post("/api/v1/tasks", json={"query": QUERY}, headers=headers)
    _expect(submitted)
    task_id, workflow_id = submitted.json()["task_id"], submitted.json()["workflow_id"]
    params = {"workflow_id": workflow_id, "types": "STREAM_END"}
    with client.stream("GET", "/api/v1/stream/sse", params=params, headers=headers) as stream:
        _read_to_done(stream)
    task = client.get(f"/api/v1/tasks/{task_id}", headers=headers)
    _expect(task)
    if task.json()["status"] != "COMPLETED" or not task.json().get("result"):
        raise AnswerError(f"task {task_id} ended {task.json()['status']}")


def ask_chat(client: httpx.Client, key: str) -> None:
    """One non-streaming chat completion."""
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": QUERY}]}
    response = client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
    _expect(response)
    if not response.json()["choices"][0]["message"]["content"]:
        raise AnswerError("empty completion")


def ask_chat_stream(client: httpx.Client, key: str) -> None:
    """One streaming chat completion, read to ``data: [DONE]``."""
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": QUERY}], "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as stream:
        _read_to_done(stream)


def _expect(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise AnswerError(f"{response.request.method} {response.request.url.path}: {response.status_code}")


def _read_to_done(stream: httpx.Response) -> None:
    """Read a streamed response to its end (the connection is reused); fail without ``[DONE]``."""
    if stream.status_code != 200:
        stream.read()
        raise AnswerError(f"{stream.request.url.path}: {stream.status_code} {stream.text[:200]}")
    done = False
    for line in stream.iter_lines():
        done = done or line == DONE_LINE
    if not done:
        raise AnswerError(f"{stream.request.url.path}: the stream ended without [DONE]")


ROUTES: dict[str, Callable[[httpx.Client, str], None]] = {
    "native: submit + SSE done + GET": ask_native,
    "/v1/chat/completions": ask_chat,
    "/v1/chat/completions, stream": ask_chat_stream,
}
BASELINE = "native: submit + SSE done + GET"


# Load from client threads.


@dataclasses.dataclass
class Run:
    """One route's run of ``requests`` answers."""

    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    gateway_cpu_ms: float
    orchestrator_cpu_ms: float

    @property
    def rate(self) -> float:
        """Answers a second."""
        return self.requests / self.seconds


def run_threads(clients: list[httpx.Client], requests: int, work: Callable[[httpx.Client, int], None]):
    """Call ``work(client, n)`` for n below ``requests`` from one thread per client.

    Return the seconds it took, the latency of each call that succeeded (ms) and the errors.
    """
    lock = threading.Lock()
    next_number = iter(range(requests))
    latencies: list[float] = []
    errors: list[str] = []

    def loop(client: httpx.Client) -> None:
        while True:
            with lock:
                number = next(next_number, None)
            if number is None:
                return
            started = time.perf_counter()
            try:
                work(client, number)
            except (AnswerError, httpx.HTTPError, KeyError, ValueError) as ex:
                errors.append(f"{type(ex).__name__}: {ex}")
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=loop, args=(client,)) for client in clients]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        print(f"  {len(errors)} of {requests} failed, e.g. {errors[0]}", file=sys.stderr)
    return seconds, latencies, errors


def load(
    clients: list[httpx.Client], ask, key: str, requests: int, gateway_pid: int, orchestrator_pid: int
) -> Run:
    """Get ``requests`` answers one way and measure them."""
    gateway_pids = process_tree(gateway_pid)
    gateway_cpu, orchestrator_cpu = cpu_seconds(gateway_pids), cpu_seconds([orchestrator_pid])
    seconds, latencies, errors = run_threads(clients, requests, lambda client, _: ask(client, key))
    answered = max(len(latencies), 1)
    return Run(
        requests=len(latencies),
        seconds=seconds,
        latencies_ms=latencies,
        errors=len(errors),
        gateway_cpu_ms=(cpu_seconds(gateway_pids) - gateway_cpu) / answered * 1000,
        orchestrator_cpu_ms=(cpu_seconds([orchestrator_pid]) - orchestrator_cpu) / answered * 1000,
    )


def percentile(values: list[float], fraction: float) -> float:
    """Return the value below which ``fraction`` of the values lie (nearest rank); NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def median(values) -> float:
    """Return the median; NaN for none (a run whose every request failed)."""
    values = list(values)
    return statistics.median(values) if values else math.nan


def divide(numerator: float, denominator: float) -> float:
    """Return a ratio; NaN when the denominator is 0."""
    return numerator / denominator if denominator else math.nan


# The stack.


@contextlib.contextmanager
def running_stack(work: pathlib.Path, **overrides: str):
    """Start an orchestrator and a gateway; yield them and an API key."""
    settings = {
        "TASKGATE_LOG_LEVEL": "WARNING",
        "TASKGATE_SIM_STEP_SECONDS": "0",
        "TASKGATE_RATE_LIMIT_DISABLED": "1",
        **overrides,
    }
    stack = start_stack(work, **settings)
    try:
        yield stack.orchestrator, stack.gateway, create_api_key(stack.env, "bench@example.com")
    finally:
        stack.stop()


@contextlib.contextmanager
def client_pool(url: str, size: int):
    """Yield ``size`` httpx clients on the gateway, closed at the end."""
    with contextlib.ExitStack() as cleanup:
        yield [cleanup.enter_context(httpx.Client(base_url=url, timeout=60)) for _ in range(size)]


# Part 1: the routes.


def compare_routes(requests: int, concurrency: int, rounds: int) -> None:
    """Run the three ways side by side and print their table."""
    with (
        tempfile.TemporaryDirectory(prefix="taskgate-bench-") as work,
        running_stack(pathlib.Path(work)) as (orchestrator, gateway, key),
        client_pool(gateway.url, concurrency) as clients,
    ):
        pids = (gateway.process.pid, orchestrator.process.pid)
        for ask in ROUTES.values():
            load(clients, ask, key, min(WARMUP_REQUESTS, requests), *pids)
        runs: dict[str, list[Run]] = {label: [] for label in ROUTES}
        labels = list(ROUTES)
        for number in range(rounds):
            # Each round starts with another route, so none always runs right after a given one.
            for label in labels[number % len(labels) :] + labels[: number % len(labels)]:
                runs[label].append(load(clients, ROUTES[label], key, requests, *pids))

    baseline = median(run.rate for run in runs[BASELINE])
    baseline_p50 = median(median(run.latencies_ms) for run in runs[BASELINE])
    print(
        f"## Routes: {requests} answers per run, {concurrency} client threads, {rounds} round(s), alternating"
    )
    print()
    print(
        "| route | answers/s (median) | runs | vs native | p50 ms | p50 vs native | p99 ms "
        "| gateway CPU ms/answer | orchestrator CPU ms/answer | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, label_runs in runs.items():
        rates = [run.rate for run in label_runs]
        rate = median(rates)
        p50 = median(median(run.latencies_ms) for run in label_runs)
        p99 = median(percentile(run.latencies_ms, 0.99) for run in label_runs)
        gateway_cpu = median(run.gateway_cpu_ms for run in label_runs)
        orchestrator_cpu = median(run.orchestrator_cpu_ms for run in label_runs)
        print(
            f"| {label} | {rate:,.0f} | {' / '.join(f'{one:,.0f}' for one in rates)} | "
            f"{divide(rate, baseline):.2f} | {p50:.1f} | {divide(p50, baseline_p50):.2f} | {p99:.1f} | "
            f"{gateway_cpu:.2f} | {orchestrator_cpu:.2f} | {sum(run.errors for run in label_runs)} |"
        )
    print(flush=True)


# Part 2: waiting approvals.


@dataclasses.dataclass
class Snapshot:
    """The orchestrator at rest, and two latencies, with some number of tasks waiting."""

    rss_mb: float
    quiet_cpu_seconds: float
    plain_ms: list[float]
    list_ms: list[float]
    store_mb: float
    pending: int
    running: int


def plain_task_ms(client: httpx.Client, key: str) -> float:
    """Return how long one plain task took, from its submission to reading it COMPLETED."""
    started = time.perf_counter()
    ask_native(client, key)
    return (time.perf_counter() - started) * 1000


def list_ms(client: httpx.Client, key: str) -> float:
    """Return how long the first page of pending approvals took."""
    started = time.perf_counter()
    response = client.get("/api/v1/approvals", params={"status": "pending"}, headers={"X-API-Key": key})
    elapsed = (time.perf_counter() - started) * 1000
    _expect(response)
    return elapsed


def total_count(client: httpx.Client, key: str, path: str, **params: str) -> int:
    """Return a list route's ``total_count``, reading one item."""
    response = client.get(path, params={**params, "limit": 1}, headers={"X-API-Key": key})
    _expect(response)
    return response.json()["total_count"]


def store_mb(work: pathlib.Path) -> float:
    """Return the size of the SQLite store's files (database, WAL, shared memory), in MB."""
    return sum(path.stat().st_size for path in work.glob("taskgate.db*")) / 1e6


def snapshot(client: httpx.Client, key: str, pid: int, quiet_seconds: float, work: pathlib.Path) -> Snapshot:
    """Measure the orchestrator at rest, then a plain task's and the approval list's latency."""
    time.sleep(1.0)  # let the last writes and their events settle
    cpu = cpu_seconds([pid])
    time.sleep(quiet_seconds)
    quiet_cpu = cpu_seconds([pid]) - cpu
    rss = rss_mb([pid])
    plain = [plain_task_ms(client, key) for _ in range(PLAIN_SAMPLES)]
    listing = [list_ms(client, key) for _ in range(LIST_SAMPLES)]
    return Snapshot(
        rss_mb=rss,
        quiet_cpu_seconds=quiet_cpu,
        plain_ms=plain,
        list_ms=listing,
        store_mb=store_mb(work),
        pending=total_count(client, key, "/api/v1/approvals", status="pending"),
        running=total_count(client, key, "/api/v1/tasks", status="RUNNING"),
    )


def reject_one_waiting(client: httpx.Client, key: str) -> None:
    """Run the approval path once (ask, list, reject), so its code is loaded before the first reading."""
    headers = {"X-API-Key": key}
    submitted = client.post("/api/v1/tasks", json={"query": QUERY, "require_approval": True}, headers=headers)
    _expect(submitted)
    wait_count(client, key, 1, "/api/v1/approvals", status="pending")
    approval = client.get("/api/v1/approvals", headers=headers).json()["approvals"][0]
    decision = {
        "workflow_id": approval["workflow_id"],
        "approval_id": approval["approval_id"],
        "approved": False,
    }
    _expect(client.post("/api/v1/approvals/decision", json=decision, headers=headers))


def submit_tasks(clients: list[httpx.Client], key: str, count: int, require_approval: bool) -> float:
    """Submit ``count`` tasks from the client threads; return the seconds it took."""

    def submit(client: httpx.Client, number: int) -> None:
        body = {"query": f"What is {number}+1?", "require_approval": require_approval}
        _expect(client.post("/api/v1/tasks", json=body, headers={"X-API-Key": key}))

    seconds, _, errors = run_threads(clients, count, submit)
    if errors:
        raise RuntimeError(f"{len(errors)} submissions failed, e.g. {errors[0]}")
    return seconds


def wait_count(client: httpx.Client, key: str, count: int, path: str, **params: str) -> None:
    """Wait until a list route counts at least ``count`` items."""
    wait_until(
        lambda: total_count(client, key, path, **params) >= count,
        timeout=PARK_TIMEOUT_SECONDS,
        interval=0.25,
        what=f"{count} items at {path} {params}",
    )


def measure_waiting(waiting: int, control_tasks: int, concurrency: int, quiet_seconds: float) -> None:
    """Read the orchestrator with no task waiting, then with ``waiting`` tasks waiting; print the table.

    Between the two, ``control_tasks`` plain tasks run to completion (the control): what handling
    tasks grows once (SQLite's page cache, the allocator's arenas) is in the control's reading
    too, so the change from the control is what the waiting tasks themselves hold.
    """
    with (
        tempfile.TemporaryDirectory(prefix="taskgate-bench-") as work,
        running_stack(pathlib.Path(work), TASKGATE_WORKER_CONCURRENCY=str(WORKER_CONCURRENCY)) as (
            orchestrator,
            gateway,
            key,
        ),
        client_pool(gateway.url, concurrency) as clients,
    ):
        client, pid, store = clients[0], orchestrator.process.pid, pathlib.Path(work)
        for _ in range(WARMUP_REQUESTS):
            plain_task_ms(client, key)
        reject_one_waiting(client, key)
        before = snapshot(client, key, pid, quiet_seconds, store)
        completed = total_count(client, key, "/api/v1/tasks", status="COMPLETED")
        submit_tasks(clients, key, control_tasks, require_approval=False)
        wait_count(client, key, completed + control_tasks, "/api/v1/tasks", status="COMPLETED")
        control = snapshot(client, key, pid, quiet_seconds, store)
        # The list's baseline is a full first page (with none waiting the page is empty).
        started = time.perf_counter()
        first_page = min(LIST_PAGE, waiting)
        submit_seconds = submit_tasks(clients, key, first_page, require_approval=True)
        wait_count(client, key, first_page, "/api/v1/approvals", status="pending")
        first_page_ms = [list_ms(client, key) for _ in range(LIST_SAMPLES)]
        submit_seconds += submit_tasks(clients, key, waiting - first_page, require_approval=True)
        wait_count(client, key, waiting, "/api/v1/approvals", status="pending")
        parked_seconds = time.perf_counter() - started
        after = snapshot(client, key, pid, quiet_seconds, store)

    def spread(values: list[float]) -> str:
        return f"{median(values):.1f} / {percentile(values, 0.95):.1f}"

    def ratio(after_values: list[float], before_values: list[float]) -> str:
        return f"×{divide(median(after_values), median(before_values)):.2f}"

    def per_task_kb(after_mb: float, before_mb: float, kilo: int) -> str:
        return f"{(after_mb - before_mb) * kilo / waiting:+.1f} KB"

    print(
        f"## Waiting approvals: {waiting:,} tasks with require_approval, {WORKER_CONCURRENCY} worker slots, "
        f"quiet windows of {quiet_seconds:g} s"
    )
    print()
    print(
        f"Submitted in {submit_seconds:.1f} s ({waiting / submit_seconds:,.0f}/s from {concurrency} client "
        f"threads); all pending {parked_seconds:.1f} s after the first submission. Control: "
        f"{control_tasks:,} plain tasks run to completion before any waited. Change: from the control."
    )
    print()
    print(f"| orchestrator | no task | control | {waiting:,} waiting | change |")
    print("|---|---|---|---|---|")
    readings = (before, control, after)

    def cells(cell: Callable[[Snapshot], str]) -> list[str]:
        return [cell(reading) for reading in readings]

    rows = [
        [
            "pending approvals / RUNNING tasks",
            *cells(lambda r: f"{r.pending:,} / {r.running:,}"),
            f"{WORKER_CONCURRENCY} worker slots",
        ],
        [
            "RSS MB",
            *cells(lambda r: f"{r.rss_mb:.1f}"),
            f"{per_task_kb(after.rss_mb, control.rss_mb, 1024)} per waiting task "
            f"({per_task_kb(after.rss_mb, before.rss_mb, 1024)} from no task)",
        ],
        [
            f"CPU while idle, s per {quiet_seconds:g} s",
            *cells(lambda r: f"{r.quiet_cpu_seconds:.2f}"),
            f"{after.quiet_cpu_seconds - control.quiet_cpu_seconds:+.2f} s",
        ],
        [
            f"plain task, submit → COMPLETED, p50 / p95 ms ({PLAIN_SAMPLES} in a row)",
            *cells(lambda r: spread(r.plain_ms)),
            ratio(after.plain_ms, control.plain_ms),
        ],
        [
            f"GET /api/v1/approvals?status=pending, first page, p50 / p95 ms ({LIST_SAMPLES} in a row)",
            f"{spread(before.list_ms)} (empty)",
            f"{spread(first_page_ms)} ({first_page} waiting)",
            spread(after.list_ms),
            f"{ratio(after.list_ms, first_page_ms)} (from {first_page} waiting)",
        ],
        [
            "SQLite files MB",
            *cells(lambda r: f"{r.store_mb:.1f}"),
            f"{per_task_kb(after.store_mb, control.store_mb, 1000)} per waiting task",
        ],
    ]
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for and print their Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", choices=("routes", "approvals"), default=["routes", "approvals"]
    )
    parser.add_argument("--requests", type=int, default=300, help="answers per route and round")
    parser.add_argument("--concurrency", type=int, default=10, help="client threads")
    parser.add_argument("--rounds", type=int, default=3, help="runs per route, alternating")
    parser.add_argument("--waiting", type=int, default=2000, help="tasks left waiting for approval")
    parser.add_argument(
        "--control-tasks", type=int, default=4000, help="plain tasks run before any waits (the control)"
    )
    parser.add_argument("--quiet-seconds", type=float, default=10.0, help="idle CPU window")
    args = parser.parse_args(argv)
    requests = max(1, min(args.requests, MAX_REQUESTS))
    concurrency = max(1, min(args.concurrency, MAX_CONCURRENCY, requests))
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    waiting = max(1, min(args.waiting, MAX_WAITING))
    control_tasks = max(0, min(args.control_tasks, MAX_CONTROL_TASKS))
    quiet_seconds = max(1.0, min(args.quiet_seconds, MAX_QUIET_SECONDS))

    if "routes" in args.parts:
        compare_routes(requests, concurrency, rounds)
    if "approvals" in args.parts:
        measure_waiting(waiting, control_tasks, concurrency, quiet_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
