"""Resolving who is calling: a service token with forwarded identity, or an API key.

The orchestrator trusts ``x-taskgate-user-id`` (and tenant, role, and the API key id and scopes
of a caller who used a key) only next to a valid service token, compared in constant time. A
service calling directly brings ``x-api-key`` instead and acts as that key's user. Anything else
is refused.

A direct caller's key is checked against the store, then trusted for ``key_cache_seconds``
(``TASKGATE_API_KEY_CACHE_SECONDS``, 5 s, the gateway's bound for the same keys) and never past the
key's own expiry, so a busy service costs one lookup per key per that time, and a revoked key,
changed limits or a changed role hold at most that long, as through the gateway. The entries are
keyed by the key's hash, never the key, and bounded. ``ValidateApiKey`` (the gateway's own check)
always asks the store: the gateway caches its answer itself.
"""

import asyncio
import contextvars
import datetime
import hmac
import logging
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping

import grpc

from orchestrator.caller import Caller
from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.errors import UnauthenticatedError
from orchestrator.store.base import Store
from taskgate import wire
from taskgate.api_keys import hash_api_key
from taskgate.api_keys import key_matches
from taskgate.api_keys import lookup_prefix
from taskgate.api_keys import normalise_api_key
from taskgate.rfc3339 import utc_now
from taskgate.scopes import parse_scopes_header

logger = logging.getLogger(__name__)

# The caller of the gRPC call the current task serves, with that call's context.
_RESOLVED_CALLER: contextvars.ContextVar[tuple[grpc.aio.ServicerContext, Caller] | None] = (
    contextvars.ContextVar("resolved_caller", default=None)
)
# Recording every use of a busy key would make each request a write; once a minute is plenty.
LAST_USED_RESOLUTION = datetime.timedelta(seconds=60)
# Direct callers' keys trusted at once; past it the oldest entry goes first.
MAX_TRUSTED_KEYS = 10_000


def metadata_dict(metadata: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    """Return gRPC invocation metadata as a dict of text values, keeping each key's first value."""
    result: dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, str):
            result.setdefault(key.lower(), value)
    return result


