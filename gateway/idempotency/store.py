"""Where idempotency records live: the interface, and the in-process store for a gateway without Redis.

The in-process store has the Redis store's semantics within one process: with several gunicorn
workers a repeat that reaches another worker runs again, so it is meant for ``make run`` on one
machine; replicas share records through Redis.
"""

import threading
import time
from collections.abc import Callable
from typing import Protocol

from gateway.idempotency.claims import ClaimOutcome
from gateway.idempotency.claims import PendingClaim
from gateway.idempotency.records import parse_record

_SWEEP_EVERY = 1000


class IdempotencyStore(Protocol):
    """Claim a key, then complete it with the final response or release it."""

    def claim(self, claim: PendingClaim) -> ClaimOutcome:
        """Own the key, or return the record already under it; RedisUnavailableError if unreachable."""

    def complete(self, claim: PendingClaim, value: bytes, ttl_ms: int) -> bool:
        """Replace the in-flight record with the final one; False if the claim was lost meanwhile."""

    def release(self, claim: PendingClaim) -> None:
        """Remove the in-flight record if this request still owns it."""


class InMemoryIdempotencyStore:
    """Records in a dictionary with expiry times, under one lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, tuple[bytes, float]] = {}
        self._operations = 0

    def claim(self, claim: PendingClaim) -> ClaimOutcome:
        """Own the key, or return the record already under it."""
        with self._lock:
            existing = self._live(claim.key)
            if existing is not None:
                return ClaimOutcome(existing=parse_record(existing))
            self._values[claim.key] = (claim.pending_value, self._clock() + claim.lease_ms / 1000)
            self._operations += 1
            if self._operations % _SWEEP_EVERY == 0:
                self._sweep()
        return ClaimOutcome(existing=None)

    def complete(self, claim: PendingClaim, value: bytes, ttl_ms: int) -> bool:
        """Replace this request's in-flight record with its final one, if it still owns it."""
        with self._lock:
            if self._live(claim.key) != claim.pending_value:
                return False
            self._values[claim.key] = (value, self._clock() + ttl_ms / 1000)
        return True

    def release(self, claim: PendingClaim) -> None:
        """Remove this request's in-flight record, if it still owns it."""
        with self._lock:
            if self._live(claim.key) == claim.pending_value:
                del self._values[claim.key]

    def _live(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._values[key]
            return None
        return entry[0]

    def _sweep(self) -> None:
        now = self._clock()
        for key in [key for key, (_, expires_at) in self._values.items() if expires_at <= now]:
            del self._values[key]
