"""The gateway's settings, read once from the environment."""

import dataclasses
import math
import os
import urllib.parse
from collections.abc import Mapping

ENVIRONMENTS = ("dev", "test", "production")
WORKER_CLASSES = ("gevent", "gthread")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_RELAXED_ENVIRONMENTS = ("dev", "test")
_MIN_TOKEN_LENGTH_RELAXED = 16
_MIN_TOKEN_LENGTH_STRICT = 32


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
    orchestrator_addr: str = "127.0.0.1:50052"
    admin_url: str = "http://127.0.0.1:8081"
    api_key_cache_seconds: float = 5.0
    upstream_timeout_seconds: float = 10.0
    max_body_bytes: int = 1048576
    log_level: str = "INFO"

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
            orchestrator_addr=reader.host_port("TASKGATE_ORCHESTRATOR_ADDR", cls.orchestrator_addr),
            admin_url=reader.http_url("TASKGATE_ADMIN_URL", cls.admin_url),
            api_key_cache_seconds=reader.number("TASKGATE_API_KEY_CACHE_SECONDS", cls.api_key_cache_seconds),
            upstream_timeout_seconds=reader.number(
                "TASKGATE_UPSTREAM_TIMEOUT_SECONDS", cls.upstream_timeout_seconds, positive=True
            ),
            max_body_bytes=reader.integer("TASKGATE_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1),
            log_level=reader.choice("TASKGATE_LOG_LEVEL", cls.log_level, LOG_LEVELS, upper=True),
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

    def service_token(self, env: str) -> str:
        name = "TASKGATE_SERVICE_TOKEN"
        value = self.raw(name)
        if value is None:
            raise SettingsError(f"{name} is required")
        minimum = _MIN_TOKEN_LENGTH_RELAXED if env in _RELAXED_ENVIRONMENTS else _MIN_TOKEN_LENGTH_STRICT
        if len(value) < minimum:
            raise SettingsError(f"{name} must be at least {minimum} characters in the {env} environment")
        return value
