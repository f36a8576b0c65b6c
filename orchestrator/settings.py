"""The orchestrator's configuration, read once from the environment."""

import dataclasses
import json
import os
import re
import socket
from collections.abc import Mapping

from taskgate import dev_bypass
from taskgate import jwt_secret

ENVIRONMENTS = ("dev", "test", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_REPLICA_ID_PATTERN = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_ADDRESS_PATTERN = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]*):(?P<port>\d{1,5})$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


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
        base_url = _raw(environ, "TASKGATE_OPENAI_BASE_URL")
        if base_url is None or not base_url.startswith(("http://", "https://")):
            raise SettingsError(
                "TASKGATE_OPENAI_BASE_URL is required with TASKGATE_RUNNER=openai: "
                "http(s)://host[:port]/v1, the server's chat completions API"
            )
        models = {
            tier: _raw(environ, f"TASKGATE_OPENAI_MODEL_{tier.upper()}") or default
            for tier, default in DEFAULT_OPENAI_MODELS.items()
        }
        return cls(
            base_url=base_url.rstrip("/"),
            api_key=_raw(environ, "TASKGATE_OPENAI_API_KEY") or "",
            models=models,
            prices=_openai_prices(environ),
            connect_timeout_seconds=_number(
                environ, "TASKGATE_OPENAI_CONNECT_TIMEOUT_SECONDS", cls.connect_timeout_seconds, 0.1, 600.0
            ),
            read_timeout_seconds=_number(
                environ, "TASKGATE_OPENAI_TIMEOUT_SECONDS", cls.read_timeout_seconds, 0.1, 3600.0
            ),
            max_retries=_integer(environ, "TASKGATE_OPENAI_MAX_RETRIES", cls.max_retries, 0, 10),
            retry_backoff_seconds=_number(
                environ, "TASKGATE_OPENAI_RETRY_BACKOFF_SECONDS", cls.retry_backoff_seconds, 0.0, 60.0
            ),
        )


def _openai_prices(environ: Mapping[str, str]) -> dict[str, tuple[float, float]]:
    """Read ``TASKGATE_OPENAI_PRICES`` ({"model": [prompt, completion]}), added to the default prices."""
    prices = dict(DEFAULT_OPENAI_PRICES)
    raw = _raw(environ, "TASKGATE_OPENAI_PRICES")
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
class OrchestratorSettings:
    """Everything the orchestrator process is configured with."""

    service_token: str = dataclasses.field(repr=False)
    env: str = "dev"
    grpc_addr: str = "127.0.0.1:50052"
    admin_addr: str = "127.0.0.1:8081"
    database_url: str = dataclasses.field(default="sqlite:///.taskgate/taskgate.db", repr=False)
    redis_url: str | None = dataclasses.field(default=None, repr=False)
    replica_id: str = ""
    lease_seconds: float = 30.0
    worker_concurrency: int = 100
    sim_step_seconds: float = 0.2
    sse_ping_seconds: float = 10.0
    stream_buffer: int = 1000
    # A write to a stream's client that makes no progress for this long cuts the client off.
    stream_write_timeout_seconds: float = 30.0
    # Task control: a task's running-time limit when its request sets none.
    task_timeout_seconds: int = 600
    # How long a task waits for a human decision before it ends TIMEOUT.
    approval_timeout_seconds: float = 86_400.0
    log_level: str = "INFO"
    # Identity: the secret access tokens are signed with (see taskgate.jwt_secret), their issuer,
    # and the development bypass (its user is made sure of at start-up).
    jwt_secret: str = dataclasses.field(default="", repr=False)
    jwt_issuer: str = "taskgate"
    skip_auth: bool = False
    # The runner tasks run on: the simulated agent, or an OpenAI-compatible server (``openai``).
    runner: str = "simulated"
    openai: OpenAIRunnerSettings | None = None
    # Schedules: the shortest time allowed between two runs, how many one user may have, and how
    # often each replica looks for due ones.
    schedule_min_interval_seconds: int = 60
    schedule_max_per_user: int = 50
    scheduler_poll_seconds: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "OrchestratorSettings":
        """Read and validate the ``TASKGATE_*`` variables; raise SettingsError naming a bad one."""
        env = _choice(environ, "TASKGATE_ENV", "dev", ENVIRONMENTS, lower=True)
        service_token = _service_token(environ, env)
        runner = _choice(environ, "TASKGATE_RUNNER", "simulated", RUNNERS, lower=True)
        return cls(
            env=env,
            service_token=service_token,
            grpc_addr=_address(environ, "TASKGATE_GRPC_ADDR", cls.grpc_addr),
            admin_addr=_address(environ, "TASKGATE_ADMIN_ADDR", cls.admin_addr),
            database_url=_database_url(environ),
            redis_url=_redis_url(environ),
            replica_id=_replica_id(environ),
            lease_seconds=_number(environ, "TASKGATE_LEASE_SECONDS", cls.lease_seconds, 1.0, 3600.0),
            # 0: this replica serves the API and streams but runs no tasks.
            worker_concurrency=_integer(
                environ, "TASKGATE_WORKER_CONCURRENCY", cls.worker_concurrency, 0, 10_000
            ),
            sim_step_seconds=_number(environ, "TASKGATE_SIM_STEP_SECONDS", cls.sim_step_seconds, 0.0, 60.0),
            sse_ping_seconds=_number(
                environ, "TASKGATE_SSE_PING_SECONDS", cls.sse_ping_seconds, 0.05, 3600.0
            ),
            stream_buffer=_integer(environ, "TASKGATE_STREAM_BUFFER", cls.stream_buffer, 1, 1_000_000),
            stream_write_timeout_seconds=_number(
                environ,
                "TASKGATE_STREAM_WRITE_TIMEOUT_SECONDS",
                cls.stream_write_timeout_seconds,
                0.1,
                3600.0,
            ),
            task_timeout_seconds=_integer(
                environ, "TASKGATE_TASK_TIMEOUT_SECONDS", cls.task_timeout_seconds, 1, 86_400
            ),
            approval_timeout_seconds=_number(
                environ, "TASKGATE_APPROVAL_TIMEOUT_SECONDS", cls.approval_timeout_seconds, 1.0, 2_592_000.0
            ),
            log_level=_choice(environ, "TASKGATE_LOG_LEVEL", "INFO", LOG_LEVELS, lower=False),
            jwt_secret=_jwt_secret(environ, env, service_token),
            jwt_issuer=_jwt_issuer(environ),
            skip_auth=_skip_auth(environ, env),
            runner=runner,
            openai=OpenAIRunnerSettings.from_env(environ) if runner == "openai" else None,
            schedule_min_interval_seconds=_integer(
                environ,
                "TASKGATE_SCHEDULE_MIN_INTERVAL_SECONDS",
                cls.schedule_min_interval_seconds,
                1,
                86_400,
            ),
            schedule_max_per_user=_integer(
                environ, "TASKGATE_SCHEDULE_MAX_PER_USER", cls.schedule_max_per_user, 1, 100_000
            ),
            scheduler_poll_seconds=_number(
                environ, "TASKGATE_SCHEDULER_POLL_SECONDS", cls.scheduler_poll_seconds, 0.05, 3600.0
            ),
        )

    @property
    def admin_host(self) -> str:
        """The host part of the admin server address."""
        return split_address(self.admin_addr)[0]

    @property
    def admin_port(self) -> int:
        """The port of the admin server address (0 picks a free one)."""
        return split_address(self.admin_addr)[1]


