"""What the orchestrator's ``GetTask`` costs a call, against a bare grpc.aio servicer answering from memory.

Starts its own throwaway processes on 127.0.0.1: an orchestrator (on a SQLite file, or with
``--store postgres`` on a throwaway PostgreSQL cluster), optionally a second one from another
checkout (``--before``, the commit before a change, side by side), and the baseline: a bare
grpc.aio server in a process of its own (this module, ``bare-server``) with the TaskService's
``GetTask`` alone, no interceptor, no store, answering every call with the very ``GetTaskResponse``
the orchestrator answered for the seeded task, parsed once and held in memory.

The seeded task is one the simulated runner ran to its end, so it carries the task's usual
fields (result, usage, model, timestamps, context). Each orchestrator is called two ways:
``direct`` as a service calling it straight with its API key (resolved, scope-checked and counted
in the in-process rate-limit windows), and ``forwarded`` as the gateway forwards a call (service
token, the caller's identity, a request id). The bare server gets the same metadata as the calls
it stands beside.

One client (grpc.aio in this process, ``--concurrency`` calls in flight on one channel) loads each
server in turn for ``--seconds``, for ``--rounds`` rounds, alternating, so drift on the machine
hits every server alike. Each run reports calls a second and the server's CPU time per call read
from /proc (user and system, every thread), which other load distorts far less than throughput;
the summary gives each server's median and its ratio to the bare server's median CPU per call.

The orchestrators log at ``--log-level`` (INFO, their default: one line a call); ``--also
NAME:VAR=VALUE,...`` starts one more orchestrator of this checkout with other settings, a row of
its own (``quiet:TASKGATE_LOG_LEVEL=WARNING`` shows what the call log costs).

    .venv/bin/python -m bench.unary_cost --seconds 6 --rounds 5 --concurrency 16 \
        --before ../taskgate-before --also quiet:TASKGATE_LOG_LEVEL=WARNING

Bounded: at most 60 s a run and 7 rounds; it stops by itself and removes everything it started.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import grpc

from bench.proc_readings import cpu_seconds
from taskgate import wire
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import auth_pb2_grpc
from taskgate.orchestrator.v1 import common_pb2
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from tests.integration.processes import REPO
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import free_port
from tests.integration.processes import wait_until

MAX_SECONDS = 60.0
MAX_ROUNDS = 7
ROOMY_TIERS = '{"default": {"minute": 10000000, "hour": 10000000}}'
BARE = "bare"
MODES = ("direct", "forwarded")
SEED_QUERY = "Summarise the trade-offs of write-ahead logging for a small service in three points."


@dataclasses.dataclass(frozen=True)
class Target:
    """One server the client loads: its name, address, process and the metadata of its calls."""

    name: str
    mode: str
    address: str
    pid: int
    task_id: str
    metadata: tuple[tuple[str, str], ...]


@dataclasses.dataclass
class Run:
    """One load run against one server."""

    calls: int
    errors: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        """Calls a second."""
        return self.calls / self.seconds

    @property
    def cpu_us(self) -> float:
        """The server's CPU time per call, in microseconds."""
        return self.cpu_seconds / max(self.calls, 1) * 1e6


# The baseline server.


