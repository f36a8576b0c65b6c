"""The settings fields every taskgate service carries, declared once with their defaults.

``taskgate.shared_settings.SharedSettings`` reads their values from the environment; each
service's settings class extends ``ServiceSettings`` with its own fields and takes these from
``SharedSettings`` by name, so the gateway and the orchestrator declare them alike.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    """The environment, service token, log level, identity, Redis URL, stream write deadline, key trust."""

    service_token: str = dataclasses.field(repr=False)
    env: str = "production"
    log_level: str = "INFO"
    # Identity: the secret access tokens are signed and verified with (see taskgate.jwt_secret),
    # their issuer, and the development bypass (taskgate.dev_bypass).
    jwt_secret: str = dataclasses.field(default="", repr=False)
    jwt_issuer: str = "taskgate"
    skip_auth: bool = False
    # The URL may hold a password.
    redis_url: str | None = dataclasses.field(default=None, repr=False)
    # A write to a stream's client that makes no progress for this long cuts the client off.
    stream_write_timeout_seconds: float = 30.0
    # How long an API key found valid is trusted before the store is asked again: by the gateway
    # for every caller, by the orchestrator for direct gRPC callers (never past the key's expiry).
    api_key_cache_seconds: float = 5.0