class ApiKeyAuthenticator:
    """Checks presented API keys against the stored hashes; records their use off the request path."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._touches: dict[str, asyncio.Task[None]] = {}

    async def authenticate(self, presented: str) -> Caller | None:
        """Return the caller a key belongs to, or None for a malformed, unknown, revoked or expired key."""
        found = await self.authenticate_until(presented)
        return found[0] if found is not None else None

    async def authenticate_until(self, presented: str) -> tuple[Caller, datetime.datetime | None] | None:
        """Return the caller a key belongs to and when the key expires (None: never), or None."""
        key = normalise_api_key(presented)
        if key is None:
            return None
        now = utc_now()
        for record, user in await self._store.find_api_keys(lookup_prefix(key)):
            if not key_matches(key, record.key_hash):
                continue
            if not record.is_usable(now):
                return None
            self._touch_later(record, now)
            caller = Caller(
                user.id,
                user.tenant_id,
                user.role,
                user.tier,
                record.id,
                scopes=record.scopes,
                rate_limit_per_minute=record.rate_limit_per_minute or 0,
                rate_limit_per_hour=record.rate_limit_per_hour or 0,
            )
            return caller, record.expires_at
        return None

    async def close(self) -> None:
        """Wait for the last-used updates still in flight."""
        await asyncio.gather(*self._touches.values(), return_exceptions=True)

    def _touch_later(self, record: ApiKeyRecord, now: datetime.datetime) -> None:
        recent = record.last_used_at is not None and now - record.last_used_at < LAST_USED_RESOLUTION
        if recent or record.id in self._touches:
            return
        touch = asyncio.create_task(self._store.touch_api_key(record.id, now), name="api key last used")
        self._touches[record.id] = touch
        touch.add_done_callback(lambda done: self._touched(record.id, done))

    def _touched(self, key_id: str, touch: asyncio.Task[None]) -> None:
        self._touches.pop(key_id, None)
        if not touch.cancelled() and touch.exception() is not None:
            logger.warning("recording an API key's last use failed", extra={"api_key_id": key_id})


class CallerResolver:
    """Turns a call's metadata into its Caller, or raises UnauthenticatedError."""

    def __init__(
        self,
        service_token: str,
        authenticator: ApiKeyAuthenticator,
        key_cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service_token = service_token.encode("utf-8")
        self._authenticator = authenticator
        self._key_cache_seconds = key_cache_seconds
        self._clock = clock
        # Key hash -> (trusted until, by ``clock``; the key's own expiry; its caller).
        self._trusted_keys: dict[str, tuple[float, datetime.datetime | None, Caller]] = {}

    @property
    def authenticator(self) -> ApiKeyAuthenticator:
        """The API-key checker this resolver uses."""
        return self._authenticator

    def has_service_token(self, metadata: Mapping[str, str]) -> bool:
        """Whether the call carries the service token (compared in constant time)."""
        presented = metadata.get(wire.SERVICE_TOKEN)
        if presented is None:
            return False
        return hmac.compare_digest(presented.encode("utf-8"), self._service_token)

    def require_service(self, metadata: Mapping[str, str]) -> None:
        """Raise UnauthenticatedError unless the call carries the service token."""
        if not self.has_service_token(metadata):
            raise UnauthenticatedError("Service token required")

    def require_service_call(self, context: grpc.aio.ServicerContext) -> None:
        """Raise UnauthenticatedError unless this gRPC call carries the service token."""
        self.require_service(metadata_dict(context.invocation_metadata()))

    async def resolve_call(self, context: grpc.aio.ServicerContext) -> Caller:
        """Return the caller of a gRPC call, from its invocation metadata, resolved once per call.

        An interceptor that resolves the caller first (``orchestrator.scope_enforcement``) runs in
        the call's task, so the servicer finds the caller here instead of checking the key again.
        """
        resolved = _RESOLVED_CALLER.get()
        if resolved is not None and resolved[0] is context:
            return resolved[1]
        caller = await self.resolve(metadata_dict(context.invocation_metadata()))
        _RESOLVED_CALLER.set((context, caller))
        return caller

    async def resolve(self, metadata: Mapping[str, str]) -> Caller:
        """Return the caller: forwarded identity next to the service token, else the API key's user."""
        if wire.SERVICE_TOKEN in metadata:
            if not self.has_service_token(metadata):
                raise UnauthenticatedError("Invalid service token")
            user_id = metadata.get(wire.USER_ID, "").strip()
            if not user_id:
                raise UnauthenticatedError("Forwarded caller identity required")
            return Caller(
                user_id=user_id,
                tenant_id=metadata.get(wire.TENANT_ID, "").strip(),
                role=metadata.get(wire.ROLE, "").strip() or "user",
                api_key_id=metadata.get(wire.API_KEY_ID, "").strip(),
                scopes=parse_scopes_header(metadata.get(wire.SCOPES)),
            )
        presented = metadata.get(wire.API_KEY)
        if presented:
            caller = await self._direct_caller(presented)
            if caller is None:
                raise UnauthenticatedError("Invalid API key")
            return caller
        raise UnauthenticatedError("Authentication required")

    async def _direct_caller(self, presented: str) -> Caller | None:
        """Return a direct caller's key's caller: trusted from a recent check, else checked (and kept)."""
        if self._key_cache_seconds <= 0:
            return await self._authenticator.authenticate(presented)
        key = normalise_api_key(presented)
        if key is None:
            return None
        digest = hash_api_key(key)
        trusted = self._trusted_keys.get(digest)
        if trusted is not None:
            until, expires_at, caller = trusted
            if self._clock() < until and (expires_at is None or expires_at > utc_now()):
                return caller
            del self._trusted_keys[digest]
        found = await self._authenticator.authenticate_until(key)
        if found is None:
            return None
        caller, expires_at = found
        if len(self._trusted_keys) >= MAX_TRUSTED_KEYS:
            del self._trusted_keys[next(iter(self._trusted_keys))]
        self._trusted_keys[digest] = (self._clock() + self._key_cache_seconds, expires_at, caller)
        return caller
