"""The per-caller state gateways share: rate-limit windows and idempotency records.

With ``TASKGATE_REDIS_URL`` both live in Redis and every gateway process and replica sees the same
counts and records. Without it (``make run``'s default) both live in the worker process, and the
gateway runs a single gunicorn worker (``gateway.settings`` refuses more): every request meets
the same windows and records, so limits and idempotency hold exactly as they do with Redis.
"""

import dataclasses

from gateway.idempotency.redis_store import RedisIdempotencyStore
from gateway.idempotency.requests import IdempotencyPolicy
from gateway.idempotency.store import IdempotencyStore
from gateway.idempotency.store import InMemoryIdempotencyStore
from gateway.middleware.idempotency import IdempotencyMiddleware
from gateway.middleware.rate_limit import RateLimitMiddleware
from gateway.rate_limit.limiter import Limiter
from gateway.rate_limit.memory import InMemorySlidingWindowLimiter
from gateway.rate_limit.policy import RateLimitPolicy
from gateway.rate_limit.redis_limiter import RedisSlidingWindowLimiter
from gateway.redis_client import GatewayRedis
from gateway.redis_client import connect
from gateway.settings import GatewaySettings
from taskgate.redis_keys import KeyNamer

# The unauthenticated routes limited per client address (POST only), by path.
REGISTER_PATH = "/api/v1/auth/register"
LOGIN_PATH = "/api/v1/auth/login"
REFRESH_PATH = "/api/v1/auth/refresh"
_LEASE_MARGIN_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class CallerState:
    """The limiter and the idempotency store of one worker process."""

    limiter: Limiter
    idempotency: IdempotencyStore
    redis: GatewayRedis | None = None

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> "CallerState":
        """Use Redis when a URL is configured (one client for both), else in-process state."""
        if settings.redis_url is None:
            return cls(limiter=InMemorySlidingWindowLimiter(), idempotency=InMemoryIdempotencyStore())
        redis = GatewayRedis(connect(settings.redis_url, settings.redis_timeout_seconds))
        return cls(
            limiter=RedisSlidingWindowLimiter(redis), idempotency=RedisIdempotencyStore(redis), redis=redis
        )


def caller_limit_middleware(settings: GatewaySettings, state: CallerState) -> list[object]:
    """Return the rate-limit and idempotency middleware, in that order, sharing one key namer.

    An in-flight idempotency claim lives twice the upstream deadline plus a margin: longer than a
    request that gets an answer takes, short enough that a key held by a worker that died is soon
    free again.
    """
    namer = KeyNamer(settings.service_token)
    claims = IdempotencyPolicy(
        namer, lease_seconds=2 * settings.upstream_timeout_seconds + _LEASE_MARGIN_SECONDS
    )
    idempotency = IdempotencyMiddleware(
        state.idempotency, claims, settings.idempotency_ttl_seconds, settings.rate_limit_fail_closed
    )
    if settings.rate_limit_disabled:
        return [idempotency]
    policy = RateLimitPolicy(
        namer,
        settings.rate_limit_tiers,
        {
            REGISTER_PATH: settings.rate_limit_login_per_minute,
            LOGIN_PATH: settings.rate_limit_login_per_minute,
            REFRESH_PATH: settings.rate_limit_refresh_per_minute,
        },
        settings.trusted_proxies,
    )
    return [RateLimitMiddleware(state.limiter, policy, settings.rate_limit_fail_closed, claims), idempotency]
