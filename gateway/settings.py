"""The gateway's settings, read once from the environment by taskgate.environment's rules."""

import dataclasses
import os
import urllib.parse
from collections.abc import Mapping

from gateway.rate_limit.client_address import TrustedProxies
from taskgate.environment import Environment
from taskgate.environment import SettingsError
from taskgate.rate_limit_tiers import BUILT_IN_TIERS
from taskgate.rate_limit_tiers import TierLimits
from taskgate.rate_limit_tiers import read_tiers
from taskgate.service_settings import ServiceSettings
from taskgate.shared_settings import SharedSettings
from taskgate.shared_settings import dev_only_switch
from taskgate.tls import ClientTls
from taskgate.tls import configured_client_variables

WORKER_CLASSES = ("gevent", "gthread")
# The switches of TASKGATE_SECURITY_HEADERS, one per header (gateway.middleware.security_headers).
SECURITY_HEADERS = ("content-type-options", "frame-options", "referrer-policy", "csp", "hsts")
# Browsers' origins of the gateway itself, allowed for CORS in dev on top of TASKGATE_CORS_ORIGINS.
DEV_CORS_ORIGINS = ("http://localhost:8080", "http://127.0.0.1:8080")
_MIN_METRICS_TOKEN_LENGTH = 16
WORKERS = "TASKGATE_GATEWAY_WORKERS"
# gunicorn workers when Redis holds the rate-limit windows and idempotency records. Without Redis
# they live in the worker process (gateway.caller_state), and only a single worker keeps them
# exact: the gateway then runs one, and refuses more (docs/operations.md has the measurement).
DEFAULT_WORKERS_WITH_REDIS = 2


