"""Where an open event stream's bytes are, in the stream process and in a gateway worker.

Starts a throwaway stack on 127.0.0.1 (orchestrator on SQLite with its relay, one stream process,
a one-worker gevent gateway), submits long-running tasks, then opens ``--streams`` SSE watchers
twice: straight to the stream process, then through the gateway. Before and after each opening it
has the stream process and the gateway worker each dump a tracemalloc snapshot (started after
start-up, ``--frames`` deep) and reads their VmRSS; it prints the growth per stream, the
allocation sites that grew most (bytes per stream), and the gateway's greenlets' saved stacks.

    .venv/bin/python -m bench.stream_memory --streams 1000

The watchers are plain asyncio protocols in a child process that read and drop what arrives.
tracemalloc slows the probed processes; the figures are bytes, not times.
"""

import argparse
import asyncio
import collections
import contextlib
import multiprocessing
import os
import pathlib
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.parse

import httpx

from bench import sse_watchers
from bench.proc_readings import process_tree
from bench.proc_readings import rss_mb
from taskgate import wire
from tests.integration.processes import REPO
from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import taskgate_command
from tests.integration.processes import wait_until
from tests.integration.stream_processes import StreamProcess

PROBE_DIRECTORY = "TASKGATE_BENCH_MEMORY_PROBE"
# Set: the probed stream process serves /stream/sse through uvicorn and the ASGI app, as before.
UVICORN_SSE = "TASKGATE_BENCH_UVICORN_SSE"
POLL_SECONDS = 0.2
PER_TASK = 10
TOP_SITES = 25


# The probe, run inside the measured processes.


def start_probe(frames: int) -> None:
    """Trace allocations from now on and dump a snapshot whenever a request file appears.

    The bench writes ``request-<label>`` into the directory named by TASKGATE_BENCH_MEMORY_PROBE;
    each process answers with ``<label>-<pid>.snap`` (and ``.extra``: its greenlets), once per label.
    """
    directory = pathlib.Path(os.environ[PROBE_DIRECTORY])
    if frames:
        tracemalloc.start(frames)
    pid = os.getpid()

    def watch() -> None:
        done: set[str] = set()
        while True:
            time.sleep(POLL_SECONDS)
            for request in directory.glob("request-*"):
                label = request.name.removeprefix("request-")
                if label in done:
                    continue
                done.add(label)
                snapshot = tracemalloc.take_snapshot() if frames else tracemalloc.Snapshot([], 1)
                rss = rss_mb([pid])
                trimmed = _trimmed_rss(pid)
                (directory / f"{label}-{pid}.extra").write_text(f"{_greenlet_stacks()} {rss} {trimmed}")
                snapshot.dump(str(directory / f"{label}-{pid}.snap.part"))
                (directory / f"{label}-{pid}.snap.part").rename(directory / f"{label}-{pid}.snap")

    threading.Thread(target=watch, daemon=True, name="memory probe").start()


def _trimmed_rss(pid: int) -> float:
    """VmRSS after glibc's malloc_trim(0) gave its free pages back: what fragmentation held."""
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_mb([pid])


def _greenlet_stacks() -> str:
    """The greenlets alive and the C stack bytes they keep on the heap (none outside gevent)."""
    if "greenlet" not in sys.modules:
        return "0 0"
    import gc

    import greenlet

    saved = [g._stack_saved for g in gc.get_objects() if isinstance(g, greenlet.greenlet)]
    return f"{len(saved)} {sum(saved)}"


def run_probed_streams(frames: int) -> int:
    """A stream process (``taskgate streams``) with the probe; SSE through uvicorn when asked."""
    from orchestrator.stream_server import run_streams

    if os.environ.get(UVICORN_SSE):
        from orchestrator.admin import app

        lean_server = app.AdminServer

        def uvicorn_server(*args: object, sse: object = None, **kwargs: object) -> object:
            return lean_server(*args, **kwargs)

        app.AdminServer = uvicorn_server

    start_probe(frames)
    return run_streams()


