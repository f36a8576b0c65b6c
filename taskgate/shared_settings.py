"""The settings both services read, read by one function so the gateway and the orchestrator agree.

The two processes must hold the same service token and the same JWT secret (derived from the
token in dev and test), and they read the environment, the log level, the identity switches, the
Redis URL and the stream write deadline from the same variables; each of those is read here only.

The environment defaults to production, so a service started without configuration refuses a
missing or weak secret instead of running with development rules; ``taskgate run`` asks for dev.
"""

import dataclasses

from taskgate import dev_bypass
from taskgate import jwt_secret
from taskgate import secret_strength
from taskgate.environment import ENVIRONMENTS
from taskgate.environment import RELAXED_ENVIRONMENTS
from taskgate.environment import Environment
from taskgate.environment import SettingsError
from taskgate.service_settings import ServiceSettings

SERVICE_TOKEN = "TASKGATE_SERVICE_TOKEN"  # noqa: S105 - a variable name, not a secret
DEFAULT_ENV = "production"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# dev and test accept a shorter token, such as a developer's memorable one; the others ask
# taskgate.secret_strength.
MIN_SERVICE_TOKEN_CHARACTERS_RELAXED = 16
MAX_ISSUER_CHARACTERS = 256
REDIS_SCHEMES = ("redis", "rediss", "unix")


@dataclasses.dataclass(frozen=True)
class SharedSettings:
    """The values both services' settings take from the same variables."""

    env: str
    service_token: str = dataclasses.field(repr=False)
    log_level: str
    # Identity: the secret access tokens are signed with (see taskgate.jwt_secret), their issuer,
    # and the development bypass.
    jwt_secret: str = dataclasses.field(repr=False)
    jwt_issuer: str
    skip_auth: bool
    # The URL may hold a password.
    redis_url: str | None = dataclasses.field(repr=False)
    # A write to a stream's client that makes no progress for this long cuts the client off.
    stream_write_timeout_seconds: float
    # How long an API key found valid is trusted before the store is asked again: by the gateway
    # for every caller, by the orchestrator for direct gRPC callers (never past the key's expiry).
    api_key_cache_seconds: float

    @classmethod
    def from_env(cls, environment: Environment) -> "SharedSettings":
        """Read and check the shared variables, raising SettingsError naming the first bad one."""
        env = environment.choice("TASKGATE_ENV", DEFAULT_ENV, ENVIRONMENTS)
        if env in RELAXED_ENVIRONMENTS:
            service_token = environment.required_secret(SERVICE_TOKEN, MIN_SERVICE_TOKEN_CHARACTERS_RELAXED)
        else:
            configured = environment.raw(SERVICE_TOKEN)
            service_token = secret_strength.required_strong(SERVICE_TOKEN, configured, env)
        secret = jwt_secret.resolve(environment.raw(jwt_secret.NAME), env, service_token)
        return cls(
            env=env,
            service_token=service_token,
            log_level=environment.choice("TASKGATE_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
            jwt_secret=secret,
            jwt_issuer=environment.string("TASKGATE_JWT_ISSUER", "taskgate", MAX_ISSUER_CHARACTERS),
            skip_auth=dev_only_switch(environment, dev_bypass.NAME, env),
            redis_url=environment.url("TASKGATE_REDIS_URL", REDIS_SCHEMES),
            stream_write_timeout_seconds=environment.number(
                "TASKGATE_STREAM_WRITE_TIMEOUT_SECONDS", 30.0, minimum=0.1, maximum=3600.0
            ),
            api_key_cache_seconds=environment.number(
                "TASKGATE_API_KEY_CACHE_SECONDS", ServiceSettings.api_key_cache_seconds, maximum=3600.0
            ),
        )


def dev_only_switch(environment: Environment, name: str, env: str) -> bool:
    """Read a switch that may only be on in the dev and test environments."""
    value = environment.boolean(name)
    if value and env not in RELAXED_ENVIRONMENTS:
        raise SettingsError(f"{name}=1 is allowed only when TASKGATE_ENV is dev or test, not {env}; unset it")
    return value
