"""Thousands of SSE watchers through gateway → admin server: memory, delivery latency, /health.

Starts its own throwaway processes on 127.0.0.1 (as the integration tests do): one orchestrator on
a SQLite file with the in-process bus, and one gateway (gunicorn, ``--gateway-workers`` gevent
workers; with more than one, a redis-server holds their rate limits) in front of it, fresh for
every point of a sweep. It submits long-running tasks through the gateway (the simulated runner
with ``context.simulation``: one ``LLM_PARTIAL`` event per task every ``0.5 × step_seconds``),
then opens ``--per-task`` watchers per task (``GET
/api/v1/stream/sse?workflow_id=…``) from a separate load-generator process (``bench.sse_watchers``:
asyncio protocols, a few hundred new connections a second), waits until every watcher is streaming
and has received a live delta (under 1 s old), warms up, and measures over a window: deliveries a
second, delivery latency (the event's ``timestamp``, written when the orchestrator records it, to
the moment the watcher's process reads it; same clock; 1 ms resolution), ids out of order (gaps,
duplicates), ``GET /health`` latency probed every 50 ms over a keep-alive connection, the RSS of
the gateway (gunicorn master and workers) and of the orchestrator (``/proc``), the CPU each process
used (``/proc``, % of one core; the machine has two), and the admin server's ``/metrics`` (open
streams, bus subscriptions, cut-offs). Then the same watchers connect straight to the admin server
(service token and identity headers, no gateway) over the same live tasks: the baseline every
gateway figure is compared with.

Sweeps: ``growth`` (watchers 100 → 5,000 at 5 per task, 0.4 events a second per task, so 40 → 2,000
deliveries a second) and ``rate`` (5,000 watchers, the per-task event rate raised: 1,000 → 12,000
deliveries a second asked, stopping once the gateway's p99 latency has passed 100 ms at two points;
a point the growth sweep already measured is not run twice). Each task's step differs from
``--step-seconds`` by up to ±5 % (``task_steps``) so that tasks delayed together do not stay in
lockstep. Phases run gateway first, then direct over the same tasks, the direct watchers resuming
(``Last-Event-ID``) where the gateway's left off, so both replay about the same few events. Rate
limits are base_env's (100,000 requests a minute per caller), far above a run. Bounded: at most
10,000 watchers, 60,000 deliveries a second asked, 120 s windows; every wait has a deadline; it
stops by itself and removes everything it started (also on Ctrl-C). The default run (both sweeps,
also ``make bench``) takes about 12–20 minutes:

    .venv/bin/python -m bench.stream_watchers
    .venv/bin/python -m bench.stream_watchers --sweeps growth --watchers 100 500 1000 2500 5000
    .venv/bin/python -m bench.stream_watchers --sweeps rate --rates 1000 2000 3000 4000 6000 8000 12000
    .venv/bin/python -m bench.stream_watchers --sweeps growth --watchers 100 500 --window 5 --warmup 2

``--trees . ../base`` runs every point once per checkout, alternating within each round (this
venv runs each checkout's services, as the other benches' ``--trees``), so a change is measured
beside the code before it in one invocation.
"""

import argparse
import contextlib
import dataclasses
import datetime
import http.client
import math
import multiprocessing
import os
import pathlib
import resource
import sys
import tempfile
import threading
import time
import urllib.parse

import grpc
import httpx

from bench import sse_watchers
from bench.proc_readings import cpu_seconds
from bench.proc_readings import machine_busy_seconds
from bench.proc_readings import process_tree
from bench.proc_readings import rss_mb
from taskgate import wire
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from tests.integration.processes import REPO
from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import wait_until
from tests.integration.servers import start_redis
from tests.integration.stream_processes import StreamProcess

