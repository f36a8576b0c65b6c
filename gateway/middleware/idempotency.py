"""Idempotency: a request repeated with the same Idempotency-Key runs once; repeats get its response.

The first request with a key claims it (an in-flight record with a lease) and runs; its final
response, if it is a 2xx or 4xx other than 429 and not streamed, replaces the claim for the
configured time. A repeat with the same body replays that response; with another body it is 422;
while the first still runs it is 409 with Retry-After. If the records cannot be reached, the
request runs without idempotency (fail open) or is refused with 503 (fail closed), following the
rate limiter's policy.
"""

import logging

import falcon

from gateway.errors import RETRY_AFTER_SECONDS
from gateway.errors import ApiError
from gateway.errors import unavailable
from gateway.idempotency.claims import ClaimOutcome
from gateway.idempotency.claims import PendingClaim
from gateway.idempotency.records import REPLAYED_HEADERS
from gateway.idempotency.records import StoredResponse
from gateway.idempotency.records import final_value
from gateway.idempotency.requests import IdempotencyPolicy
from gateway.idempotency.store import IdempotencyStore
from gateway.metrics import IDEMPOTENCY_DECISIONS
from gateway.redis_client import RedisUnavailableError
from taskgate.outage_log import OutageLog

logger = logging.getLogger(__name__)

REPLAY_HEADERS = {"Idempotent-Replayed": "true", "X-Idempotency-Cached": "true"}


def is_storable(status: int) -> bool:
    """Return whether a final response is kept for replays: 2xx and 4xx, except 429."""
    return 200 <= status < 500 and status != 429


class IdempotencyMiddleware:
    """Run a keyed request once; replay, refuse (422) or defer (409) its repeats."""

    def __init__(
        self, store: IdempotencyStore, policy: IdempotencyPolicy, ttl_seconds: int, fail_closed: bool
    ) -> None:
        self._store = store
        self._policy = policy
        self._ttl_ms = ttl_seconds * 1000
        self._fail_closed = fail_closed
        self._outages = OutageLog("idempotency records unreachable")

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict
    ) -> None:
        """Claim the key (unless the limiter already did), then run, replay, or refuse the request."""
        claim = self._policy.pending_claim(req, params)
        if claim is None:
            return
        outcome = req.context.get("idempotency_outcome") or self._claim(claim)
        if outcome is None:
            return
        existing = outcome.existing
        if existing is None:
            IDEMPOTENCY_DECISIONS.labels(decision="first").inc()
            req.context.idempotency_owned = claim
        elif existing.fingerprint != claim.fingerprint:
            IDEMPOTENCY_DECISIONS.labels(decision="mismatch").inc()
            raise ApiError(
                422, "Idempotency-Key was already used with a different request", "idempotency_key_mismatch"
            )
        elif existing.response is None:
            IDEMPOTENCY_DECISIONS.labels(decision="in_flight").inc()
            raise ApiError(
                409,
                "A request with this Idempotency-Key is still in progress",
                "idempotency_key_in_flight",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        else:
            IDEMPOTENCY_DECISIONS.labels(decision="replayed").inc()
            _replay(resp, existing.response)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Keep the final response of the request that owns its key, or give the key up."""
        claim = req.context.get("idempotency_owned")
        if claim is None:
            return
        try:
            if resp.stream is not None or not is_storable(resp.status_code):
                self._store.release(claim)
                return
            body = resp.render_body() or b""
            headers = tuple(
                (name, value) for name, value in resp.headers.items() if name.lower() in REPLAYED_HEADERS
            )
            record = final_value(claim.fingerprint, StoredResponse(resp.status_code, headers, body))
            if not self._store.complete(claim, record, self._ttl_ms):
                logger.warning(
                    "idempotency claim lost before the response was stored",
                    extra={"request_id": req.context.get("request_id")},
                )
        except RedisUnavailableError as ex:
            # The in-flight record expires with its lease; the key can then be used again.
            self._outages.record(ex)

    def _claim(self, claim: PendingClaim) -> ClaimOutcome | None:
        """Claim the key in the store; None to go on without idempotency (fail open)."""
        try:
            return self._store.claim(claim)
        except RedisUnavailableError as ex:
            self._outages.record(ex)
            IDEMPOTENCY_DECISIONS.labels(decision="unavailable").inc()
            if self._fail_closed:
                raise unavailable("Idempotency records unavailable") from None
            return None


def _replay(resp: falcon.Response, response: StoredResponse) -> None:
    """Answer with a stored response instead of running the request again."""
    resp.status = response.status
    for name, value in response.headers:
        resp.set_header(name, value)
    resp.set_headers(REPLAY_HEADERS)
    resp.data = response.body
    resp.complete = True
