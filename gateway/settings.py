"""The gateway's settings, read once from the environment."""

import dataclasses
import math
import os
import urllib.parse
from collections.abc import Mapping

from gateway.rate_limit.client_address import TrustedProxies
from gateway.rate_limit.tiers import BUILT_IN_TIERS
from gateway.rate_limit.tiers import TierLimits
from gateway.rate_limit.tiers import parse_tiers
from taskgate import dev_bypass
from taskgate import jwt_secret

ENVIRONMENTS = ("dev", "test", "production")
WORKER_CLASSES = ("gevent", "gthread")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_RELAXED_ENVIRONMENTS = ("dev", "test")
_MIN_TOKEN_LENGTH_RELAXED = 16
_MIN_TOKEN_LENGTH_STRICT = 32
_MAX_ISSUER_CHARACTERS = 256
# The switches of TASKGATE_SECURITY_HEADERS, one per header (gateway.middleware.security_headers).
SECURITY_HEADERS = ("content-type-options", "frame-options", "referrer-policy", "csp", "hsts")
# Browsers' origins of the gateway itself, allowed for CORS in dev on top of TASKGATE_CORS_ORIGINS.
DEV_CORS_ORIGINS = ("http://localhost:8080", "http://127.0.0.1:8080")
_MIN_METRICS_TOKEN_LENGTH = 16
_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A configuration variable is missing or has an unusable value."""


@dataclasses.dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway process is configured with; see docs/internals.md for the variables."""

    service_token: str = dataclasses.field(repr=False)
    env: str = "dev"
    bind: str = "127.0.0.1:8080"
    workers: int = 2
    worker_class: str = "gevent"
    threads: int = 32
    worker_connections: int = 10000
    orchestrator_addr: str = "127.0.0.1:50052"
    admin_url: str = "http://127.0.0.1:8081"
    api_key_cache_seconds: float = 5.0
    upstream_timeout_seconds: float = 10.0
    # A write to an event stream's client that makes no progress for this long cuts the client off.
    stream_write_timeout_seconds: float = 30.0
    max_body_bytes: int = 1048576
    log_level: str = "INFO"
    # Identity: access tokens are verified here with the orchestrator's secret (taskgate.jwt_secret);
    # the development bypass serves requests without credentials as taskgate.dev_bypass's user.
    jwt_secret: str = dataclasses.field(default="", repr=False)
    jwt_issuer: str = "taskgate"
    skip_auth: bool = False
    cors_origins: tuple[str, ...] = ()
    security_headers: frozenset[str] = frozenset(SECURITY_HEADERS)
    metrics_token: str | None = dataclasses.field(default=None, repr=False)
    # Rate limits and idempotency (gateway.caller_state); the URL may hold a password.
    redis_url: str | None = dataclasses.field(default=None, repr=False)
    redis_timeout_seconds: float = 0.5
    rate_limit_tiers: Mapping[str, TierLimits] = dataclasses.field(
        default_factory=lambda: dict(BUILT_IN_TIERS)
    )
    rate_limit_login_per_minute: int = 30
    rate_limit_refresh_per_minute: int = 60
    rate_limit_fail_closed: bool = False
    rate_limit_disabled: bool = False
    trusted_proxies: TrustedProxies = TrustedProxies()
    idempotency_ttl_seconds: int = 86400

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "GatewaySettings":
        """Read and check the TASKGATE_* variables, raising SettingsError naming the first bad one."""
        reader = _Reader(environ)
        env = reader.choice("TASKGATE_ENV", "dev", ENVIRONMENTS)
        return cls(
            service_token=reader.service_token(env),
            env=env,
            bind=reader.bind_address("TASKGATE_GATEWAY_BIND", cls.bind),
            workers=reader.integer("TASKGATE_GATEWAY_WORKERS", cls.workers, minimum=1),
            worker_class=reader.choice("TASKGATE_GATEWAY_WORKER_CLASS", cls.worker_class, WORKER_CLASSES),
            threads=reader.integer("TASKGATE_GATEWAY_THREADS", cls.threads, minimum=1),
            worker_connections=reader.integer(
                "TASKGATE_GATEWAY_WORKER_CONNECTIONS", cls.worker_connections, minimum=1
            ),
            orchestrator_addr=reader.host_port("TASKGATE_ORCHESTRATOR_ADDR", cls.orchestrator_addr),
            admin_url=reader.http_url("TASKGATE_ADMIN_URL", cls.admin_url),
            api_key_cache_seconds=reader.number("TASKGATE_API_KEY_CACHE_SECONDS", cls.api_key_cache_seconds),
            upstream_timeout_seconds=reader.number(
                "TASKGATE_UPSTREAM_TIMEOUT_SECONDS", cls.upstream_timeout_seconds, positive=True
            ),
            stream_write_timeout_seconds=reader.number(
                "TASKGATE_STREAM_WRITE_TIMEOUT_SECONDS", cls.stream_write_timeout_seconds, positive=True
            ),
            max_body_bytes=reader.integer("TASKGATE_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1),
            log_level=reader.choice("TASKGATE_LOG_LEVEL", cls.log_level, LOG_LEVELS, upper=True),
            jwt_secret=reader.jwt_secret(env),
            jwt_issuer=reader.jwt_issuer(),
            skip_auth=reader.skip_auth(env),
            cors_origins=reader.origins("TASKGATE_CORS_ORIGINS", DEV_CORS_ORIGINS if env == "dev" else ()),
            security_headers=reader.switches("TASKGATE_SECURITY_HEADERS", SECURITY_HEADERS),
            metrics_token=reader.secret("TASKGATE_METRICS_TOKEN", _MIN_METRICS_TOKEN_LENGTH),
            redis_url=reader.redis_url("TASKGATE_REDIS_URL"),
            redis_timeout_seconds=reader.number(
                "TASKGATE_REDIS_TIMEOUT_SECONDS", cls.redis_timeout_seconds, positive=True
            ),
            rate_limit_tiers=reader.rate_limit_tiers("TASKGATE_RATE_LIMIT_TIERS"),
            rate_limit_login_per_minute=reader.integer(
                "TASKGATE_RATE_LIMIT_LOGIN_PER_MINUTE", cls.rate_limit_login_per_minute, minimum=1
            ),
            rate_limit_refresh_per_minute=reader.integer(
                "TASKGATE_RATE_LIMIT_REFRESH_PER_MINUTE", cls.rate_limit_refresh_per_minute, minimum=1
            ),
            rate_limit_fail_closed=reader.boolean("TASKGATE_RATE_LIMIT_FAIL_CLOSED"),
            rate_limit_disabled=reader.dev_only_switch("TASKGATE_RATE_LIMIT_DISABLED", env),
            trusted_proxies=reader.trusted_proxies("TASKGATE_TRUSTED_PROXIES"),
            idempotency_ttl_seconds=reader.integer(
                "TASKGATE_IDEMPOTENCY_TTL_SECONDS", cls.idempotency_ttl_seconds, minimum=1
            ),
        )


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


class _Reader:
    """Reads single variables with their defaults, turning bad values into SettingsError."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def choice(self, name: str, default: str, allowed: tuple[str, ...], upper: bool = False) -> str:
        value = self.raw(name)
        if value is None:
            return default
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def integer(self, name: str, default: int, minimum: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {value!r}") from None
        if number < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, got {number}")
        return number

    def number(self, name: str, default: float, positive: bool = False) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds, got {value!r}") from None
        if not math.isfinite(number):
            raise SettingsError(f"{name} must be a finite number, got {value!r}")
        if number < 0 or (positive and number == 0):
            bound = "greater than 0" if positive else "at least 0"
            raise SettingsError(f"{name} must be {bound}, got {value!r}")
        return number

    def host_port(self, name: str, default: str) -> str:
        value = self.raw(name) or default
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise SettingsError(f"{name} must be host:port, got {value!r}")
        return value

    def bind_address(self, name: str, default: str) -> str:
        value = self.raw(name) or default
        if value.startswith("unix:"):
            if len(value) == len("unix:"):
                raise SettingsError(f"{name} must name a socket path after unix:, got {value!r}")
            return value
        return self.host_port(name, value)

    def http_url(self, name: str, default: str) -> str:
        value = (self.raw(name) or default).rstrip("/")
        parts = urllib.parse.urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.query:
            raise SettingsError(f"{name} must be an http:// or https:// URL, got {value!r}")
        return value

    def origins(self, name: str, extra: tuple[str, ...]) -> tuple[str, ...]:
        """Read a comma list of browser origins (``scheme://host[:port]``), lower-cased, plus ``extra``."""
        origins = list(extra)
        for item in (self.raw(name) or "").split(","):
            item = item.strip().lower().removesuffix("/")
            if not item:
                continue
            if not _is_origin(item):
                raise SettingsError(
                    f"{name} must list origins such as https://app.example.com (no path, no *), got {item!r}"
                )
            if item not in origins:
                origins.append(item)
        return tuple(origins)

    def switches(self, name: str, known: tuple[str, ...]) -> frozenset[str]:
        """Read ``all`` (the default), ``none`` or a comma list of known switch names."""
        value = (self.raw(name) or "all").lower()
        if value == "all":
            return frozenset(known)
        if value == "none":
            return frozenset()
        chosen = {item.strip() for item in value.split(",") if item.strip()}
        unknown = sorted(chosen - set(known))
        if unknown:
            choices = ", ".join(known)
            raise SettingsError(f"{name} must be all, none or a list of {choices}, got {unknown[0]!r}")
        return frozenset(chosen)

    def secret(self, name: str, min_length: int) -> str | None:
        """Read an optional secret of at least ``min_length`` characters."""
        value = self.raw(name)
        if value is not None and len(value) < min_length:
            raise SettingsError(f"{name} must be at least {min_length} characters")
        return value

    def boolean(self, name: str) -> bool:
        """Read a switch: 1/true/yes/on or 0/false/no/off, off when unset."""
        value = (self.raw(name) or "0").lower()
        if value not in _TRUE_WORDS + _FALSE_WORDS:
            raise SettingsError(f"{name} must be 1 or 0, got {value!r}")
        return value in _TRUE_WORDS

    def dev_only_switch(self, name: str, env: str) -> bool:
        """Read a switch that may only be on in the dev and test environments."""
        value = self.boolean(name)
        if value and env not in _RELAXED_ENVIRONMENTS:
            raise SettingsError(f"{name} may only be set when TASKGATE_ENV is dev or test")
        return value

    def redis_url(self, name: str) -> str | None:
        """Read an optional redis://, rediss:// or unix:// URL (never echoed: it may hold a password)."""
        value = self.raw(name)
        if value is not None and urllib.parse.urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise SettingsError(f"{name} must be a redis://, rediss:// or unix:// URL")
        return value

    def rate_limit_tiers(self, name: str) -> dict[str, TierLimits]:
        """Read the tier table (a JSON object laid over the built-in ``default`` tier)."""
        value = self.raw(name)
        if value is None:
            return dict(BUILT_IN_TIERS)
        try:
            return parse_tiers(value)
        except ValueError as ex:
            raise SettingsError(f"{name} {ex}") from None

    def trusted_proxies(self, name: str) -> TrustedProxies:
        """Read the comma list of proxies (CIDRs, addresses, ``unix``) whose X-Forwarded-For is believed."""
        try:
            return TrustedProxies.parse(self.raw(name) or "")
        except ValueError as ex:
            raise SettingsError(f"{name}: {ex}") from None

    def jwt_secret(self, env: str) -> str:
        """Read the JWT secret: required and strong outside dev/test, else derived when unset."""
        try:
            return jwt_secret.resolve(self.raw(jwt_secret.NAME), env, self.service_token(env))
        except ValueError as ex:
            raise SettingsError(str(ex)) from None

    def jwt_issuer(self) -> str:
        """Read the issuer access tokens must name (``iss``)."""
        value = self.raw("TASKGATE_JWT_ISSUER") or "taskgate"
        if len(value) > _MAX_ISSUER_CHARACTERS:
            raise SettingsError(f"TASKGATE_JWT_ISSUER must be at most {_MAX_ISSUER_CHARACTERS} characters")
        return value

    def skip_auth(self, env: str) -> bool:
        """Read the development bypass switch, refused outside dev/test."""
        try:
            return dev_bypass.enabled(self.raw(dev_bypass.NAME), env)
        except ValueError as ex:
            raise SettingsError(str(ex)) from None

    def service_token(self, env: str) -> str:
        name = "TASKGATE_SERVICE_TOKEN"
        value = self.raw(name)
        if value is None:
            raise SettingsError(f"{name} is required")
        minimum = _MIN_TOKEN_LENGTH_RELAXED if env in _RELAXED_ENVIRONMENTS else _MIN_TOKEN_LENGTH_STRICT
        if len(value) < minimum:
            raise SettingsError(f"{name} must be at least {minimum} characters in the {env} environment")
        return value