MAX_WATCHERS = 10_000
MAX_DELIVERIES = 60_000
MAX_WINDOW_SECONDS = 120.0
MAX_GATEWAY_WORKERS = 8
GROWTH_WATCHERS = (100, 500, 1000, 2500, 5000)
RATE_DELIVERIES = (1000, 2000, 3000, 4000, 6000, 8000, 12000)
TARGET_P99_MS = 100.0
TARGET_HEALTH_P99_MS = 20.0
TARGET_RSS_MB = 1000.0
TARGET_DELIVERIES = 8000.0
MAX_STREAM_PROCESSES = 8
GET_TASK_INTERVAL_SECONDS = 0.05
CPU_COLUMNS = ("gateway", "orchestrator", "streams", "watchers", "machine")
MODES = ("gateway", "direct")
SUBMIT_THREADS = 4
SUBMIT_PER_SECOND = 200.0
# Tasks' steps differ by up to this fraction of step_seconds (see task_steps).
STEP_SPREAD = 0.1
HEALTH_INTERVAL_SECONDS = 0.05
# Slack on top of what a phase should take, for the waits that bound it.
READY_SLACK_SECONDS = 30.0
DRAIN_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class Point:
    """One configuration: watchers, watchers per task, and the simulated runner's step."""

    watchers: int
    per_task: int
    step_seconds: float
    # Stream processes serving the streams (0: the orchestrator's admin server, as before them).
    stream_processes: int = 0
    # The checkout whose services run (``--trees``); None: this one.
    tree: pathlib.Path | None = None

    @property
    def layout(self) -> str:
        """Who serves the streams."""
        if self.stream_processes == 0:
            layout = "orchestrator"
        else:
            layout = f"{self.stream_processes} stream process{'es' if self.stream_processes > 1 else ''}"
        return layout if self.tree is None else f"{layout}, {self.tree}"

    @property
    def tasks(self) -> int:
        """Tasks needed for the watchers."""
        return math.ceil(self.watchers / self.per_task)

    @property
    def deliveries(self) -> float:
        """Deliveries a second asked for: one event per task every half step, to each of its watchers."""
        return self.watchers / (0.5 * self.step_seconds)


@dataclasses.dataclass
class Measurement:
    """What one phase (through the gateway, or direct) measured over its window."""

    mode: str
    point: Point
    client: dict
    health_ms: list[float]
    health_errors: int
    rss_gateway_mb: float | None
    rss_orchestrator_mb: float
    cpu: dict[str, float]
    held: int
    subscriptions: int
    cutoffs: int
    worker_streams: list[int]
    # The stream processes' VmRSS summed (0 without them).
    rss_streams_mb: float = 0.0
    # GetTask straight over gRPC during the window (ms), and the same with no watcher at all.
    get_task_ms: list[float] = dataclasses.field(default_factory=list)
    quiet: "QuietReading | None" = None

    @property
    def rate(self) -> float:
        """Deliveries a second over the window."""
        return self.client["deliveries"] / max(self.client["seconds"], 1e-9)

    @property
    def rss_total_mb(self) -> float:
        """Gateway (through it) plus orchestrator plus stream processes."""
        return (self.rss_gateway_mb or 0.0) + self.rss_orchestrator_mb + self.rss_streams_mb

    def get_task(self, fraction: float) -> float | None:
        """A percentile of GetTask's latency during the window."""
        return sse_watchers.percentile(sorted(self.get_task_ms), fraction)

    def health(self, fraction: float) -> float | None:
        """A percentile of the /health probe's latencies."""
        return sse_watchers.percentile(sorted(self.health_ms), fraction)

    @property
    def violations(self) -> int:
        """Ids out of order, streams lost, refused or failed, and error frames."""
        client = self.client
        return (
            client["gaps"]
            + client["duplicates"]
            + client["lost"]
            + client["failed"]
            + sum(client["refused"].values())
            + client["error_frames"]
        )


@dataclasses.dataclass
class QuietReading:
    """The orchestrator with its tasks running and no watcher: GetTask latencies and its CPU."""

    get_task_ms: list[float]
    orchestrator_cpu: float

    def get_task(self, fraction: float) -> float | None:
        """A percentile of GetTask's latency."""
        return sse_watchers.percentile(sorted(self.get_task_ms), fraction)


@dataclasses.dataclass
class Stack:
    """A running orchestrator, stream processes (maybe none) and gateway, a key and its user."""

    env: dict
    orchestrator: Orchestrator
    gateway: Gateway
    key: str
    user_id: str
    tenant_id: str
    streams: list[StreamProcess] = dataclasses.field(default_factory=list)

    @property
    def admin_url(self) -> str:
        """The base URL streams are served on: the stream processes' shared port, else the admin server."""
        if self.streams:
            return "http://" + self.env["TASKGATE_STREAM_ADDR"]
        return self.env["TASKGATE_ADMIN_URL"]

    def stream_pids(self) -> list[int]:
        """The stream processes' pids."""
        return [process.process.pid for process in self.streams]


class GetTaskProbe(threading.Thread):
    """``GetTask`` straight over gRPC every 50 ms, on the tasks being watched; latencies in ms."""

    def __init__(self, grpc_addr: str, key: str, task_ids: list[str]) -> None:
        super().__init__(daemon=True, name="GetTask probe")
        self._addr = grpc_addr
        self._metadata = (("x-api-key", key),)
        self._task_ids = task_ids
        self._stopped = threading.Event()
        self.latencies_ms: list[float] = []
        self.errors = 0

    def run(self) -> None:
        """Call until stopped, on a fixed cadence, cycling over the tasks."""
        with grpc.insecure_channel(self._addr) as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            index = 0
            while not self._stopped.is_set():
                task_id = self._task_ids[index % len(self._task_ids)]
                index += 1
                started = time.perf_counter()
                try:
                    request = tasks_pb2.GetTaskRequest(task_id=task_id)
                    stub.GetTask(request, metadata=self._metadata, timeout=10)
                    self.latencies_ms.append((time.perf_counter() - started) * 1000)
                except grpc.RpcError:
                    self.errors += 1
                self._stopped.wait(GET_TASK_INTERVAL_SECONDS)

    def stop(self) -> None:
        """Stop calling and wait for the thread."""
        self._stopped.set()
        self.join(15)


