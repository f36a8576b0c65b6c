"""A stack whose event streams are served by stream processes (``taskgate streams``), for tests."""

import contextlib
import dataclasses
import os
import pathlib
import signal
import subprocess

import grpc
import httpx

from taskgate.cli import process_listens_on
from tests.integration.processes import REPO
from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import taskgate_command
from tests.integration.processes import wait_until
from tests.integration.sse import parse_frames


@dataclasses.dataclass
class StreamProcess:
    """One ``taskgate streams`` process; all of a stack's share its ``TASKGATE_STREAM_ADDR``."""

    env: dict
    log_path: pathlib.Path
    process: subprocess.Popen | None = None
    # The checkout whose code runs (a benchmark compares two side by side).
    cwd: pathlib.Path = REPO

    def start(self) -> "StreamProcess":
        """Start it and wait until it logs that it listens."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            taskgate_command("streams"), env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(self._ready, what=f"stream process (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"stream process exited {self.process.returncode}: {self.log_path.read_text()}"
            )
        port = int(self.env["TASKGATE_STREAM_ADDR"].rpartition(":")[2])
        return process_listens_on(self.process.pid, port)

    def open_sockets(self) -> int:
        """How many sockets the process holds (each watcher's connection is one)."""
        fd_dir = f"/proc/{self.process.pid}/fd"
        return sum(1 for fd in os.listdir(fd_dir) if os.readlink(f"{fd_dir}/{fd}").startswith("socket:"))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop it with sig and return its exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclasses.dataclass
class StreamStack:
    """An orchestrator, N stream processes on one port, and a gateway whose admin URL is that port."""

    env: dict
    orchestrator: Orchestrator
    streams: list[StreamProcess]
    gateway: Gateway

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return self.gateway.url

    @property
    def stream_url(self) -> str:
        """The stream processes' shared base URL."""
        return "http://" + self.env["TASKGATE_STREAM_ADDR"]

    def stop(self) -> None:
        """Stop the gateway, the stream processes, then the orchestrator."""
        for process in (self.gateway, *self.streams, self.orchestrator):
            with contextlib.suppress(Exception):
                process.stop()


def start_stream_stack(
    tmp: pathlib.Path,
    stream_processes: int = 2,
    grpc_credentials: grpc.ChannelCredentials | None = None,
    **overrides: str,
) -> StreamStack:
    """Start the orchestrator (relaying events without Redis), the stream processes, and the gateway.

    With ``grpc_credentials`` the services speak TLS (the overrides carry ``TASKGATE_TLS_*``) and the
    gateway reaches the stream processes over https.
    """
    env = base_env(tmp, **overrides)
    if "TASKGATE_REDIS_URL" not in env:
        env["TASKGATE_STREAM_RELAY_PATH"] = str(tmp / "relay.sock")
    scheme = "https" if grpc_credentials is not None else "http"
    env["TASKGATE_ADMIN_URL"] = env["TASKGATE_ADMIN_URL"].replace("http://", f"{scheme}://")
    orchestrator = Orchestrator(
        env=env,
        grpc_addr=env["TASKGATE_GRPC_ADDR"],
        admin_url=env["TASKGATE_ADMIN_URL"],
        log_path=tmp / "orchestrator.log",
        grpc_credentials=grpc_credentials,
    )
    gateway_env = {**env, "TASKGATE_ADMIN_URL": f"{scheme}://" + env["TASKGATE_STREAM_ADDR"]}
    gateway = Gateway(
        env=gateway_env, url="http://" + env["TASKGATE_GATEWAY_BIND"], log_path=tmp / "gateway.log"
    )
    streams = [
        StreamProcess(env=env, log_path=tmp / f"streams-{index}.log") for index in range(stream_processes)
    ]
    stack = StreamStack(env=env, orchestrator=orchestrator, streams=streams, gateway=gateway)
    try:
        orchestrator.start()
        for process in streams:
            process.start()
        gateway.start()
    except BaseException:
        stack.stop()
        raise
    return stack


@dataclasses.dataclass
class ResumingWatcher:
    """A client that follows one workflow to its end, reconnecting with Last-Event-ID when cut."""

    url: str
    headers: dict
    workflow_id: str
    seqs: list[int] = dataclasses.field(default_factory=list)
    connections: int = 0
    done: bool = False

    def run(self, max_connections: int = 20) -> None:
        """Read until the ``done`` frame, reconnecting after a dropped connection."""
        while not self.done and self.connections < max_connections:
            self.connections += 1
            headers = dict(self.headers)
            if self.seqs:
                headers["Last-Event-ID"] = str(self.seqs[-1])
            try:
                with httpx.stream(
                    "GET", self.url, headers=headers, params={"workflow_id": self.workflow_id}, timeout=60
                ) as response:
                    if response.status_code != 200:
                        continue
                    for frame in parse_frames(response.iter_lines()):
                        if frame.id is not None and frame.event not in (None, "error"):
                            self.seqs.append(int(frame.id))
                        if frame.event == "done":
                            self.done = True
                            return
            except httpx.HTTPError:
                continue