class BareTaskService(tasks_pb2_grpc.TaskServiceServicer):
    """GetTask alone, answering every call with one response held in memory."""

    def __init__(self, response: tasks_pb2.GetTaskResponse) -> None:
        self._response = response

    async def GetTask(  # noqa: N802 (gRPC method names are PascalCase)
        self, request: tasks_pb2.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.GetTaskResponse:
        """Return the held response."""
        return self._response


async def _serve_bare(port: int, response_file: pathlib.Path) -> None:
    response = tasks_pb2.GetTaskResponse.FromString(response_file.read_bytes())
    server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(BareTaskService(response), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(None)


@contextlib.contextmanager
def bare_server(response: tasks_pb2.GetTaskResponse, work: pathlib.Path) -> Iterator[tuple[str, int]]:
    """Run the bare server in a process of its own; yield its address and pid."""
    response_file = work / "get-task-response.bin"
    response_file.write_bytes(response.SerializeToString())
    port = free_port()
    address = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.unary_cost", "bare-server", "--port", str(port), str(response_file)],
        cwd=REPO,
    )
    try:
        with grpc.insecure_channel(address) as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            wait_until(lambda: _answers(stub), what="the bare server")
        yield address, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(stub: tasks_pb2_grpc.TaskServiceStub) -> bool:
    try:
        stub.GetTask(tasks_pb2.GetTaskRequest(task_id="x"), timeout=0.5)
    except grpc.RpcError:
        return False
    return True


# The orchestrators and their seeded task.


@dataclasses.dataclass(frozen=True)
class Seeded:
    """A running orchestrator, its seeded task and the metadata of each way of calling it."""

    orchestrator: Orchestrator
    task_id: str
    response: tasks_pb2.GetTaskResponse
    metadata: dict[str, tuple[tuple[str, str], ...]]


def seed(orchestrator: Orchestrator, env: dict, checkout: pathlib.Path) -> Seeded:
    """Make a user and key, run one task to its end, and return how to call GetTask for it."""
    key = create_api_key(env, "bench@example.com", cwd=checkout)
    service_token = env["TASKGATE_SERVICE_TOKEN"]
    with grpc.insecure_channel(orchestrator.grpc_addr) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        direct = ((wire.API_KEY, key),)
        submitted = tasks.SubmitTask(
            tasks_pb2.SubmitTaskRequest(
                query=SEED_QUERY, context_json='{"source": "bench", "priority": "normal"}', mode="standard"
            ),
            metadata=direct,
            timeout=30,
        )
        task_id = submitted.task.task_id
        request = tasks_pb2.GetTaskRequest(task_id=task_id)

        def finished() -> tasks_pb2.GetTaskResponse | None:
            response = tasks.GetTask(request, metadata=direct, timeout=30)
            return response if response.task.status == common_pb2.TASK_STATUS_COMPLETED else None

        response = wait_until(finished, timeout=120, interval=0.2, what="the seeded task to finish")
        principal = (
            auth_pb2_grpc.AuthServiceStub(channel)
            .ValidateApiKey(
                auth_pb2.ValidateApiKeyRequest(api_key=key),
                metadata=((wire.SERVICE_TOKEN, service_token),),
                timeout=30,
            )
            .principal
        )
    forwarded = (
        (wire.SERVICE_TOKEN, service_token),
        (wire.REQUEST_ID, "req-0123456789abcdef0123456789abcdef"),
        (wire.USER_ID, principal.user_id),
        (wire.TENANT_ID, principal.tenant_id),
        (wire.ROLE, principal.role),
        (wire.API_KEY_ID, principal.api_key_id),
    )
    return Seeded(orchestrator, task_id, response, {"direct": direct, "forwarded": forwarded})


@contextlib.contextmanager
def orchestrator(
    work: pathlib.Path, checkout: pathlib.Path, database_url: str | None, overrides: dict[str, str]
) -> Iterator[Seeded]:
    """Start an orchestrator of a checkout (its environment plus ``overrides``), seed it; stop it after."""
    work.mkdir(parents=True, exist_ok=True)
    database = {"TASKGATE_DATABASE_URL": database_url} if database_url else {}
    env = base_env(
        work,
        TASKGATE_RATE_LIMIT_TIERS=ROOMY_TIERS,
        TASKGATE_SIM_STEP_SECONDS="0.05",
        **database,
        **overrides,
    )
    process = Orchestrator(
        env=env,
        grpc_addr=env["TASKGATE_GRPC_ADDR"],
        admin_url=env["TASKGATE_ADMIN_URL"],
        log_path=work / "orchestrator.log",
        cwd=checkout,
    )
    process.start()
    try:
        yield seed(process, env, checkout)
    finally:
        process.stop()


# Load.


async def _load(target: Target, seconds: float, concurrency: int) -> Run:
    """Call GetTask on one server from ``concurrency`` coroutines for ``seconds``; read its CPU around it."""
    async with grpc.aio.insecure_channel(target.address) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        request = tasks_pb2.GetTaskRequest(task_id=target.task_id)
        # Warm the connection and the server's caches before the measured window.
        for _ in range(50):
            await stub.GetTask(request, metadata=target.metadata, timeout=30)
        calls = [0] * concurrency
        errors = [0] * concurrency
        stop_at = 0.0

        async def caller(index: int) -> None:
            while time.monotonic() < stop_at:
                try:
                    await stub.GetTask(request, metadata=target.metadata, timeout=30)
                except grpc.aio.AioRpcError:
                    errors[index] += 1
                calls[index] += 1

        cpu_before = cpu_seconds([target.pid])
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*(caller(index) for index in range(concurrency)))
        elapsed = time.monotonic() - started
        cpu_used = cpu_seconds([target.pid]) - cpu_before
    return Run(calls=sum(calls), errors=sum(errors), seconds=elapsed, cpu_seconds=cpu_used)


