"""The orchestrator's configuration, read once from the environment by taskgate.environment's rules."""

import dataclasses
import json
import os
import re
import socket
from collections.abc import Mapping

from taskgate.environment import Environment
from taskgate.environment import SettingsError
from taskgate.environment import split_address
from taskgate.rate_limit_tiers import BUILT_IN_TIERS
from taskgate.rate_limit_tiers import TierLimits
from taskgate.rate_limit_tiers import read_tiers
from taskgate.service_settings import ServiceSettings
from taskgate.shared_settings import SharedSettings
from taskgate.shared_settings import dev_only_switch
from taskgate.task_rules import MAX_APPROVAL_TIMEOUT_SECONDS
from taskgate.task_rules import MIN_APPROVAL_TIMEOUT_SECONDS
from taskgate.tls import ServerTls

_REPLICA_ID_PATTERN = re.compile(r"[A-Za-z0-9._\-]{1,64}")

RUNNERS = ("simulated", "openai")
# Models of the OpenAI-compatible runner per tier, and USD per 1,000 prompt and completion tokens.
DEFAULT_OPENAI_MODELS = {"small": "gpt-4o-mini", "medium": "gpt-4o", "large": "gpt-4.1"}
DEFAULT_OPENAI_PRICES = {
    "gpt-4o-mini": (0.00015, 0.0006),
    "gpt-4o": (0.0025, 0.01),
    "gpt-4.1": (0.002, 0.008),
}


@dataclasses.dataclass(frozen=True)
class OpenAIRunnerSettings:
    """How the OpenAI-compatible runner reaches its server: URL, key, models, prices, patience."""

    base_url: str
    api_key: str = dataclasses.field(default="", repr=False)
    models: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_OPENAI_MODELS))
    prices: Mapping[str, tuple[float, float]] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_OPENAI_PRICES)
    )
    connect_timeout_seconds: float = 10.0
    # The longest wait for the server's next byte (the answer's start, or its next chunk).
    read_timeout_seconds: float = 60.0
    max_retries: int = 3
    retry_backoff_seconds: float = 0.5

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "OpenAIRunnerSettings":
        """Read the ``TASKGATE_OPENAI_*`` variables; the base URL is required."""
        environment = Environment(environ)
        base_url = environment.url("TASKGATE_OPENAI_BASE_URL", ("http", "https"), require_host=True)
        if base_url is None:
            raise SettingsError(
                "TASKGATE_OPENAI_BASE_URL is required with TASKGATE_RUNNER=openai: "
                "http(s)://host[:port]/v1, the server's chat completions API"
            )
        models = {
            tier: environment.raw(f"TASKGATE_OPENAI_MODEL_{tier.upper()}") or default
            for tier, default in DEFAULT_OPENAI_MODELS.items()
        }
        return cls(
            base_url=base_url.rstrip("/"),
            api_key=environment.raw("TASKGATE_OPENAI_API_KEY") or "",
            models=models,
            prices=_openai_prices(environment),
            connect_timeout_seconds=environment.number(
                "TASKGATE_OPENAI_CONNECT_TIMEOUT_SECONDS", cls.connect_timeout_seconds, 0.1, 600.0
            ),
            read_timeout_seconds=environment.number(
                "TASKGATE_OPENAI_TIMEOUT_SECONDS", cls.read_timeout_seconds, 0.1, 3600.0
            ),
            max_retries=environment.integer("TASKGATE_OPENAI_MAX_RETRIES", cls.max_retries, 0, 10),
            retry_backoff_seconds=environment.number(
                "TASKGATE_OPENAI_RETRY_BACKOFF_SECONDS", cls.retry_backoff_seconds, 0.0, 60.0
            ),
        )


def _openai_prices(environment: Environment) -> dict[str, tuple[float, float]]:
    """Read ``TASKGATE_OPENAI_PRICES`` ({"model": [prompt, completion]}), added to the default prices."""
    prices = dict(DEFAULT_OPENAI_PRICES)
    raw = environment.raw("TASKGATE_OPENAI_PRICES")
    if raw is None:
        return prices
    message = 'TASKGATE_OPENAI_PRICES must be a JSON object {"model": [prompt, completion]} of USD per 1K'
    try:
        value = json.loads(raw)
    except ValueError:
        raise SettingsError(message) from None
    if not isinstance(value, dict):
        raise SettingsError(message)
    for model, pair in value.items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(_is_price(item) for item in pair)):
            raise SettingsError(message)
        prices[model] = (float(pair[0]), float(pair[1]))
    return prices