class HealthProbe(threading.Thread):
    """``GET /health`` every 50 ms over one keep-alive connection; latencies in ms."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True, name="health probe")
        parts = urllib.parse.urlsplit(url)
        self._host, self._port = parts.hostname, parts.port
        self._stopped = threading.Event()
        self.latencies_ms: list[float] = []
        self.errors = 0

    def run(self) -> None:
        """Probe until stopped, on a fixed 50 ms cadence (a slow answer skips the ticks it overran)."""
        connection = http.client.HTTPConnection(self._host, self._port, timeout=5)
        next_at = time.monotonic()
        while not self._stopped.is_set():
            started = time.perf_counter()
            try:
                connection.request("GET", "/health")
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    self.errors += 1
                else:
                    self.latencies_ms.append((time.perf_counter() - started) * 1000)
            except (OSError, http.client.HTTPException):
                self.errors += 1
                connection.close()
                connection = http.client.HTTPConnection(self._host, self._port, timeout=5)
            next_at += HEALTH_INTERVAL_SECONDS
            now = time.monotonic()
            if next_at < now:
                next_at = now + HEALTH_INTERVAL_SECONDS - (now - next_at) % HEALTH_INTERVAL_SECONDS
            self._stopped.wait(next_at - now)
        connection.close()

    def stop(self) -> None:
        """Stop probing and wait for the thread."""
        self._stopped.set()
        self.join(10)


# /proc readings.


def socket_count(pid: int) -> int:
    """Return how many sockets a process holds open."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
    return count


def admin_metrics(admin_url: str) -> dict[str, float]:
    """Return the admin server's open SSE streams, bus subscriptions and cut-offs (all reasons)."""
    values: dict[str, float] = {}
    try:
        text = httpx.get(admin_url + "/metrics", timeout=30).text
    except httpx.HTTPError as ex:
        # A stream process too busy to answer: its counts are missing from this reading, said so.
        _log(f"warning: {admin_url}/metrics did not answer ({type(ex).__name__})")
        text = ""
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return {
        "open": values.get('taskgate_admin_open_streams{transport="sse"}', 0.0),
        "subscriptions": values.get("taskgate_bus_subscriptions", 0.0),
        "cutoffs": sum(
            value for name, value in values.items() if name.startswith("taskgate_admin_stream_cutoffs")
        ),
    }


# The stack and its tasks.


def _raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        print(f"warning: open files limit {soft} < {needed}; streams may fail", file=sys.stderr)


@contextlib.contextmanager
def running_stack(work: pathlib.Path, point: Point, lifetime: float, gateway_workers: int):
    """Start an orchestrator, the point's stream processes and a gateway sized for it; yield a Stack.

    With stream processes the orchestrator relays its events to them over a Unix socket (no Redis
    here), they share one port, and the gateway's admin URL is that port.
    """
    with contextlib.ExitStack() as cleanup:
        env = base_env(
            work,
            TASKGATE_LOG_LEVEL="WARNING",
            TASKGATE_WORKER_CONCURRENCY=str(min(10_000, point.tasks + 10)),
            TASKGATE_TASK_TIMEOUT_SECONDS=str(int(lifetime) + 600),
            TASKGATE_GATEWAY_WORKERS=str(gateway_workers),
            # Each open stream holds a gevent connection; accept is not balanced between workers.
            TASKGATE_GATEWAY_WORKER_CONNECTIONS=str(max(1000, point.watchers + 1000)),
        )
        if point.stream_processes:
            env["TASKGATE_STREAM_RELAY_PATH"] = str(work / "relay.sock")
        tree = (point.tree or REPO).resolve()
        orchestrator = Orchestrator(
            env=env, grpc_addr=env["TASKGATE_GRPC_ADDR"], admin_url=env["TASKGATE_ADMIN_URL"],
            log_path=work / "orchestrator.log", cwd=tree,
        )  # fmt: skip
        cleanup.callback(orchestrator.stop)
        orchestrator.start()
        streams = []
        for index in range(point.stream_processes):
            process = StreamProcess(env=env, log_path=work / f"streams-{index}.log", cwd=tree)
            cleanup.callback(process.stop)
            streams.append(process.start())
        gateway_env = env
        if streams:
            env = {**env, "TASKGATE_ADMIN_URL": "http://" + env["TASKGATE_STREAM_ADDR"]}
            gateway_env = env
        if gateway_workers > 1:
            # More than one gateway worker needs Redis for its limits (gateway.settings); the
            # orchestrator keeps its in-process bus.
            redis_server = start_redis()
            cleanup.callback(redis_server.stop)
            gateway_env = {**env, "TASKGATE_REDIS_URL": redis_server.url}
        gateway_url = "http://" + env["TASKGATE_GATEWAY_BIND"]
        gateway = Gateway(env=gateway_env, url=gateway_url, log_path=work / "gateway.log", cwd=tree)
        cleanup.callback(gateway.stop)
        gateway.start()
        key = create_api_key(env, "bench@example.com")
        me = httpx.get(gateway.url + "/api/v1/auth/me", headers={"X-API-Key": key}, timeout=10).json()
        yield Stack(env, orchestrator, gateway, key, me["user_id"], me["tenant_id"], streams)