def _report(targets: list[Target], runs: dict[str, list[Run]], concurrency: int) -> None:
    print(f"\nGetTask, {concurrency} calls in flight; server CPU µs per call from /proc\n")
    print("| server | mode | round | calls/s | server CPU µs/call | errors |")
    print("|---|---|---|---|---|---|")
    for target in targets:
        for number, run in enumerate(runs[target.name], start=1):
            print(
                f"| {target.name} | {target.mode} | {number} | {run.rate:,.0f} | {run.cpu_us:,.0f} |"
                f" {run.errors} |"
            )
    print(
        "\n| server | mode | median calls/s | median CPU µs/call | CPU ratio to bare (median) | per round |"
    )
    print("|---|---|---|---|---|---|")
    for target in targets:
        mine = runs[target.name]
        bare = runs[f"{BARE}/{target.mode}"]
        ratios = [run.cpu_us / base.cpu_us for run, base in zip(mine, bare, strict=True)]
        median_ratio = statistics.median(run.cpu_us for run in mine) / statistics.median(
            run.cpu_us for run in bare
        )
        print(
            f"| {target.name} | {target.mode} | {statistics.median(run.rate for run in mine):,.0f} |"
            f" {statistics.median(run.cpu_us for run in mine):,.0f} | {median_ratio:.2f}× |"
            f" {', '.join(f'{ratio:.2f}' for ratio in ratios)} |"
        )


def run_bench(args: argparse.Namespace) -> None:
    """Start the servers, load them in alternating rounds, print every run and the medians."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="taskgate-unary-"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        postgres = None
        if args.store == "postgres":
            from tests.integration.servers import start_postgres  # noqa: PLC0415 (only with --store postgres)

            postgres = start_postgres()
            cleanup.callback(postgres.stop)

        def database_url() -> str | None:
            return postgres.create_database() if postgres is not None else None

        log_level = {"TASKGATE_LOG_LEVEL": args.log_level}
        checkouts = {"orchestrator": (REPO, log_level)}
        if args.before:
            checkouts["before"] = (pathlib.Path(args.before).resolve(), log_level)
        for also in args.also:
            name, _, settings = also.partition(":")
            pairs = (setting.partition("=") for setting in settings.split(",") if setting)
            checkouts[name] = (REPO, {**log_level, **{key: value for key, _, value in pairs}})
        seeded = {
            name: cleanup.enter_context(orchestrator(work / name, checkout, database_url(), overrides))
            for name, (checkout, overrides) in checkouts.items()
        }
        bare_address, bare_pid = cleanup.enter_context(bare_server(seeded["orchestrator"].response, work))
        targets = []
        for mode in args.modes:
            targets.append(
                Target(
                    f"{BARE}/{mode}", mode, bare_address, bare_pid, "x", seeded["orchestrator"].metadata[mode]
                )
            )
            for name, one in seeded.items():
                targets.append(
                    Target(
                        f"{name}/{mode}",
                        mode,
                        one.orchestrator.grpc_addr,
                        one.orchestrator.process.pid,
                        one.task_id,
                        one.metadata[mode],
                    )
                )
        runs: dict[str, list[Run]] = {target.name: [] for target in targets}
        for number in range(1, args.rounds + 1):
            for target in targets:
                run = asyncio.run(_load(target, args.seconds, args.concurrency))
                runs[target.name].append(run)
                print(
                    f"round {number} {target.name}: {run.rate:,.0f} calls/s, {run.cpu_us:,.0f} µs CPU/call,"
                    f" {run.errors} errors",
                    flush=True,
                )
        _report(targets, runs, args.concurrency)


def main() -> None:
    """Run the benchmark, or (``bare-server``) the baseline server it starts."""
    if len(sys.argv) > 1 and sys.argv[1] == "bare-server":
        parser = argparse.ArgumentParser(prog="bench.unary_cost bare-server")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("response_file", type=pathlib.Path)
        args = parser.parse_args(sys.argv[2:])
        asyncio.run(_serve_bare(args.port, args.response_file))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="the orchestrators' TASKGATE_LOG_LEVEL (INFO logs each call)",
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME:VAR=VALUE,...",
        help="one more orchestrator of this checkout with these settings (quiet:TASKGATE_LOG_LEVEL=WARNING)",
    )
    parser.add_argument("--before", help="another checkout whose orchestrator runs side by side")
    args = parser.parse_args()
    if not 0 < args.seconds <= MAX_SECONDS or not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS:g}] and --rounds in 1..{MAX_ROUNDS}")
    run_bench(args)


if __name__ == "__main__":
    main()
