"""API-key validation through the orchestrator, with short in-process caches of both answers.

A validated key is trusted for ``ttl_seconds`` (revocation is honoured within that time). A
rejected key is remembered as rejected for ``rejection_ttl_seconds`` (a few seconds), so a client
repeating one bad key (a revoked key left in a script, a flood of one made-up key) costs the
orchestrator one lookup per that time instead of one per request. Keys are 256 random bits, so a
hash rejected now is not one that becomes valid moments later by chance; the negative TTL is kept
short anyway because a chosen key can be created after it was tried (``TASKGATE_DEV_API_KEY`` fixes
the dev key's value, and a gateway may see it before the orchestrator has stored it), and such a
key must work within seconds. Both caches are keyed by the key's hash, never the key, and bounded
(the oldest entry goes first). Concurrent misses for one key wait for a single lookup instead of
each asking the orchestrator (locks are striped by hash, so memory stays fixed whatever the number
of keys).
"""

import collections
import threading
import time
from collections.abc import Callable
from typing import Generic
from typing import Protocol
from typing import TypeVar

import grpc

from gateway.caller import CallContext
from gateway.caller import Principal
from gateway.errors import rpc_code
from taskgate.api_keys import hash_api_key
from taskgate.orchestrator.v1 import auth_pb2

# The orchestrator's answers meaning "this key is not valid", as opposed to "could not check".
_REJECTIONS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT)
_LOCK_STRIPES = 64
_REJECTED = object()

Value = TypeVar("Value")


class ApiKeyLookup(Protocol):
    """What the validator needs from the orchestrator client."""

    def validate_api_key(self, api_key: str, context: CallContext) -> auth_pb2.Principal:
        """Resolve a key to its principal or raise grpc.RpcError."""


class _ExpiringEntries(Generic[Value]):
    """Values by key hash for one fixed TTL, at most ``max_entries`` of them, under one lock."""

    def __init__(self, ttl_seconds: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: collections.OrderedDict[str, tuple[float, Value]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> Value | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            expires_at, value = entry
            if expires_at <= self._clock():
                del self._entries[digest]
                return None
            return value

    def put(self, digest: str, value: Value) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._entries.pop(digest, None)
            # Every entry lives for the same TTL, so insertion order is expiry order: the first
            # entry is always the one to drop.
            while len(self._entries) >= self._max_entries:
                self._entries.popitem(last=False)
            self._entries[digest] = (self._clock() + self._ttl, value)


class ApiKeyValidator:
    """Resolve API keys to principals, asking the orchestrator at most once per key per TTL."""

    def __init__(
        self,
        lookup: ApiKeyLookup,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        rejection_ttl_seconds: float = 0.0,
    ) -> None:
        self._lookup = lookup
        self._valid: _ExpiringEntries[Principal] = _ExpiringEntries(ttl_seconds, max_entries, clock)
        self._rejected: _ExpiringEntries[object] = _ExpiringEntries(rejection_ttl_seconds, max_entries, clock)
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    def principal_for(self, api_key: str, context: CallContext) -> Principal | None:
        """Return the key's principal, None when the orchestrator rejects the key (now or lately).

        Raises grpc.RpcError when the orchestrator could not answer (unreachable, timed out).
        """
        digest = hash_api_key(api_key)
        answer = self._cached(digest)
        if answer is not None:
            return None if answer is _REJECTED else answer
        with self._stripes[int(digest[:8], 16) % _LOCK_STRIPES]:
            answer = self._cached(digest)
            if answer is not None:
                return None if answer is _REJECTED else answer
            try:
                message = self._lookup.validate_api_key(api_key, context)
            except grpc.RpcError as ex:
                if rpc_code(ex) in _REJECTIONS:
                    self._rejected.put(digest, _REJECTED)
                    return None
                raise
            principal = Principal.from_proto(message)
            self._valid.put(digest, principal)
            return principal

    def known_principal(self, api_key: str) -> Principal | None:
        """Return the key's principal if it was validated within the TTL, without asking anyone."""
        return self._valid.get(hash_api_key(api_key))

    def _cached(self, digest: str) -> Principal | object | None:
        principal = self._valid.get(digest)
        return principal if principal is not None else self._rejected.get(digest)