def task_steps(point: Point) -> list[float]:
    """Return each task's step: ``step_seconds`` spread evenly over ±STEP_SPREAD/2.

    Equal steps would keep tasks whose events were once delayed together (a stall of the store
    while thousands of streams open) in lockstep for good, and a sweep would measure those bursts
    rather than the rate asked for; slightly different periods disperse them within a few cycles.
    """
    if point.tasks == 1:
        return [point.step_seconds]
    low = point.step_seconds * (1 - STEP_SPREAD / 2)
    width = point.step_seconds * STEP_SPREAD / (point.tasks - 1)
    return [round(low + width * n, 4) for n in range(point.tasks)]


def submit_tasks(stack: Stack, point: Point, partials: int, timeout_seconds: int) -> list[str]:
    """Submit the point's tasks through the gateway at a steady pace; return their workflow ids."""
    steps = task_steps(point)
    workflows: list[str | None] = [None] * point.tasks
    errors: list[str] = []
    threads = min(SUBMIT_THREADS, point.tasks)
    interval = threads / SUBMIT_PER_SECOND

    def submit(first: int) -> None:
        with httpx.Client(base_url=stack.gateway.url, headers={"X-API-Key": stack.key}, timeout=30) as client:
            next_at = time.monotonic()
            for index in range(first, point.tasks, threads):
                simulation = {"partials": partials, "step_seconds": steps[index]}
                body = {"query": "Stream a long answer", "context": {"simulation": simulation}}
                response = client.post("/api/v1/tasks", json={**body, "timeout_seconds": timeout_seconds})
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                    return
                workflows[index] = response.headers["X-Workflow-ID"]
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    workers = [threading.Thread(target=submit, args=(first,)) for first in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise RuntimeError(f"{len(errors)} submissions failed, e.g. {errors[0]}")
    return [workflow for workflow in workflows if workflow is not None]


# One phase: watchers through the gateway, or straight to the admin server.


def _plan(
    stack: Stack, mode: str, point: Point, workflows: list[str], resume: dict[str, int], args
) -> sse_watchers.WatcherPlan:
    if mode == "gateway":
        parts = urllib.parse.urlsplit(stack.gateway.url)
        path = "/api/v1/stream/sse"
        headers = {"X-API-Key": stack.key}
    else:
        parts = urllib.parse.urlsplit(stack.admin_url)
        path = "/stream/sse"
        headers = {
            wire.SERVICE_TOKEN: stack.env["TASKGATE_SERVICE_TOKEN"],
            wire.USER_ID: stack.user_id,
            wire.TENANT_ID: stack.tenant_id,
        }
    # Each task's watchers are spread over the ramp: the first watcher of every task, then the second…
    order = [workflows[index % len(workflows)] for index in range(point.watchers)]
    requests = []
    for workflow in order:
        target = f"{path}?{urllib.parse.urlencode({'workflow_id': workflow})}"
        resume_headers = {"Last-Event-ID": str(resume[workflow])} if resume.get(workflow) else {}
        request = sse_watchers.stream_request(parts.hostname, parts.port, target, headers | resume_headers)
        requests.append(request)
    return sse_watchers.WatcherPlan(
        host=parts.hostname,
        port=parts.port,
        requests=requests,
        workflows=order,
        resume_ids=[resume.get(workflow, 0) for workflow in order],
        connect_rate=args.connect_rate,
        ready_timeout=3 * point.step_seconds + READY_SLACK_SECONDS,
        warmup_seconds=args.warmup,
        window_seconds=args.window,
    )


def _log(message: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def measure(
    stack: Stack, mode: str, point: Point, workflows: list[str], resume: dict[str, int], args
) -> Measurement:
    """Run one phase: open the watchers, measure over the window, read the counters, close them.

    Watchers resume after ``resume``'s id of their workflow (``Last-Event-ID``), as a client that
    reconnects does; the measurement's ``client["last_ids"]`` says where this phase's got to.
    """
    plan = _plan(stack, mode, point, workflows, resume, args)
    before = admin_metrics(stack.admin_url)
    health_url = stack.gateway.url if mode == "gateway" else stack.admin_url
    phase_seconds = point.watchers / args.connect_rate + plan.ready_timeout + args.warmup + args.window + 60
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    watcher_process = context.Process(target=sse_watchers.run, args=(theirs, plan), name="sse watchers")
    watcher_process.start()
    theirs.close()
    probe = HealthProbe(health_url)
    get_task_probe = GetTaskProbe(stack.orchestrator.grpc_addr, stack.key, workflows)
    gateway_pids = orchestrator_pids = stream_pids = []
    try:
        deadline = time.monotonic() + phase_seconds
        while True:
            if not ours.poll(1.0):
                if not watcher_process.is_alive():
                    raise RuntimeError(f"the watcher process exited {watcher_process.exitcode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{mode}: phase did not finish within {phase_seconds:.0f} s")
                continue
            kind, value = ours.recv()
            if kind in ("progress", "ready"):
                _log(
                    f"{mode} {point.watchers}: {kind}: opened {value['asked']}/{value['total']}, "
                    f"streaming {value['streaming']}, receiving {value['receiving']}, "
                    f"failed {value['failed']}, ended {value['ended']}"
                )
            elif kind == "window-start":
                gateway_pids = process_tree(stack.gateway.process.pid)
                orchestrator_pids = process_tree(stack.orchestrator.process.pid)
                stream_pids = stack.stream_pids()
                client_pids = [watcher_process.pid]
                started = time.monotonic()
                cpu_before = {
                    "gateway": cpu_seconds(gateway_pids),
                    "orchestrator": cpu_seconds(orchestrator_pids),
                    "streams": cpu_seconds(stream_pids),
                    "watchers": cpu_seconds(client_pids),
                    "machine": machine_busy_seconds(),
                }
                probe.start()
                get_task_probe.start()
            elif kind == "window-end":
                elapsed = time.monotonic() - started
                cpu = {
                    "gateway": cpu_seconds(gateway_pids) - cpu_before["gateway"],
                    "orchestrator": cpu_seconds(orchestrator_pids) - cpu_before["orchestrator"],
                    "streams": cpu_seconds(stream_pids) - cpu_before["streams"],
                    "watchers": cpu_seconds(client_pids) - cpu_before["watchers"],
                    "machine": machine_busy_seconds() - cpu_before["machine"],
                }
                cpu = {name: seconds / elapsed * 100 for name, seconds in cpu.items()}
                probe.stop()
                get_task_probe.stop()
                gateway_pids = process_tree(stack.gateway.process.pid)
                orchestrator_pids = process_tree(stack.orchestrator.process.pid)
                after = admin_metrics(stack.admin_url)
                measurement = Measurement(
                    mode=mode,
                    point=point,
                    client=value,
                    health_ms=probe.latencies_ms,
                    health_errors=probe.errors,
                    rss_gateway_mb=rss_mb(gateway_pids) if mode == "gateway" else None,
                    rss_orchestrator_mb=rss_mb(orchestrator_pids),
                    cpu=cpu,
                    held=int(after["open"]) if not stack.streams else value["streaming"],
                    subscriptions=int(after["subscriptions"]),
                    # Stream processes count their own cut-offs; the watchers see each as an error frame.
                    cutoffs=(
                        value["error_frames"] if stack.streams else int(after["cutoffs"] - before["cutoffs"])
                    ),
                    worker_streams=(
                        [socket_count(pid) // 2 for pid in gateway_pids[1:]] if mode == "gateway" else []
                    ),
                    rss_streams_mb=rss_mb(stream_pids) if stream_pids else 0.0,
                    get_task_ms=get_task_probe.latencies_ms,
                )
                ours.send("close")
                break
        watcher_process.join(30)
        return measurement
    finally:
        if probe.is_alive():
            probe.stop()
        if get_task_probe.is_alive():
            get_task_probe.stop()
        with contextlib.suppress(OSError):
            ours.send("close")
        if watcher_process.is_alive():
            watcher_process.join(5)
        if watcher_process.is_alive():
            watcher_process.kill()
            watcher_process.join()
        ours.close()


def wait_for_no_streams(stack: Stack) -> None:
    """Wait until the admin server holds no stream (the last phase's watchers are gone)."""
    if stack.streams:
        # Each stream process counts its own streams; its sockets show them all.
        with contextlib.suppress(AssertionError):
            baseline = 8
            wait_until(
                lambda: all(socket_count(pid) <= baseline for pid in stack.stream_pids()),
                timeout=DRAIN_SECONDS,
                interval=0.5,
                what="the previous watchers' streams to close",
            )
        return
    with contextlib.suppress(AssertionError):
        wait_until(
            lambda: admin_metrics(stack.admin_url)["open"] == 0,
            timeout=DRAIN_SECONDS,
            interval=0.5,
            what="the previous watchers' streams to close",
        )
        return
    still_open = admin_metrics(stack.admin_url)["open"]
    _log(f"warning: {still_open:.0f} streams still open after {DRAIN_SECONDS:g} s")


def measure_quiet(stack: Stack, workflows: list[str], seconds: float) -> QuietReading:
    """GetTask's latency and the orchestrator's CPU with the tasks running and no watcher."""
    wait_until(
        lambda: _has_events(stack, workflows[-1], 4),
        timeout=60,
        interval=0.5,
        what="the last task to stream its deltas",
    )
    pids = process_tree(stack.orchestrator.process.pid)
    probe = GetTaskProbe(stack.orchestrator.grpc_addr, stack.key, workflows)
    before = cpu_seconds(pids)
    started = time.monotonic()
    probe.start()
    time.sleep(seconds)
    probe.stop()
    cpu = (cpu_seconds(pids) - before) / (time.monotonic() - started) * 100
    return QuietReading(probe.latencies_ms, cpu)


def _has_events(stack: Stack, workflow: str, count: int) -> bool:
    response = httpx.get(
        f"{stack.gateway.url}/api/v1/tasks/{workflow}/events",
        headers={"X-API-Key": stack.key},
        params={"limit": 1},
        timeout=10,
    )
    return response.status_code == 200 and response.json()["count"] >= count


def run_point(point: Point, modes: list[str], args) -> dict[str, Measurement]:
    """Start a stack for the point, submit its tasks, and measure each mode in turn over them."""
    phase = (
        point.watchers / args.connect_rate
        + 3 * point.step_seconds
        + READY_SLACK_SECONDS
        + args.warmup
        + args.window
        + DRAIN_SECONDS
    )
    lifetime = 3 * point.step_seconds + len(modes) * phase + 60
    partials = min(100_000, math.ceil(lifetime / (0.5 * point.step_seconds * (1 - STEP_SPREAD / 2))))
    _log(
        f"point: {point.watchers} watchers, {point.tasks} tasks, step {point.step_seconds:g} s "
        f"({point.deliveries:,.0f} deliveries/s asked), tasks live ~{lifetime:.0f} s"
    )
    results: dict[str, Measurement] = {}
    with (
        tempfile.TemporaryDirectory(prefix="taskgate-bench-") as work,
        running_stack(pathlib.Path(work), point, lifetime, args.gateway_workers) as stack,
    ):
        workflows = submit_tasks(stack, point, partials, int(lifetime) + 600)
        quiet = measure_quiet(stack, workflows, args.quiet)
        _log(
            f"no watchers: GetTask p50 {_ms(quiet.get_task(0.5))} p99 {_ms(quiet.get_task(0.99))} ms, "
            f"orchestrator CPU {quiet.orchestrator_cpu:.0f}%"
        )
        resume: dict[str, int] = {}
        for mode in modes:
            wait_for_no_streams(stack)
            results[mode] = measure(stack, mode, point, workflows, resume, args)
            results[mode].quiet = quiet
            resume = results[mode].client.pop("last_ids")
            _log(f"{mode} {point.watchers}: {summary_line(results[mode])}")
        _log("stopping the stack")
    return results


# Reporting.


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def summary_line(result: Measurement) -> str:
    """One line for the progress log."""
    client = result.client
    return (
        f"{result.rate:,.0f} deliveries/s, p50 {_ms(client['p50_ms'])} p99 {_ms(client['p99_ms'])} "
        f"max {_ms(client['max_ms'])} ms, /health p99 {_ms(result.health(0.99))} ms, "
        f"RSS {result.rss_total_mb:.0f} MB, CPU gw {result.cpu['gateway']:.0f}% orch "
        f"{result.cpu['orchestrator']:.0f}% streams {result.cpu['streams']:.0f}% "
        f"watchers {result.cpu['watchers']:.0f}% machine "
        f"{result.cpu['machine']:.0f}%, GetTask p99 {_ms(result.get_task(0.99))} ms, held {result.held}, "
        f"violations {result.violations}"
    )


TABLE_HEADER = (
    "| watchers | tasks | streams served by | deliveries/s asked | path | deliveries/s "
    "| latency p50 / p95 / p99 / max ms | /health p50 / p99 ms "
    "| RSS gateway + orchestrator + stream processes MB "
    "| CPU % gateway / orchestrator / stream processes / watchers / machine "
    "| GetTask p50 / p99 ms, no watchers → watched | orchestrator CPU %, no watchers → watched "
    "| held / cut off | gaps / dups / lost |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def table_rows(results: dict[str, Measurement]) -> list[str]:
    """Rows for one point: through the gateway, then direct."""
    rows = []
    for mode, result in results.items():
        client = result.client
        point = result.point
        latency = " / ".join(_ms(client[name]) for name in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
        gateway_rss = "–" if result.rss_gateway_mb is None else f"{result.rss_gateway_mb:.0f}"
        streams_rss = f"{result.rss_streams_mb:.0f}" if point.stream_processes else "–"
        rss = f"{gateway_rss} + {result.rss_orchestrator_mb:.0f} + {streams_rss} = {result.rss_total_mb:.0f}"
        cpu = " / ".join(f"{result.cpu[name]:.0f}" for name in CPU_COLUMNS)
        quiet = result.quiet
        get_task = f"{_ms(result.get_task(0.5))} / {_ms(result.get_task(0.99))}"
        orchestrator_cpu = f"{result.cpu['orchestrator']:.0f}"
        if quiet is not None:
            get_task = f"{_ms(quiet.get_task(0.5))} / {_ms(quiet.get_task(0.99))} → {get_task}"
            orchestrator_cpu = f"{quiet.orchestrator_cpu:.0f} → {orchestrator_cpu}"
        lost = client["lost"] + client["failed"] + sum(client["refused"].values())
        rows.append(
            f"| {point.watchers:,} | {point.tasks:,} | {point.layout} | {point.deliveries:,.0f} | {mode} "
            f"| {result.rate:,.0f} | {latency} | {_ms(result.health(0.5))} / {_ms(result.health(0.99))} "
            f"| {rss} | {cpu} | {get_task} | {orchestrator_cpu} | {result.held:,} / {result.cutoffs} "
            f"| {client['gaps']} / {client['duplicates']} / {lost} |"
        )
    return rows


def details(results: dict[str, Measurement]) -> str:
    """A line of the figures the table leaves out: stream opening, the load generator's lag, workers."""
    parts = []
    for mode, result in results.items():
        client = result.client
        split = ""
        if result.worker_streams:
            split = f", streams per worker {'/'.join(map(str, result.worker_streams))}"
        parts.append(
            f"{mode}: stream open p50/p99 {_ms(client['open_p50_ms'])}/{_ms(client['open_p99_ms'])} ms, "
            f"watcher loop lag p99 {_ms(client['lag_p99_ms'])} ms, busiest 100 ms "
            f"×{client['burst'] or 0:.1f} the mean, subscriptions {result.subscriptions}, "
            f"/health errors {result.health_errors}{split}"
        )
    return "; ".join(parts)


def print_table(title: str, points: list[dict[str, Measurement]]) -> None:
    """Print one sweep's Markdown table and its detail lines."""
    print(f"\n### {title}\n")
    print(TABLE_HEADER)
    for results in points:
        for row in table_rows(results):
            print(row)
    print(
        "\nRSS: VmRSS summed, gateway = gunicorn master + workers. CPU: % of one core over the window "
        "(machine: every process on it, of 100 × cores). /health: the server the watchers connect to "
        "(direct: the admin server or a stream process). GetTask: straight over gRPC every 50 ms, with "
        "the tasks running and no watcher, then during the window. held: streams open at the end of "
        "the window (the admin server's count; with stream processes, the watchers').\n"
    )
    for results in points:
        first = next(iter(results.values()))
        print(
            f"- {first.point.watchers:,} watchers at {first.point.deliveries:,.0f}/s, {first.point.layout}: "
            f"{details(results)}"
        )
    sys.stdout.flush()


def verdict(growth: list[dict[str, Measurement]], rate: list[dict[str, Measurement]]) -> list[str]:
    """Say, for the largest point through the gateway, whether each target was met."""
    lines = []
    for results in growth + rate:
        result = results.get("gateway")
        if result is None:
            continue
        checks = [
            ("deliveries/s", result.rate, TARGET_DELIVERIES, "", ">="),
            ("delivery latency p99", result.client["p99_ms"], TARGET_P99_MS, " ms", "<"),
            ("RSS total", result.rss_total_mb, TARGET_RSS_MB, " MB", "<"),
            ("/health p99", result.health(0.99), TARGET_HEALTH_P99_MS, " ms", "<"),
        ]
        verdicts = []
        for name, value, limit, unit, sense in checks:
            met = value is not None and (value >= limit if sense == ">=" else value < limit)
            verdicts.append(f"{name} {_ms(value)}{unit} ({'met' if met else 'missed'}: {sense} {limit:g})")
        point = result.point
        lines.append(
            f"- {point.watchers:,} watchers, {point.deliveries:,.0f}/s asked, {point.layout}: "
            + ", ".join(verdicts)
            + f", {result.held:,} of {point.watchers:,} held, {result.violations} gaps/dups/lost."
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the sweeps asked for and print a Markdown table for each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", nargs="+", choices=("growth", "rate"), default=["growth", "rate"])
    parser.add_argument("--watchers", nargs="+", type=int, default=list(GROWTH_WATCHERS), help="growth sweep")
    parser.add_argument("--rates", nargs="+", type=int, default=list(RATE_DELIVERIES), help="deliveries/s")
    parser.add_argument("--rate-watchers", type=int, default=10_000, help="watchers of the rate sweep")
    parser.add_argument("--per-task", type=int, default=10, help="watchers per task")
    parser.add_argument("--step-seconds", type=float, default=5.0, help="growth sweep: 1 event per 0.5 × S")
    parser.add_argument(
        "--stream-processes",
        nargs="+",
        type=int,
        default=[0, 2],
        help="layouts compared at every point, alternating: 0 = the orchestrator serves the streams",
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every point and layout")
    parser.add_argument(
        "--trees",
        nargs="+",
        type=pathlib.Path,
        default=None,
        help="checkouts whose services run, alternating within every round (this venv runs them all)",
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["gateway"])
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds after all watchers receive")
    parser.add_argument("--quiet", type=float, default=10.0, help="seconds measured with no watcher")
    parser.add_argument("--connect-rate", type=float, default=500.0, help="new watchers a second")
    parser.add_argument("--gateway-workers", type=int, default=2)
    args = parser.parse_args(argv)
    args.window = max(1.0, min(args.window, MAX_WINDOW_SECONDS))
    args.warmup = max(0.0, min(args.warmup, MAX_WINDOW_SECONDS))
    args.quiet = max(1.0, min(args.quiet, MAX_WINDOW_SECONDS))
    args.connect_rate = max(10.0, min(args.connect_rate, 5000.0))
    args.gateway_workers = max(1, min(args.gateway_workers, MAX_GATEWAY_WORKERS))
    per_task = max(1, min(args.per_task, 100))
    step = max(0.05, min(args.step_seconds, 60.0))
    rounds = max(1, min(args.rounds, 5))
    layouts = [max(0, min(count, MAX_STREAM_PROCESSES)) for count in args.stream_processes]
    modes = [mode for mode in MODES if mode in args.modes]
    watchers_list = [max(1, min(count, MAX_WATCHERS)) for count in args.watchers]
    rate_watchers = max(1, min(args.rate_watchers, MAX_WATCHERS))
    rates = [max(1, min(rate, MAX_DELIVERIES)) for rate in args.rates]
    _raise_open_files_limit(2 * max([*watchers_list, rate_watchers]) + 1024)
    trees = args.trees or [None]

    print(
        f"SQLite (stream processes fed by the orchestrator's relay), {args.gateway_workers} gevent gateway "
        f"workers, {per_task} watchers per task, window {args.window:g} s after {args.warmup:g} s warm-up, "
        f"watchers opened at {args.connect_rate:g}/s, {rounds} round(s) alternating layouts "
        f"{', '.join(map(str, layouts))}{' and trees ' + ', '.join(map(str, trees)) if args.trees else ''}; "
        f"{os.cpu_count()} cores, {datetime.date.today().isoformat()}"
    )
    growth: list[dict[str, Measurement]] = []
    rate: list[dict[str, Measurement]] = []
    if "growth" in args.sweeps:
        for count in watchers_list:
            for _ in range(rounds):
                for layout in layouts:
                    for tree in trees:
                        growth.append(run_point(Point(count, per_task, step, layout, tree), modes, args))
        print_table(f"Growth: watchers at {1 / (0.5 * step):g} events/s per task", growth)
    if "rate" in args.sweeps:
        for deliveries in rates:
            for _ in range(rounds):
                for layout in layouts:
                    for tree in trees:
                        point = Point(
                            rate_watchers, per_task, round(2 * rate_watchers / deliveries, 4), layout, tree
                        )
                        rate.append(run_point(point, modes, args))
        print_table(f"Rate: {rate_watchers:,} watchers, event rate raised", rate)
    print()
    for line in verdict(growth, rate):
        print(line)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)