def split_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` allowed) into its host, without brackets, and port."""
    match = _ADDRESS_PATTERN.match(address)
    if match is None:
        raise ValueError(f"not a host:port address: {address!r}")
    return match["host"].strip("[]"), int(match["port"])


def _raw(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _choice(
    environ: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...], lower: bool
) -> str:
    raw = _raw(environ, name)
    if raw is None:
        return default
    value = raw.lower() if lower else raw.upper()
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}")
    return value


def _service_token(environ: Mapping[str, str], env: str) -> str:
    minimum = 16 if env in ("dev", "test") else 32
    token = environ.get("TASKGATE_SERVICE_TOKEN", "")
    if not token:
        raise SettingsError(f"TASKGATE_SERVICE_TOKEN is required (at least {minimum} characters)")
    if len(token) < minimum:
        raise SettingsError(
            f"TASKGATE_SERVICE_TOKEN must be at least {minimum} characters when TASKGATE_ENV={env}"
        )
    return token


# Identity.

MAX_ISSUER_CHARACTERS = 256


def _jwt_secret(environ: Mapping[str, str], env: str, service_token: str) -> str:
    try:
        return jwt_secret.resolve(_raw(environ, jwt_secret.NAME), env, service_token)
    except ValueError as ex:
        raise SettingsError(str(ex)) from None


def _jwt_issuer(environ: Mapping[str, str]) -> str:
    raw = _raw(environ, "TASKGATE_JWT_ISSUER")
    if raw is None:
        return "taskgate"
    if len(raw) > MAX_ISSUER_CHARACTERS:
        raise SettingsError(f"TASKGATE_JWT_ISSUER must be at most {MAX_ISSUER_CHARACTERS} characters")
    return raw


def _skip_auth(environ: Mapping[str, str], env: str) -> bool:
    try:
        return dev_bypass.enabled(_raw(environ, dev_bypass.NAME), env)
    except ValueError as ex:
        raise SettingsError(str(ex)) from None


def _address(environ: Mapping[str, str], name: str, default: str) -> str:
    raw = _raw(environ, name)
    if raw is None:
        return default
    try:
        _, port = split_address(raw)
    except ValueError:
        raise SettingsError(f"{name} must be host:port, e.g. {default}") from None
    if port > 65535:
        raise SettingsError(f"{name} port must be 0..65535")
    return raw


def _database_url(environ: Mapping[str, str]) -> str:
    raw = _raw(environ, "TASKGATE_DATABASE_URL")
    if raw is None:
        return "sqlite:///.taskgate/taskgate.db"
    sqlite = raw.startswith("sqlite:///") and raw != "sqlite:///"
    postgres = raw.startswith(("postgresql://", "postgres://"))
    if not (sqlite or postgres):
        raise SettingsError(
            "TASKGATE_DATABASE_URL must be sqlite:///relative/path, sqlite:////absolute/path "
            "or postgresql://user:password@host:port/database"
        )
    return raw


def _redis_url(environ: Mapping[str, str]) -> str | None:
    raw = _raw(environ, "TASKGATE_REDIS_URL")
    if raw is None:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("TASKGATE_REDIS_URL must be redis://host:port/db, rediss://… or unix://…")
    return raw


def _replica_id(environ: Mapping[str, str]) -> str:
    raw = _raw(environ, "TASKGATE_REPLICA_ID")
    if raw is None:
        return f"{socket.gethostname()}-{os.getpid()}"
    if not _REPLICA_ID_PATTERN.match(raw):
        raise SettingsError("TASKGATE_REPLICA_ID must be 1..64 characters of A-Z a-z 0-9 . _ -")
    return raw


def _integer(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _raw(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer {low}..{high}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be an integer {low}..{high}")
    return value


def _number(environ: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = _raw(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number {low:g}..{high:g}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be a number {low:g}..{high:g}")
    return value
