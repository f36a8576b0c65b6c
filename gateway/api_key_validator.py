"""API-key validation through the orchestrator, with a short in-process cache.

A validated key is trusted for ``ttl_seconds`` (revocation is honoured within that time); the cache
is keyed by the key's hash, never the key, and bounded. Concurrent misses for one key wait for a
single lookup instead of each asking the orchestrator (locks are striped by hash, so memory stays
fixed whatever the number of keys).
"""

import collections
import threading
import time
from collections.abc import Callable
from typing import Protocol

import grpc

from gateway.caller import CallContext
from gateway.caller import Principal
from gateway.errors import rpc_code
from taskgate.api_keys import hash_api_key
from taskgate.orchestrator.v1 import auth_pb2

# The orchestrator's answers meaning "this key is not valid", as opposed to "could not check".
_REJECTIONS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT)
_LOCK_STRIPES = 64


class ApiKeyLookup(Protocol):
    """What the validator needs from the orchestrator client."""

    def validate_api_key(self, api_key: str, context: CallContext) -> auth_pb2.Principal:
        """Resolve a key to its principal or raise grpc.RpcError."""


class ApiKeyValidator:
    """Resolve API keys to principals, asking the orchestrator at most once per key per TTL."""

    def __init__(
        self,
        lookup: ApiKeyLookup,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: collections.OrderedDict[str, tuple[float, Principal]] = collections.OrderedDict()
        self._entries_lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    def principal_for(self, api_key: str, context: CallContext) -> Principal | None:
        """Return the key's principal, None when the orchestrator rejects the key.

        Raises grpc.RpcError when the orchestrator could not answer (unreachable, timed out).
        """
        digest = hash_api_key(api_key)
        principal = self._cached(digest)
        if principal is not None:
            return principal
        with self._stripes[int(digest[:8], 16) % _LOCK_STRIPES]:
            principal = self._cached(digest)
            if principal is not None:
                return principal
            try:
                message = self._lookup.validate_api_key(api_key, context)
            except grpc.RpcError as ex:
                if rpc_code(ex) in _REJECTIONS:
                    return None
                raise
            principal = Principal.from_proto(message)
            self._store(digest, principal)
            return principal

    def _cached(self, digest: str) -> Principal | None:
        with self._entries_lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            expires_at, principal = entry
            if expires_at <= self._clock():
                del self._entries[digest]
                return None
            return principal

    def _store(self, digest: str, principal: Principal) -> None:
        if self._ttl <= 0:
            return
        with self._entries_lock:
            self._entries.pop(digest, None)
            # Every entry lives for the same TTL, so insertion order is expiry order: the first
            # entry is always the one to drop.
            while len(self._entries) >= self._max_entries:
                self._entries.popitem(last=False)
            self._entries[digest] = (self._clock() + self._ttl, principal)
