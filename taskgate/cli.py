"""The ``taskgate`` command: run everything, run one service, migrate, create API keys, set roles."""

import argparse
import ctypes
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from taskgate import account_rules
from taskgate import api_keys

STATE_DIR = pathlib.Path(".taskgate")
DEV_KEY_FILE = STATE_DIR / "dev-api-key"
# Relative, so the path stays within the length a Unix socket's may have; every child shares the cwd.
STREAM_RELAY_SOCKET = STATE_DIR / "stream-relay.sock"
DEV_EMAIL = "dev@taskgate.local"
DEFAULT_GUNICORN_CONFIG = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen subcommand."""
    parser = argparse.ArgumentParser(prog="taskgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="run the orchestrator and the gateway together (development: TASKGATE_ENV=dev)"
    )
    gateway = commands.add_parser("gateway", help="run the HTTP gateway under gunicorn")
    gateway.add_argument("--config", default=str(DEFAULT_GUNICORN_CONFIG), help="gunicorn config file")
    commands.add_parser("orchestrator", help="run the orchestrator (gRPC and admin stream server)")
    commands.add_parser(
        "streams", help="run a stream process: the event streams served apart from the orchestrator"
    )
    commands.add_parser("migrate", help="apply the store's schema migrations")
    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create an API key (and its user if new)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="cli")
    users = commands.add_parser("users", help="manage users")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    set_role = user_commands.add_parser("set-role", help="give a user the role user, admin or owner")
    set_role.add_argument("--email", required=True)
    set_role.add_argument("--role", required=True, choices=account_rules.ROLES)
    args = parser.parse_args(argv)

    if args.command == "run":
        return run_all()
    if args.command == "gateway":
        return run_gateway(args.config)
    if args.command == "orchestrator":
        from orchestrator.main import run_serve

        return run_serve()
    if args.command == "streams":
        from orchestrator.stream_server import run_streams

        return run_streams()
    if args.command == "migrate":
        from orchestrator.commands import migrate

        migrate(_offline_settings())
        print("migrations applied")
        return 0
    if args.command == "users":
        return run_set_role(args.email, args.role)
    return run_create_key(args.email, args.name)


def run_set_role(email: str, role: str) -> int:
    """Give a user a role through the account engine; print what happened and return the exit status."""
    from orchestrator.commands import set_user_role
    from orchestrator.errors import OrchestratorError
    from orchestrator.errors import UserNotFoundError

    try:
        set_user_role(_offline_settings(), email, role)
    except UserNotFoundError:
        print(f"taskgate: no user with the email {email}", file=sys.stderr)
        return 1
    except OrchestratorError as ex:
        print(f"taskgate: {ex.public_message}", file=sys.stderr)
        return 2
    print(f"{email} is now {role}")
    return 0


def run_create_key(email: str, name: str) -> int:
    """Create an API key (and its user if new) through the engines; print the key, shown this once."""
    from orchestrator.commands import create_api_key
    from orchestrator.errors import OrchestratorError

    try:
        print(create_api_key(_offline_settings(), email, name))
    except OrchestratorError as ex:
        print(f"taskgate: {ex.public_message}", file=sys.stderr)
        return 2
    return 0


def run_gateway(config: str) -> int:
    """Replace this process with gunicorn serving the gateway, once its settings are known to be usable.

    A bad setting is one line and exit status 2, as for the orchestrator, not a gunicorn traceback.
    """
    from gateway.settings import GatewaySettings
    from gateway.settings import SettingsError

    try:
        GatewaySettings.from_env()
    except SettingsError as ex:
        print(f"taskgate gateway: {ex}", file=sys.stderr)
        return 2
    argv = [sys.executable, "-m", "gunicorn", "--config", config]
    os.execv(sys.executable, argv)  # noqa: S606 - fixed argv, no shell
    return 0


def _offline_settings():
    """Return orchestrator settings for commands that only touch the store.

    Such commands never serve or issue tokens, so a missing service token or JWT secret is given a
    throwaway value instead of failing (a configured one is still checked); everything else comes
    from the environment as usual.
    """
    from orchestrator.settings import OrchestratorSettings

    environ = dict(os.environ)
    for name in ("TASKGATE_SERVICE_TOKEN", "TASKGATE_JWT_SECRET"):
        if not environ.get(name, "").strip():
            environ[name] = secrets.token_urlsafe(32)
    return OrchestratorSettings.from_env(environ)


def _dev_api_key() -> str:
    """Return the development key: TASKGATE_DEV_API_KEY, else the one kept under .taskgate/."""
    configured = os.environ.get("TASKGATE_DEV_API_KEY")
    if configured:
        key = api_keys.normalise_api_key(configured)
        if key is None:
            raise SystemExit("TASKGATE_DEV_API_KEY must be sk_ followed by 64 hex characters")
        return key
    if DEV_KEY_FILE.exists():
        key = api_keys.normalise_api_key(DEV_KEY_FILE.read_text())
        if key is not None:
            return key
    key = api_keys.generate_api_key()
    STATE_DIR.mkdir(exist_ok=True)
    DEV_KEY_FILE.touch(mode=0o600)
    DEV_KEY_FILE.write_text(key + "\n")
    return key


def _local_host(host: str) -> str:
    """Return the address to reach a service listening on host from this machine."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host.strip("[]")  # noqa: S104


