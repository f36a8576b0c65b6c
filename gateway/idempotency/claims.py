"""An idempotency claim: the record a first request leaves while it runs, and what a claim found."""

import dataclasses

from gateway.idempotency.records import Record


@dataclasses.dataclass(frozen=True)
class PendingClaim:
    """One request's attempt to own an idempotency key.

    ``key`` names the record (caller, route and key, hashed; in ``partition``'s hash tag),
    ``fingerprint`` identifies the request's body, and ``pending_value`` is the in-flight record
    this request writes, carrying a random owner token: only the request that wrote it can replace
    it with the final response or release it. It lives ``lease_ms``, so a worker that dies
    mid-request leaves nothing behind for longer than that.
    """

    partition: str
    key: str
    fingerprint: str
    pending_value: bytes
    lease_ms: int


@dataclasses.dataclass(frozen=True)
class ClaimOutcome:
    """What a claim found: nothing (this request now owns the key), or the record already there."""

    existing: Record | None