GUNICORN_CONFIG = """
exec(compile(open({deploy!r}).read(), {deploy!r}, "exec"))
_deploy_post_worker_init = post_worker_init


def post_worker_init(worker):
    _deploy_post_worker_init(worker)
    from taskgate_memory_probe import start_probe

    start_probe({frames})
"""
PROBE_MODULE = "taskgate_memory_probe"


def write_probe_module(directory: pathlib.Path) -> None:
    """Write the probe as a module of its own, so that it runs in any checkout's processes."""
    import inspect

    parts = [
        "import os, pathlib, sys, threading, time, tracemalloc, contextlib",
        f"PROBE_DIRECTORY = {PROBE_DIRECTORY!r}",
        f"UVICORN_SSE = {UVICORN_SSE!r}",
        f"POLL_SECONDS = {POLL_SECONDS!r}",
    ]
    parts += [inspect.getsource(function) for function in (rss_mb, start_probe, _trimmed_rss)]
    parts += [inspect.getsource(function) for function in (_greenlet_stacks, run_probed_streams)]
    (directory / f"{PROBE_MODULE}.py").write_text("\n\n".join(parts))


# The watchers, in a child process.


class _Watcher(asyncio.Protocol):
    def __init__(self, request: bytes, opened: asyncio.Future) -> None:
        self._request = request
        self._opened = opened

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if not self._opened.done():
            self._opened.set_result(data.split(b"\r\n", 1)[0].decode("latin-1"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            self._opened.set_result("closed before answering")


def _hold(host: str, port: int, requests: list[bytes], rate: float, pipe) -> None:
    asyncio.run(_hold_streams(host, port, requests, rate, pipe))


async def _hold_streams(host: str, port: int, requests: list[bytes], rate: float, pipe) -> None:
    loop = asyncio.get_running_loop()
    transports = []
    opened = []
    for index, request in enumerate(requests):
        future = loop.create_future()
        transport, _ = await loop.create_connection(lambda r=request, f=future: _Watcher(r, f), host, port)
        transports.append(transport)
        opened.append(future)
        if index % 50 == 49:
            await asyncio.sleep(50 / rate)
    results = await asyncio.wait_for(asyncio.gather(*opened), 600)
    pipe.send(collections.Counter(results))
    await loop.run_in_executor(None, pipe.recv)
    for transport in transports:
        transport.close()
    await asyncio.sleep(1)


# The bench.


def _snapshot(directory: pathlib.Path, label: str, pids: list[int]) -> dict[int, pathlib.Path]:
    (directory / f"request-{label}").touch()
    paths = {pid: directory / f"{label}-{pid}.snap" for pid in pids}
    wait_until(lambda: all(path.exists() for path in paths.values()), timeout=120, what=f"snapshot {label}")
    return paths


def _report(name: str, before: pathlib.Path, after: pathlib.Path, streams: int, rss_delta: float) -> None:
    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    traced = sum(stat.size for stat in new.statistics("filename")) - sum(
        stat.size for stat in old.statistics("filename")
    )
    print(f"\n### {name}: {streams} streams\n")
    print(f"- VmRSS growth: {rss_delta * 1024 * 1024 / streams / 1024:.1f} KB a stream")
    print(f"- traced by tracemalloc: {traced / streams / 1024:.1f} KB a stream")
    extra_before = before.with_suffix(".extra").read_text().split()
    extra_after = after.with_suffix(".extra").read_text().split()
    rss_before, trimmed_before = float(extra_before[2]), float(extra_before[3])
    rss_after, trimmed_after = float(extra_after[2]), float(extra_after[3])
    print(
        f"- VmRSS {rss_before:.0f} → {rss_after:.0f} MB; after malloc_trim(0) {trimmed_before:.0f} → "
        f"{trimmed_after:.0f} MB ({(trimmed_after - trimmed_before) * 1024 / streams:.1f} KB a stream)"
    )
    greenlets = int(extra_after[0]) - int(extra_before[0])
    if greenlets:
        stacks = int(extra_after[1]) - int(extra_before[1])
        print(f"- greenlets: {greenlets} more, saved C stacks {stacks / streams / 1024:.1f} KB a stream")
    print("\n| bytes a stream | blocks a stream | where (innermost last) |\n|---|---|---|")
    for stat in new.compare_to(old, "traceback")[:TOP_SITES]:
        frames = [f"{_short(frame.filename)}:{frame.lineno}" for frame in stat.traceback]
        where = " ← ".join(frames[:6])
        print(f"| {stat.size_diff / streams:,.0f} | {stat.count_diff / streams:.1f} | {where} |")
    print("\n| bytes a stream | line |\n|---|---|")
    for stat in new.compare_to(old, "lineno")[:TOP_SITES]:
        frame = stat.traceback[0]
        print(f"| {stat.size_diff / streams:,.0f} | {_short(frame.filename)}:{frame.lineno} |")
    sys.stdout.flush()


def _short(filename: str) -> str:
    for marker in ("site-packages/", "python3.11/", str(REPO) + "/"):
        if marker in filename:
            return filename.rpartition(marker)[2]
    return filename


def _requests(
    host: str, port: int, path: str, headers: dict, workflows: list[str], streams: int
) -> list[bytes]:
    requests = []
    for index in range(streams):
        target = f"{path}?{urllib.parse.urlencode({'workflow_id': workflows[index % len(workflows)]})}"
        requests.append(sse_watchers.stream_request(host, port, target, headers))
    return requests


def _measure(name, directory, pids_by_name, host, port, requests, rate) -> None:
    pids = [pid for pids in pids_by_name.values() for pid in pids]
    before = _snapshot(directory, f"{name}-before", pids)
    rss_before = {key: rss_mb(value) for key, value in pids_by_name.items()}
    ours, theirs = multiprocessing.Pipe()
    holder = multiprocessing.Process(target=_hold, args=(host, port, requests, rate, theirs), daemon=True)
    holder.start()
    answers = ours.recv()
    print(f"\n{name}: {len(requests)} streams, answers {dict(answers)}", flush=True)
    time.sleep(3)
    after = _snapshot(directory, f"{name}-after", pids)
    rss_after = {key: rss_mb(value) for key, value in pids_by_name.items()}
    for key, process_pids in pids_by_name.items():
        delta = rss_after[key] - rss_before[key]
        print(f"- {key}: VmRSS {rss_before[key]:.0f} → {rss_after[key]:.0f} MB")
        for pid in process_pids:
            _report(
                f"{name}, {key} (pid {pid})",
                before[pid],
                after[pid],
                len(requests),
                delta / len(process_pids),
            )
    ours.send("close")
    holder.join(30)


def main(argv: list[str] | None = None) -> int:
    """Run the stack, open the streams both ways, and print where their memory is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--step-seconds", type=float, default=4.0, help="one event per task every 0.5 × S")
    parser.add_argument("--delay", type=float, default=5.0, help="seconds the tasks run before watchers open")
    parser.add_argument("--connect-rate", type=float, default=250.0, help="new watchers a second")
    parser.add_argument("--uvicorn-sse", action="store_true", help="SSE through uvicorn, as before")
    parser.add_argument("--tree", type=pathlib.Path, default=REPO, help="the checkout whose services run")
    parser.add_argument("--direct-only", action="store_true", help="skip the watchers through the gateway")
    parser.add_argument("--frames", type=int, default=8, help="tracemalloc traceback depth (0: VmRSS only)")
    args = parser.parse_args(argv)
    streams = max(10, min(args.streams, 10_000))
    tree = args.tree.resolve()
    with contextlib.ExitStack() as cleanup:
        work = pathlib.Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="taskgate-memory-")))
        probe = work / "probe"
        probe.mkdir()
        env = base_env(
            work,
            TASKGATE_LOG_LEVEL="WARNING",
            TASKGATE_WORKER_CONCURRENCY=str(streams // PER_TASK + 10),
            TASKGATE_TASK_TIMEOUT_SECONDS="3600",
            TASKGATE_GATEWAY_WORKERS="1",
            TASKGATE_GATEWAY_WORKER_CONNECTIONS=str(streams + 1000),
            TASKGATE_STREAM_RELAY_PATH=str(work / "relay.sock"),
        )
        orchestrator = Orchestrator(
            env=env, grpc_addr=env["TASKGATE_GRPC_ADDR"], admin_url=env["TASKGATE_ADMIN_URL"],
            log_path=work / "orchestrator.log", cwd=tree,
        )  # fmt: skip
        cleanup.callback(orchestrator.stop)
        orchestrator.start()
        write_probe_module(work)
        probed = {**env, PROBE_DIRECTORY: str(probe), "PYTHONPATH": str(work)}
        if args.uvicorn_sse:
            probed[UVICORN_SSE] = "1"
        stream_process = _ProbedStreamProcess(
            env=probed, log_path=work / "streams.log", frames=args.frames, cwd=tree
        )
        cleanup.callback(stream_process.stop)
        stream_process.start()
        config = work / "gunicorn.conf.py"
        config.write_text(
            GUNICORN_CONFIG.format(deploy=str(tree / "deploy/gunicorn.conf.py"), frames=args.frames)
        )
        gateway_env = {**probed, "TASKGATE_ADMIN_URL": "http://" + env["TASKGATE_STREAM_ADDR"]}
        gateway = _ConfiguredGateway(
            env=gateway_env, url="http://" + env["TASKGATE_GATEWAY_BIND"], log_path=work / "gateway.log",
            config=str(config), cwd=tree,
        )  # fmt: skip
        cleanup.callback(gateway.stop)
        gateway.start()
        key = create_api_key(env, "memory@example.com", cwd=tree)
        me = httpx.get(gateway.url + "/api/v1/auth/me", headers={"X-API-Key": key}, timeout=10).json()
        workflows = []
        with httpx.Client(base_url=gateway.url, headers={"X-API-Key": key}, timeout=30) as client:
            for _ in range(max(1, streams // PER_TASK)):
                body = {
                    "query": "Stream a long answer",
                    "context": {"simulation": {"partials": 2000, "step_seconds": args.step_seconds}},
                }
                workflows.append(client.post("/api/v1/tasks", json=body).headers["X-Workflow-ID"])
        time.sleep(args.delay)
        worker_pids = process_tree(gateway.process.pid)[1:]
        stream_host, _, stream_port = env["TASKGATE_STREAM_ADDR"].rpartition(":")
        direct_headers = {
            wire.SERVICE_TOKEN: env["TASKGATE_SERVICE_TOKEN"],
            wire.USER_ID: me["user_id"],
            wire.TENANT_ID: me["tenant_id"],
        }
        requests = _requests(stream_host, int(stream_port), "/stream/sse", direct_headers, workflows, streams)
        _measure(
            "direct",
            probe,
            {"stream process": [stream_process.process.pid]},
            stream_host,
            int(stream_port),
            requests,
            args.connect_rate,
        )
        if args.direct_only:
            return 0
        time.sleep(5)
        parts = urllib.parse.urlsplit(gateway.url)
        requests = _requests(
            parts.hostname, parts.port, "/api/v1/stream/sse", {"X-API-Key": key}, workflows, streams
        )
        _measure(
            "gateway",
            probe,
            {"stream process": [stream_process.process.pid], "gateway worker": worker_pids},
            parts.hostname,
            parts.port,
            requests,
            args.connect_rate,
        )
    return 0


class _ProbedStreamProcess(StreamProcess):
    def __init__(self, env: dict, log_path: pathlib.Path, frames: int, cwd: pathlib.Path) -> None:
        super().__init__(env=env, log_path=log_path, cwd=cwd)
        self.frames = frames

    def start(self) -> "StreamProcess":
        import subprocess

        log = self.log_path.open("ab")
        code = f"import sys; from {PROBE_MODULE} import run_probed_streams as r; sys.exit(r({self.frames}))"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(self._ready, what=f"stream process (log: {self.log_path})")
        return self


class _ConfiguredGateway(Gateway):
    def __init__(self, env: dict, url: str, log_path: pathlib.Path, config: str, cwd: pathlib.Path) -> None:
        super().__init__(env=env, url=url, log_path=log_path, cwd=cwd)
        self.config = config

    def start(self) -> "Gateway":
        import subprocess

        log = self.log_path.open("ab")
        command = taskgate_command("gateway", "--config", self.config)
        self.process = subprocess.Popen(
            command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(self._healthy, what=f"gateway on {self.url} (log: {self.log_path})")
        return self


if __name__ == "__main__":
    sys.exit(main())