@dataclasses.dataclass(frozen=True)
class GatewaySettings(ServiceSettings):
    """Everything the gateway process is configured with: the shared fields and its own.

    See docs/internals.md for the variables. Access tokens are verified here with the
    orchestrator's secret; the development bypass serves requests without credentials as
    taskgate.dev_bypass's user.
    """

    bind: str = "127.0.0.1:8080"
    # One without Redis (the default), DEFAULT_WORKERS_WITH_REDIS with it; see _workers.
    workers: int = 1
    worker_class: str = "gevent"
    threads: int = 32
    worker_connections: int = 10000
    orchestrator_addr: str = "127.0.0.1:50052"
    admin_url: str = "http://127.0.0.1:8081"
    # How long a rejected API key is remembered as rejected (gateway.api_key_validator); 0: never.
    api_key_rejection_cache_seconds: float = 3.0
    upstream_timeout_seconds: float = 10.0
    max_body_bytes: int = 1048576
    cors_origins: tuple[str, ...] = ()
    security_headers: frozenset[str] = frozenset(SECURITY_HEADERS)
    metrics_token: str | None = dataclasses.field(default=None, repr=False)
    # Rate limits and idempotency (gateway.caller_state) live in Redis when redis_url is set.
    redis_timeout_seconds: float = 0.5
    rate_limit_tiers: Mapping[str, TierLimits] = dataclasses.field(
        default_factory=lambda: dict(BUILT_IN_TIERS)
    )
    rate_limit_login_per_minute: int = 30
    rate_limit_refresh_per_minute: int = 60
    rate_limit_fail_closed: bool = False
    # Failed authentications (401s) one client address (an IPv6 /64) may cause before its
    # credentials are refused with 429 (gateway.rate_limit.auth_failures).
    auth_failures_per_minute: int = 20
    auth_failures_per_hour: int = 100
    rate_limit_disabled: bool = False
    trusted_proxies: TrustedProxies = TrustedProxies()
    idempotency_ttl_seconds: int = 86400
    # TLS to the orchestrator (gRPC and admin server), on with an https admin URL; None: plaintext.
    tls: ClientTls | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "GatewaySettings":
        """Read and check the TASKGATE_* variables, raising SettingsError naming the first bad one."""
        environment = Environment(environ)
        shared = SharedSettings.from_env(environment)
        admin_url = _admin_url(environment, "TASKGATE_ADMIN_URL", cls.admin_url)
        return cls(
            **dataclasses.asdict(shared),
            bind=_bind_address(environment, "TASKGATE_GATEWAY_BIND", cls.bind),
            workers=_workers(environment, WORKERS, shared.redis_url),
            worker_class=environment.choice(
                "TASKGATE_GATEWAY_WORKER_CLASS", cls.worker_class, WORKER_CLASSES
            ),
            threads=environment.integer("TASKGATE_GATEWAY_THREADS", cls.threads, minimum=1),
            worker_connections=environment.integer(
                "TASKGATE_GATEWAY_WORKER_CONNECTIONS", cls.worker_connections, minimum=1
            ),
            orchestrator_addr=environment.host_port("TASKGATE_ORCHESTRATOR_ADDR", cls.orchestrator_addr),
            admin_url=admin_url,
            api_key_rejection_cache_seconds=environment.number(
                "TASKGATE_API_KEY_REJECTION_CACHE_SECONDS", cls.api_key_rejection_cache_seconds, 0.0, 60.0
            ),
            upstream_timeout_seconds=environment.number(
                "TASKGATE_UPSTREAM_TIMEOUT_SECONDS", cls.upstream_timeout_seconds, above_minimum=True
            ),
            max_body_bytes=environment.integer("TASKGATE_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1),
            cors_origins=_origins(
                environment, "TASKGATE_CORS_ORIGINS", DEV_CORS_ORIGINS if shared.env == "dev" else ()
            ),
            security_headers=_switches(environment, "TASKGATE_SECURITY_HEADERS", SECURITY_HEADERS),
            metrics_token=environment.secret("TASKGATE_METRICS_TOKEN", _MIN_METRICS_TOKEN_LENGTH),
            redis_timeout_seconds=environment.number(
                "TASKGATE_REDIS_TIMEOUT_SECONDS", cls.redis_timeout_seconds, above_minimum=True
            ),
            rate_limit_tiers=read_tiers(environment),
            rate_limit_login_per_minute=environment.integer(
                "TASKGATE_RATE_LIMIT_LOGIN_PER_MINUTE", cls.rate_limit_login_per_minute, minimum=1
            ),
            rate_limit_refresh_per_minute=environment.integer(
                "TASKGATE_RATE_LIMIT_REFRESH_PER_MINUTE", cls.rate_limit_refresh_per_minute, minimum=1
            ),
            rate_limit_fail_closed=environment.boolean("TASKGATE_RATE_LIMIT_FAIL_CLOSED"),
            auth_failures_per_minute=environment.integer(
                "TASKGATE_AUTH_FAILURES_PER_MINUTE", cls.auth_failures_per_minute, minimum=1
            ),
            auth_failures_per_hour=environment.integer(
                "TASKGATE_AUTH_FAILURES_PER_HOUR", cls.auth_failures_per_hour, minimum=1
            ),
            rate_limit_disabled=dev_only_switch(environment, "TASKGATE_RATE_LIMIT_DISABLED", shared.env),
            trusted_proxies=_trusted_proxies(environment, "TASKGATE_TRUSTED_PROXIES"),
            idempotency_ttl_seconds=environment.integer(
                "TASKGATE_IDEMPOTENCY_TTL_SECONDS", cls.idempotency_ttl_seconds, minimum=1
            ),
            tls=_orchestrator_tls(environment, admin_url),
        )


def _workers(environment: Environment, name: str, redis_url: str | None) -> int:
    """Read the number of gunicorn workers: one without Redis, where more would count apart."""
    if redis_url is not None:
        return environment.integer(name, DEFAULT_WORKERS_WITH_REDIS, minimum=1)
    workers = environment.integer(name, 1, minimum=1)
    problem = worker_count_problem(workers, redis_url)
    if problem is not None:
        raise SettingsError(problem)
    return workers


def worker_count_problem(workers: int, redis_url: str | None) -> str | None:
    """Return why this many gunicorn workers cannot serve without Redis (one line), or None."""
    if workers <= 1 or redis_url is not None:
        return None
    return (
        f"{WORKERS}={workers} needs TASKGATE_REDIS_URL: without Redis each worker keeps its own "
        "rate-limit windows and idempotency records, so only one worker keeps them exact; "
        f"set TASKGATE_REDIS_URL, or unset {WORKERS} (one worker)"
    )


def _bind_address(environment: Environment, name: str, default: str) -> str:
    """Read gunicorn's bind address: ``host:port``, or ``unix:`` and a socket path."""
    value = environment.raw(name) or default
    if value.startswith("unix:"):
        if len(value) == len("unix:"):
            raise SettingsError(f"{name} must name a socket path after unix:, got {value!r}")
        return value
    return environment.host_port(name, default)


def _admin_url(environment: Environment, name: str, default: str) -> str:
    """Read the admin stream server's base URL: http(s) with a host and no query, no trailing slash."""
    value = (environment.url(name, ("http", "https"), require_host=True) or default).rstrip("/")
    if urllib.parse.urlsplit(value).query:
        raise SettingsError(f"{name} must be a base URL without a query")
    return value


def _orchestrator_tls(environment: Environment, admin_url: str) -> ClientTls | None:
    """Read how the gateway speaks TLS to the orchestrator: on for gRPC too when the admin URL is https.

    The orchestrator serves both with one certificate, so the admin URL's scheme is the one switch;
    a TLS file set with an http admin URL is refused rather than silently left unused.
    """
    if urllib.parse.urlsplit(admin_url).scheme == "https":
        return ClientTls.from_env(environment)
    configured = configured_client_variables(environment)
    if configured:
        raise SettingsError(
            f"{configured[0]} is set but TASKGATE_ADMIN_URL is http: the gateway speaks TLS to the "
            "orchestrator (gRPC and streams) only with an https:// admin URL"
        )
    return None


def _is_origin(value: str) -> bool:
    """Return whether a value is a browser origin: http(s), a host, maybe a port, nothing else."""
    parts = urllib.parse.urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and port != 0
        and parts.username is None
        and not (parts.path or parts.query or parts.fragment)
    )


def _origins(environment: Environment, name: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """Read a comma list of browser origins (``scheme://host[:port]``), lower-cased, plus ``extra``."""
    origins = list(extra)
    for item in environment.items(name):
        origin = item.lower().removesuffix("/")
        if not _is_origin(origin):
            raise SettingsError(
                f"{name} must list origins such as https://app.example.com (no path, no *), got {origin!r}"
            )
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def _switches(environment: Environment, name: str, known: tuple[str, ...]) -> frozenset[str]:
    """Read ``all`` (the default), ``none`` or a comma list of known switch names."""
    chosen = {item.lower() for item in environment.items(name)}
    if not chosen or chosen == {"all"}:
        return frozenset(known)
    if chosen == {"none"}:
        return frozenset()
    unknown = sorted(chosen - set(known))
    if unknown:
        choices = ", ".join(known)
        raise SettingsError(f"{name} must be all, none or a list of {choices}, got {unknown[0]!r}")
    return frozenset(chosen)


def _trusted_proxies(environment: Environment, name: str) -> TrustedProxies:
    """Read the comma list of proxies (CIDRs, addresses, ``unix``) whose X-Forwarded-For is believed."""
    try:
        return TrustedProxies.parse(environment.raw(name) or "")
    except ValueError as ex:
        raise SettingsError(f"{name}: {ex}") from None