def _wait_for_port(address: str, process: subprocess.Popen, name: str) -> None:
    """Wait until address accepts connections, failing fast if the process exits first."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with status {process.returncode} during start-up")
        try:
            with socket.create_connection((_local_host(host), int(port)), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{name} did not listen on {address} within {START_TIMEOUT_SECONDS:.0f} s")


def _wait_for_health(url: str, process: subprocess.Popen) -> None:
    """Wait until the gateway answers its health route."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gateway exited with status {process.returncode} during start-up")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - local http URL
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"gateway did not answer {url} within {START_TIMEOUT_SECONDS:.0f} s")


def _die_with_parent() -> None:
    """In a child, ask Linux to send SIGTERM when `taskgate run` dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(processes: list[subprocess.Popen]) -> None:
    """Ask each process to stop, then kill whatever is still running after the grace period."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_all() -> int:
    """Start the orchestrator and the gateway in the foreground until Ctrl-C or one of them dies."""
    from gateway.settings import GatewaySettings
    from orchestrator.commands import ensure_api_key
    from orchestrator.commands import migrate
    from orchestrator.settings import OrchestratorSettings
    from orchestrator.settings import SettingsError

    environ = dict(os.environ)
    # The services default to production; this command is the development setup, so it asks for
    # dev unless the operator chose an environment.
    if not environ.get("TASKGATE_ENV", "").strip():
        environ["TASKGATE_ENV"] = "dev"
    # One token per run unless the operator fixed one: both children get it, nobody else needs it.
    environ.setdefault("TASKGATE_SERVICE_TOKEN", secrets.token_urlsafe(32))
    try:
        orchestrator_settings = OrchestratorSettings.from_env(environ)
        gateway_environ = _with_stream_processes(environ, orchestrator_settings)
        gateway_settings = GatewaySettings.from_env(gateway_environ)
    except (SettingsError, ValueError) as ex:
        print(f"taskgate: {ex}", file=sys.stderr)
        return 2
    STATE_DIR.mkdir(exist_ok=True)
    api_key = _dev_api_key()
    migrate(orchestrator_settings)
    ensure_api_key(orchestrator_settings, DEV_EMAIL, api_key, "dev")

    command = [sys.executable, "-m", "taskgate.cli"]
    processes: list[subprocess.Popen] = []
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        # Children get their own process group so a terminal Ctrl-C reaches only us; we stop them in order.
        orchestrator = subprocess.Popen(
            [*command, "orchestrator"], env=environ, process_group=0, preexec_fn=_die_with_parent
        )
        processes.append(orchestrator)
        _wait_for_port(orchestrator_settings.grpc_addr, orchestrator, "orchestrator")
        _wait_for_port(orchestrator_settings.admin_addr, orchestrator, "orchestrator admin server")
        # The stream processes and the gateway start side by side: each stream process binds the
        # shared port itself, and the gateway reaches them only when a stream is asked for.
        streams = [
            subprocess.Popen([*command, "streams"], env=environ, process_group=0, preexec_fn=_die_with_parent)
            for _ in range(orchestrator_settings.stream_processes)
        ]
        processes[:0] = streams
        gateway = subprocess.Popen(
            [*command, "gateway"], env=gateway_environ, process_group=0, preexec_fn=_die_with_parent
        )
        processes.insert(0, gateway)
        for process in streams:
            _wait_for_stream_process(orchestrator_settings.stream_addr, process)
        base_url = "http://" + gateway_settings.bind.replace("0.0.0.0", "localhost")  # noqa: S104
        _wait_for_health(base_url + "/health", gateway)
        print(_banner(base_url, api_key), flush=True)
        while not stopping:
            for process in processes:
                if process.poll() is not None:
                    name = process.args[-1]
                    print(f"taskgate: {name} exited with status {process.returncode}", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        print("taskgate: stopping", flush=True)
        return 0
    except SystemExit as ex:
        print(f"taskgate: {ex}", file=sys.stderr)
        return 1
    finally:
        _stop(processes)


def _with_stream_processes(environ: dict[str, str], settings) -> dict[str, str]:
    """Prepare the environment for stream processes; return the gateway's (its admin URL on them).

    With stream processes (``TASKGATE_STREAM_PROCESSES`` > 0) the gateway sends its streams to
    ``TASKGATE_STREAM_ADDR`` (https when TLS is on), and without Redis the orchestrator relays its
    events over ``TASKGATE_STREAM_RELAY_PATH`` (set here to a socket under .taskgate/ unless chosen).
    With none, the orchestrator's admin server serves the streams, as the gateway's settings say.
    """
    if settings.stream_processes == 0:
        return environ
    if settings.redis_url is None and not settings.stream_relay_path:
        environ["TASKGATE_STREAM_RELAY_PATH"] = str(STREAM_RELAY_SOCKET)
    scheme = "https" if settings.tls is not None else "http"
    return {
        **environ,
        "TASKGATE_ADMIN_URL": f"{scheme}://{_local_host(settings.stream_host)}:{settings.stream_port}",
    }


def _wait_for_stream_process(address: str, process: subprocess.Popen) -> None:
    """Wait until a stream process itself listens on the port (which may already be a sibling's)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    port = address.rpartition(":")[2]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"stream process exited with status {process.returncode} during start-up")
        if process_listens_on(process.pid, int(port)):
            return
        time.sleep(0.1)
    raise SystemExit(f"stream process did not listen on {address} within {START_TIMEOUT_SECONDS:.0f} s")


def process_listens_on(pid: int, port: int) -> bool:
    """Whether the process holds a TCP socket listening on the port (Linux: read from /proc)."""
    try:
        inodes = {
            os.readlink(f"/proc/{pid}/fd/{fd}")[len("socket:[") : -1]
            for fd in os.listdir(f"/proc/{pid}/fd")
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")
        }
    except OSError:
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            listening = fields[3] == "0A"
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                return True
    return False


def _banner(base_url: str, api_key: str) -> str:
    """Return what a developer needs to start using the running gateway."""
    return f"""
taskgate is running: gateway {base_url}, web console {base_url}/ui (sign in with the key below)

  export TASKGATE_API_KEY={api_key}
  curl -s -H "X-API-Key: $TASKGATE_API_KEY" -d '{{"query":"What is 2+2?"}}' {base_url}/api/v1/tasks
  curl -N -H "X-API-Key: $TASKGATE_API_KEY" "{base_url}/api/v1/stream/sse?workflow_id=<task_id>"

Ctrl-C stops everything.
"""


if __name__ == "__main__":
    sys.exit(main())
