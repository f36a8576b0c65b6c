"""Throwaway redis-server and PostgreSQL instances on free ports, started once per test session.

Each lives in its own temporary directory (data, unix socket, log), listens on 127.0.0.1 only,
skips durability (no fsync, no snapshots), and is removed with its directory at the end.
PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` OS user (which the
Debian package creates; ``scripts/ensure_test_servers.sh`` creates it when missing).
"""

import contextlib
import dataclasses
import glob
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import psycopg

START_TIMEOUT = 30.0
POSTGRES_SUPERUSER = "postgres"


class ServerUnavailableError(RuntimeError):
    """A test server cannot be started here; the message says why (tests skip with it)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen | None, log: pathlib.Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerUnavailableError(f"{what} exited {process.returncode}: {_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise ServerUnavailableError(
        f"{what} did not listen on port {port} within {START_TIMEOUT:g} s: {_tail(log)}"
    )


def _tail(log: pathlib.Path) -> str:
    with contextlib.suppress(OSError):
        return log.read_text(errors="replace")[-2000:]
    return "(no log)"


@dataclasses.dataclass
class RedisServer:
    """A redis-server process and its URL; it can be halted and started again on the same port."""

    binary: str
    port: int
    directory: pathlib.Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the process (again) and wait until it listens."""
        log = self.directory / "redis.log"
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_for_port(self.port, self.process, log, "redis-server")
        except BaseException:
            self.halt()
            raise

    def halt(self) -> None:
        """Kill the process at once (an outage); its data is lost, as with a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self.halt()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_redis() -> RedisServer:
    """Start a redis-server without persistence on a free port; raise ServerUnavailableError if absent."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailableError("redis-server is not installed (run scripts/ensure_test_servers.sh)")
    directory = pathlib.Path(tempfile.mkdtemp(prefix="taskgate-redis-"))
    server = RedisServer(binary=binary, port=_free_port(), directory=directory)
    try:
        server.start()
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return server


@dataclasses.dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster: its port and the commands to manage it."""

    port: int
    directory: pathlib.Path
    bin_dir: pathlib.Path
    run_as: list[str]

    @property
    def data_dir(self) -> pathlib.Path:
        """The cluster's data directory."""
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        """Return the URL of one database of the cluster (trust authentication, no password)."""
        return f"postgresql://{POSTGRES_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "taskgate") -> str:
        """Create a new empty database and return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def halt(self) -> None:
        """Stop the cluster (an outage: every connection is cut), keeping its data for ``start``.

        A fast shutdown, not an immediate one: with fsync and synchronous commit off, only a clean
        shutdown keeps the last commits.
        """
        self._pg_ctl_stop("fast")

    def start(self) -> None:
        """Start the cluster (again) and wait until it accepts connections."""
        _pg_ctl_start(self)

    def stop(self) -> None:
        """Stop the cluster at once and remove its directory."""
        self._pg_ctl_stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def _pg_ctl_stop(self, mode: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )


def postgres_bin_dir() -> pathlib.Path | None:
    """Return the directory of initdb/pg_ctl (the newest Debian cluster version, else PATH)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(pathlib.Path(path).parts[4])
    )
    if candidates:
        return pathlib.Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return pathlib.Path(initdb).parent if initdb else None


def _run_as_for_postgres(directory: pathlib.Path) -> list[str]:
    """Return the command prefix that runs PostgreSQL's tools as a user they accept."""
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam(POSTGRES_SUPERUSER)
    except KeyError:
        raise ServerUnavailableError(
            "running as root and there is no postgres OS user (run scripts/ensure_test_servers.sh)"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServerUnavailableError("running as root and runuser is missing")
    os.chown(directory, account.pw_uid, account.pw_gid)
    return [runuser, "-u", POSTGRES_SUPERUSER, "--"]


def start_postgres() -> PostgresServer:
    """Create and start a cluster on a free port, fsync off; raise ServerUnavailableError if absent."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise ServerUnavailableError("PostgreSQL is not installed (run scripts/ensure_test_servers.sh)")
    directory = pathlib.Path(tempfile.mkdtemp(prefix="taskgate-pg-"))
    try:
        run_as = _run_as_for_postgres(directory)
        server = PostgresServer(port=_free_port(), directory=directory, bin_dir=bin_dir, run_as=run_as)
        _initdb(server)
        server.start()
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return server


def _initdb(server: PostgresServer) -> None:
    result = subprocess.run(
        [
            *server.run_as,
            str(server.bin_dir / "initdb"),
            "-D", str(server.data_dir),
            "-U", POSTGRES_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise ServerUnavailableError(f"initdb failed: {result.stderr[-2000:]}")


def _pg_ctl_start(server: PostgresServer) -> None:
    options = " ".join(
        [
            f"-p {server.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={server.directory}",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c max_connections=300",
            "-c shared_buffers=64MB",
        ]
    )
    log = server.directory / "postgres.log"
    result = subprocess.run(
        [
            *server.run_as,
            str(server.bin_dir / "pg_ctl"),
            "-D", str(server.data_dir),
            "-l", str(log),
            "-o", options,
            "-w",
            "-t", str(int(START_TIMEOUT)),
            "start",
        ],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT + 30,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise ServerUnavailableError(f"pg_ctl start failed: {result.stderr[-1000:]} {_tail(log)}")
    _wait_for_port(server.port, None, log, "postgres")