def _is_price(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


@dataclasses.dataclass(frozen=True)
class OrchestratorSettings(ServiceSettings):
    """Everything the orchestrator process is configured with: the shared fields and its own.

    With ``skip_auth`` on, the development bypass's user is made sure of at start-up.
    """

    grpc_addr: str = "127.0.0.1:50052"
    admin_addr: str = "127.0.0.1:8081"
    database_url: str = dataclasses.field(default="sqlite:///.taskgate/taskgate.db", repr=False)
    replica_id: str = ""
    lease_seconds: float = 30.0
    # How many attempts of a task may end with their replica dying before the task ends FAILED.
    max_attempts: int = 3
    worker_concurrency: int = 100
    # How often an idle worker pool looks for queued work it was not woken for (on PostgreSQL, a
    # notice wakes it at once; this is the fallback while notices are not heard).
    worker_poll_seconds: float = 0.5
    # Running tasks one user may hold at once across all replicas (0: no cap; claims are fair anyway).
    max_running_per_user: int = 0
    # The bounds of one session export (docs/api.md): its JSON's size in bytes and its events.
    session_export_max_bytes: int = 32 * 1024 * 1024
    session_export_max_events: int = 50_000
    sim_step_seconds: float = 0.2
    sse_ping_seconds: float = 10.0
    stream_buffer: int = 1000
    # Task control: a task's running-time limit when its request sets none.
    task_timeout_seconds: int = 600
    # How long a task waits for a human decision before it ends TIMEOUT.
    approval_timeout_seconds: float = 86_400.0
    # The runner tasks run on: the simulated agent, or an OpenAI-compatible server (``openai``).
    runner: str = "simulated"
    openai: OpenAIRunnerSettings | None = None
    # Schedules: the shortest time allowed between two runs, how many one user may have, and how
    # often each replica looks for due ones.
    schedule_min_interval_seconds: int = 60
    schedule_max_per_user: int = 50
    scheduler_poll_seconds: float = 1.0
    # TLS for the gRPC and admin servers (taskgate.tls); None: plaintext.
    tls: ServerTls | None = None
    # Direct gRPC callers with an API key are limited like HTTP callers (orchestrator.call_limits):
    # the same tiers, in the same Redis windows when redis_url is set (waiting at most
    # redis_timeout_seconds for it), with the gateway's fail-closed and off switches. The tiers'
    # token and cost budgets are enforced here, at submission (orchestrator.engine.budgets).
    rate_limit_tiers: Mapping[str, TierLimits] = dataclasses.field(
        default_factory=lambda: dict(BUILT_IN_TIERS)
    )
    redis_timeout_seconds: float = 0.5
    rate_limit_fail_closed: bool = False
    rate_limit_disabled: bool = False
    # Credential abuse: consecutive failed logins of one email before its logins are refused, the
    # first refusal (doubling with each further failure) and its cap; and how many password
    # checks may wait for a hashing slot before more are refused with UNAVAILABLE.
    login_throttle_after_failures: int = 5
    login_throttle_base_seconds: float = 2.0
    login_throttle_max_seconds: float = 900.0
    password_queue_limit: int = 32
    # Active (unrevoked, unexpired) API keys one user may hold at once.
    max_api_keys_per_user: int = 20
    # Stream processes (orchestrator.stream_server): where they listen (all on one port, with
    # SO_REUSEPORT), how many `taskgate run` starts (0: the orchestrator's admin server serves the
    # streams itself), and, without Redis, the Unix socket the orchestrator relays events on
    # (None: no relay; `taskgate run` sets it when it starts stream processes).
    stream_addr: str = "127.0.0.1:8082"
    stream_processes: int = 1
    stream_relay_path: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "OrchestratorSettings":
        """Read and validate the ``TASKGATE_*`` variables; raise SettingsError naming a bad one."""
        environment = Environment(environ)
        shared = SharedSettings.from_env(environment)
        runner = environment.choice("TASKGATE_RUNNER", cls.runner, RUNNERS)
        login_base = environment.number(
            "TASKGATE_LOGIN_THROTTLE_BASE_SECONDS", cls.login_throttle_base_seconds, 0.1, 86_400.0
        )
        return cls(
            **dataclasses.asdict(shared),
            grpc_addr=environment.host_port("TASKGATE_GRPC_ADDR", cls.grpc_addr),
            admin_addr=environment.host_port("TASKGATE_ADMIN_ADDR", cls.admin_addr),
            database_url=_database_url(environment, "TASKGATE_DATABASE_URL", cls.database_url),
            replica_id=_replica_id(environment, "TASKGATE_REPLICA_ID"),
            lease_seconds=environment.number("TASKGATE_LEASE_SECONDS", cls.lease_seconds, 1.0, 3600.0),
            max_attempts=environment.integer("TASKGATE_MAX_ATTEMPTS", cls.max_attempts, 1, 100),
            # 0: this replica serves the API and streams but runs no tasks.
            worker_concurrency=environment.integer(
                "TASKGATE_WORKER_CONCURRENCY", cls.worker_concurrency, 0, 10_000
            ),
            worker_poll_seconds=environment.number(
                "TASKGATE_WORKER_POLL_SECONDS", cls.worker_poll_seconds, 0.05, 3600.0
            ),
            max_running_per_user=environment.integer(
                "TASKGATE_MAX_RUNNING_PER_USER", cls.max_running_per_user, 0, 1_000_000
            ),
            session_export_max_bytes=environment.integer(
                "TASKGATE_SESSION_EXPORT_MAX_BYTES", cls.session_export_max_bytes, 4096, 1 << 40
            ),
            session_export_max_events=environment.integer(
                "TASKGATE_SESSION_EXPORT_MAX_EVENTS", cls.session_export_max_events, 1, 100_000_000
            ),
            sim_step_seconds=environment.number("TASKGATE_SIM_STEP_SECONDS", cls.sim_step_seconds, 0.0, 60.0),
            sse_ping_seconds=environment.number(
                "TASKGATE_SSE_PING_SECONDS", cls.sse_ping_seconds, 0.05, 3600.0
            ),
            stream_buffer=environment.integer("TASKGATE_STREAM_BUFFER", cls.stream_buffer, 1, 1_000_000),
            task_timeout_seconds=environment.integer(
                "TASKGATE_TASK_TIMEOUT_SECONDS", cls.task_timeout_seconds, 1, 86_400
            ),
            approval_timeout_seconds=environment.number(
                "TASKGATE_APPROVAL_TIMEOUT_SECONDS",
                cls.approval_timeout_seconds,
                MIN_APPROVAL_TIMEOUT_SECONDS,
                MAX_APPROVAL_TIMEOUT_SECONDS,
            ),
            runner=runner,
            openai=OpenAIRunnerSettings.from_env(environ) if runner == "openai" else None,
            schedule_min_interval_seconds=environment.integer(
                "TASKGATE_SCHEDULE_MIN_INTERVAL_SECONDS", cls.schedule_min_interval_seconds, 1, 86_400
            ),
            schedule_max_per_user=environment.integer(
                "TASKGATE_SCHEDULE_MAX_PER_USER", cls.schedule_max_per_user, 1, 100_000
            ),
            scheduler_poll_seconds=environment.number(
                "TASKGATE_SCHEDULER_POLL_SECONDS", cls.scheduler_poll_seconds, 0.05, 3600.0
            ),
            tls=ServerTls.from_env(environment),
            rate_limit_tiers=read_tiers(environment),
            redis_timeout_seconds=environment.number(
                "TASKGATE_REDIS_TIMEOUT_SECONDS", cls.redis_timeout_seconds, above_minimum=True
            ),
            rate_limit_fail_closed=environment.boolean("TASKGATE_RATE_LIMIT_FAIL_CLOSED"),
            rate_limit_disabled=dev_only_switch(environment, "TASKGATE_RATE_LIMIT_DISABLED", shared.env),
            login_throttle_after_failures=environment.integer(
                "TASKGATE_LOGIN_THROTTLE_AFTER_FAILURES", cls.login_throttle_after_failures, 1, 1_000_000
            ),
            login_throttle_base_seconds=login_base,
            login_throttle_max_seconds=environment.number(
                "TASKGATE_LOGIN_THROTTLE_MAX_SECONDS", cls.login_throttle_max_seconds, login_base, 86_400.0
            ),
            password_queue_limit=environment.integer(
                "TASKGATE_PASSWORD_QUEUE_LIMIT", cls.password_queue_limit, 0, 100_000
            ),
            max_api_keys_per_user=environment.integer(
                "TASKGATE_MAX_API_KEYS_PER_USER", cls.max_api_keys_per_user, 1, 10_000
            ),
            stream_addr=environment.host_port("TASKGATE_STREAM_ADDR", cls.stream_addr),
            stream_processes=environment.integer("TASKGATE_STREAM_PROCESSES", cls.stream_processes, 0, 64),
            stream_relay_path=environment.raw("TASKGATE_STREAM_RELAY_PATH") or None,
        )

    @property
    def admin_host(self) -> str:
        """The host part of the admin server address."""
        return split_address(self.admin_addr)[0]

    @property
    def admin_port(self) -> int:
        """The port of the admin server address (0 picks a free one)."""
        return split_address(self.admin_addr)[1]

    @property
    def stream_host(self) -> str:
        """The host part of the stream processes' address."""
        return split_address(self.stream_addr)[0]

    @property
    def stream_port(self) -> int:
        """The port the stream processes share."""
        return split_address(self.stream_addr)[1]


def _database_url(environment: Environment, name: str, default: str) -> str:
    """Read the store's URL: an SQLite file or a PostgreSQL server (never quoted back: a password)."""
    value = environment.raw(name)
    if value is None:
        return default
    sqlite = value.startswith("sqlite:///") and value != "sqlite:///"
    postgres = value.startswith(("postgresql://", "postgres://"))
    if not (sqlite or postgres):
        raise SettingsError(
            f"{name} must be sqlite:///relative/path, sqlite:////absolute/path "
            "or postgresql://user:password@host:port/database"
        )
    return value


def _replica_id(environment: Environment, name: str) -> str:
    """Read this replica's name in claims and logs; unset, the host name and process id."""
    value = environment.raw(name)
    if value is None:
        return f"{socket.gethostname()}-{os.getpid()}"
    if _REPLICA_ID_PATTERN.fullmatch(value) is None:
        raise SettingsError(f"{name} must be 1..64 characters of A-Z a-z 0-9 . _ -, got {value!r}")
    return value
