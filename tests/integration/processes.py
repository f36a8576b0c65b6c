"""Start taskgate's real processes on free ports for integration tests, and stop them."""

import contextlib
import dataclasses
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import httpx
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

REPO = pathlib.Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
UNREACHED_RATE_LIMIT_TIERS = '{"default": {"minute": 100000, "hour": 1000000}}'


def free_port() -> int:
    """Return a TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float = START_TIMEOUT, interval: float = 0.05, what: str = "condition"):
    """Call check until it returns a truthy value, and return that value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def taskgate_command(*args: str) -> list[str]:
    """Return the argv that runs the taskgate command line with this interpreter."""
    return [sys.executable, "-m", "taskgate.cli", *args]


@dataclasses.dataclass
class Orchestrator:
    """One orchestrator process and its addresses."""

    env: dict
    grpc_addr: str
    admin_url: str
    log_path: pathlib.Path
    process: subprocess.Popen | None = None
    # The checkout whose code runs (a benchmark compares two side by side).
    cwd: pathlib.Path = REPO
    # How the start-up health check reaches a TLS gRPC server (None: plaintext).
    grpc_credentials: grpc.ChannelCredentials | None = None

    def start(self) -> "Orchestrator":
        """Start the process and wait until gRPC health answers SERVING."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            taskgate_command("orchestrator"), env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(self._serving, what=f"orchestrator on {self.grpc_addr} (log: {self.log_path})")
        return self

    def _serving(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"orchestrator exited {self.process.returncode}: {self.log_path.read_text()}"
            )
        if self.grpc_credentials is None:
            channel = grpc.insecure_channel(self.grpc_addr)
        else:
            channel = grpc.secure_channel(self.grpc_addr, self.grpc_credentials)
        with channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=0.5
                )
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the process with sig and return its exit status."""
        return _stop(self.process, sig)


@dataclasses.dataclass
class Gateway:
    """One gunicorn gateway process and its URL."""

    env: dict
    url: str
    log_path: pathlib.Path
    process: subprocess.Popen | None = None
    # The checkout whose code runs (a benchmark compares two side by side).
    cwd: pathlib.Path = REPO

    def start(self) -> "Gateway":
        """Start gunicorn and wait until /health answers."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            taskgate_command("gateway"), env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(self._healthy, what=f"gateway on {self.url} (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gateway exited {self.process.returncode}: {self.log_path.read_text()}")
        try:
            return httpx.get(self.url + "/health", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop gunicorn with sig and return its exit status."""
        return _stop(self.process, sig)


def _stop(process: subprocess.Popen | None, sig: int) -> int:
    if process is None or process.poll() is not None:
        return process.returncode if process else 0
    process.send_signal(sig)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def base_env(tmp: pathlib.Path, **overrides: str) -> dict:
    """Return the environment for a throwaway stack whose state lives under tmp."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TASKGATE_")}
    grpc_port, admin_port, gateway_port = free_port(), free_port(), free_port()
    # The services default to production; every test stack says it is a test. The gateway's
    # worker count is its default, as `make run` has it: one without TASKGATE_REDIS_URL, two with.
    env.update(
        TASKGATE_ENV="test",
        TASKGATE_SERVICE_TOKEN=secrets.token_urlsafe(32),
        TASKGATE_DATABASE_URL=f"sqlite:///{tmp / 'taskgate.db'}",
        TASKGATE_GRPC_ADDR=f"127.0.0.1:{grpc_port}",
        TASKGATE_ADMIN_ADDR=f"127.0.0.1:{admin_port}",
        TASKGATE_ORCHESTRATOR_ADDR=f"127.0.0.1:{grpc_port}",
        TASKGATE_ADMIN_URL=f"http://127.0.0.1:{admin_port}",
        # Where `taskgate run` starts its stream processes (a fixed default would collide).
        TASKGATE_STREAM_ADDR=f"127.0.0.1:{free_port()}",
        TASKGATE_GATEWAY_BIND=f"127.0.0.1:{gateway_port}",
        TASKGATE_SIM_STEP_SECONDS="0.1",
        # Limits no test reaches by accident; test_rate_limits.py sets small ones of its own.
        TASKGATE_RATE_LIMIT_TIERS=UNREACHED_RATE_LIMIT_TIERS,
        TASKGATE_RATE_LIMIT_LOGIN_PER_MINUTE="100000",
        TASKGATE_RATE_LIMIT_REFRESH_PER_MINUTE="100000",
        TASKGATE_AUTH_FAILURES_PER_MINUTE="100000",
        TASKGATE_AUTH_FAILURES_PER_HOUR="1000000",
        TASKGATE_LOGIN_THROTTLE_AFTER_FAILURES="100000",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def create_api_key(env: dict, email: str, cwd: pathlib.Path = REPO) -> str:
    """Create a user and API key through `taskgate keys create` (of the checkout ``cwd``); return the key."""
    out = subprocess.run(
        taskgate_command("keys", "create", "--email", email, "--name", "test"),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip().splitlines()[-1]


@dataclasses.dataclass
class Stack:
    """A running orchestrator and gateway sharing one throwaway store."""

    env: dict
    orchestrator: Orchestrator
    gateway: Gateway

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return self.gateway.url

    @property
    def service_token(self) -> str:
        """The shared service token."""
        return self.env["TASKGATE_SERVICE_TOKEN"]

    def stop(self) -> None:
        """Stop the gateway, then the orchestrator."""
        with contextlib.suppress(Exception):
            self.gateway.stop()
        with contextlib.suppress(Exception):
            self.orchestrator.stop()


def start_gateway(tmp: pathlib.Path, **overrides: str) -> Gateway:
    """Start a gateway alone (whatever orchestrator its overrides name, or none) with state under tmp."""
    env = base_env(tmp, **overrides)
    gateway = Gateway(env=env, url="http://" + env["TASKGATE_GATEWAY_BIND"], log_path=tmp / "gateway.log")
    return gateway.start()


def start_stack(tmp: pathlib.Path, **overrides: str) -> Stack:
    """Start an orchestrator and a gateway with state under tmp."""
    env = base_env(tmp, **overrides)
    orchestrator = Orchestrator(
        env=env,
        grpc_addr=env["TASKGATE_GRPC_ADDR"],
        admin_url=env["TASKGATE_ADMIN_URL"],
        log_path=tmp / "orchestrator.log",
    )
    gateway = Gateway(env=env, url="http://" + env["TASKGATE_GATEWAY_BIND"], log_path=tmp / "gateway.log")
    orchestrator.start()
    try:
        gateway.start()
    except BaseException:
        orchestrator.stop()
        raise
    return Stack(env=env, orchestrator=orchestrator, gateway=gateway)


@contextlib.contextmanager
def taskgate_run(env: dict, cwd: pathlib.Path):
    """Run `taskgate run` until its banner is printed; yield the process and the output so far.

    The output keeps being drained in the background, so children logging to the shared pipe never
    block; on exit a process still running is killed.
    """
    process = subprocess.Popen(
        taskgate_command("run"), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    banner_printed = threading.Event()

    def drain():
        for line in process.stdout:
            output.append(line)
            if "Ctrl-C" in line:
                banner_printed.set()
        banner_printed.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        banner_printed.wait(timeout=START_TIMEOUT * 2)
        assert process.poll() is None, "".join(output)
        yield process, "".join(output)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
