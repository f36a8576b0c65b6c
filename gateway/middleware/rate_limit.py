"""Rate limiting: count each limited request against its caller's windows, refuse it with 429 when full.

Runs after authentication (the caller is known) and before idempotency. A request carrying an
Idempotency-Key has its claim prepared here and handed to the limiter, which makes it in the same
Redis round trip when it can (``gateway.rate_limit.redis_limiter``); the idempotency middleware
acts on the outcome. If the limiter cannot be asked, the request is served (fail open, the
default) or refused with 503 (``TASKGATE_RATE_LIMIT_FAIL_CLOSED``).
"""

import falcon

from gateway.errors import ApiError
from gateway.errors import unavailable
from gateway.idempotency.requests import IdempotencyPolicy
from gateway.metrics import RATE_LIMIT_DECISIONS
from gateway.rate_limit.limiter import Limiter
from gateway.rate_limit.policy import RateLimitPolicy
from gateway.redis_client import RedisUnavailableError
from taskgate.outage_log import OutageLog
from taskgate.rate_limits.headers import rate_limit_headers
from taskgate.rate_limits.windows import RateLimitStatus

# Nearly every counted request is allowed: its series is looked up once.
_ALLOWED = RATE_LIMIT_DECISIONS.labels(decision="allowed")


def rate_limited(status: RateLimitStatus) -> ApiError:
    """Return the 429 of a refused request: Retry-After, the limit headers, and in the body the window.

    The body names the window that refused (``minute`` or ``hour``) and whose it is
    (``counted_per``: ``user``, or ``api_key`` for a key's sub-limit; absent for per-address limits).
    """
    headers = rate_limit_headers(status)
    headers["Retry-After"] = str(status.retry_after_seconds)
    fields = {"window": status.limited_by}
    if status.limited_per:
        fields["counted_per"] = status.limited_per
    return ApiError(429, "Rate limit exceeded", "rate_limited", headers=headers, fields=fields)


class RateLimitMiddleware:
    """Count limited requests and refuse those over a limit; set the limit headers on the response."""

    def __init__(
        self,
        limiter: Limiter,
        policy: RateLimitPolicy,
        fail_closed: bool,
        claims: IdempotencyPolicy | None = None,
    ) -> None:
        self._limiter = limiter
        self._policy = policy
        self._fail_closed = fail_closed
        self._claims = claims
        self._outages = OutageLog(
            "rate limiter unreachable; refusing requests"
            if fail_closed
            else "rate limiter unreachable; serving without limits"
        )

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict
    ) -> None:
        """Count the request; 429 when a window is full, 503 when the limiter is down and fail-closed."""
        subject = self._policy.subject_for(req)
        if subject is None:
            return
        claim = self._claims.pending_claim(req, params) if self._claims is not None else None
        try:
            admission = self._limiter.admit(subject, claim)
        except RedisUnavailableError as ex:
            self._outages.record(ex)
            if self._fail_closed:
                RATE_LIMIT_DECISIONS.labels(decision="failed_closed").inc()
                raise unavailable("Rate limiter unavailable") from None
            RATE_LIMIT_DECISIONS.labels(decision="failed_open").inc()
            return
        req.context.rate_limit = admission.status
        if admission.claim is not None:
            req.context.idempotency_outcome = admission.claim
        if not admission.status.allowed:
            RATE_LIMIT_DECISIONS.labels(decision="limited").inc()
            raise rate_limited(admission.status)
        _ALLOWED.inc()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Describe the caller's windows on every response to a counted request."""
        status = req.context.get("rate_limit")
        if status is not None:
            resp.set_headers(rate_limit_headers(status))
