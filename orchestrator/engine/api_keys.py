"""The API-key engine: a caller's own keys (list, create, revoke) and an admin's rate-limit overrides.

A key of someone else is ApiKeyNotFoundError exactly like a missing one. Rate-limit overrides are
set by an ``admin`` or ``owner`` (the role stored for the caller's account, not the one a token
carries) on any key of their own tenant; a key of another tenant is not found, a ``user`` is
refused. The key itself is shown once, when it is created; only its hash and prefix are kept.
An operator may also give an account a key chosen outside (the development key of ``taskgate run``).
"""

import dataclasses
import datetime
import logging

from orchestrator.caller import Caller
from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.domain.accounts import NewApiKey
from orchestrator.domain.accounts import RateLimitOverrides
from orchestrator.domain.accounts import UserRecord
from orchestrator.errors import ApiKeyNotFoundError
from orchestrator.errors import InsufficientScopeError
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import PermissionDeniedError
from orchestrator.errors import UserNotFoundError
from orchestrator.store.base import Store
from taskgate.account_rules import printable
from taskgate.api_key_rules import MAX_DESCRIPTION_CHARACTERS
from taskgate.api_key_rules import MAX_NAME_CHARACTERS
from taskgate.api_key_rules import MAX_RATE_LIMIT
from taskgate.api_key_rules import SCOPES_RULE
from taskgate.api_key_rules import valid_scopes
from taskgate.api_keys import generate_api_key
from taskgate.api_keys import hash_api_key
from taskgate.api_keys import key_matches
from taskgate.api_keys import lookup_prefix
from taskgate.api_keys import normalise_api_key
from taskgate.rfc3339 import utc_now
from taskgate.scopes import scope_beyond

logger = logging.getLogger(__name__)

RATE_LIMIT_RULE = f"must be a whole number from 1 to {MAX_RATE_LIMIT}, or 0 for the tier's limit"
MANAGING_ROLES = ("admin", "owner")
API_KEY_RULE = "api_key must be sk_ followed by 64 hex characters"


@dataclasses.dataclass(frozen=True)
class KeyRequest:
    """What a new key is: its name and description, its scopes, when it expires (None: never)."""

    name: str
    description: str = ""
    scopes: tuple[str, ...] = ()
    expires_at: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class CreatedKey:
    """A key just created: its record, and the key itself, shown this once."""

    record: ApiKeyRecord
    api_key: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class RateLimitChange:
    """A change of a key's overrides: None leaves one as it is, 0 clears it (the tier's applies)."""

    per_minute: int | None = None
    per_hour: int | None = None


class ApiKeyEngine:
    """Manages the caller's API keys."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def list_keys(self, caller: Caller) -> list[ApiKeyRecord]:
        """Return the caller's keys, revoked and expired ones included, newest first."""
        return await self._store.list_api_keys(caller.user_id)

    async def create_key(self, caller: Caller, request: KeyRequest) -> CreatedKey:
        """Create a key for the caller and return it with its secret.

        A caller using a scoped key creates keys within its own scopes only (no escalation): a key
        without scopes would have every scope, so only a full-access caller creates one.
        """
        _check_key_request(request, utc_now())
        beyond = scope_beyond(caller.scopes, request.scopes)
        if beyond is not None:
            raise InsufficientScopeError(beyond)
        api_key = generate_api_key()
        return CreatedKey(await self._store_key(caller, api_key, request), api_key)

    async def adopt_key(self, caller: Caller, api_key: str, request: KeyRequest) -> ApiKeyRecord:
        """Store a key chosen outside as one of the caller's, unless it is stored already; return its record.

        A key already stored is left as it is, whoever it belongs to: adopting it again changes nothing.
        """
        key = normalise_api_key(api_key)
        if key is None:
            raise InvalidArgumentError("api_key", API_KEY_RULE)
        for record, _ in await self._store.find_api_keys(lookup_prefix(key)):
            if key_matches(key, record.key_hash):
                return record
        return await self._store_key(caller, key, request)

    async def revoke_key(self, caller: Caller, key_id: str) -> None:
        """Revoke one of the caller's keys; it stops working on every gateway within the key-cache TTL."""
        if not await self._store.revoke_api_key(key_id, caller.user_id, utc_now()):
            raise ApiKeyNotFoundError()
        logger.info("api key revoked", extra={"user_id": caller.user_id, "api_key_id": key_id})

    async def set_rate_limits(self, caller: Caller, key_id: str, change: RateLimitChange) -> ApiKeyRecord:
        """Change a key's rate-limit overrides: an admin or owner, on a key of their tenant."""
        for field, value in (
            ("rate_limit_per_minute", change.per_minute),
            ("rate_limit_per_hour", change.per_hour),
        ):
            if value is not None and not 0 <= value <= MAX_RATE_LIMIT:
                raise InvalidArgumentError(field, f"{field} {RATE_LIMIT_RULE}")
        user = await self._account(caller)
        key = await self._store.get_tenant_api_key(key_id, user.tenant_id)
        if key is None:
            raise ApiKeyNotFoundError()
        if user.role not in MANAGING_ROLES:
            raise PermissionDeniedError("Only an admin or owner of the tenant may set a key's rate limits")
        overrides = RateLimitOverrides(
            per_minute=_changed(key.rate_limit_per_minute, change.per_minute),
            per_hour=_changed(key.rate_limit_per_hour, change.per_hour),
        )
        updated = await self._store.set_api_key_rate_limits(key_id, user.tenant_id, overrides)
        if updated is None:
            raise ApiKeyNotFoundError()
        logger.info("api key rate limits set", extra={"user_id": user.id, "api_key_id": key_id})
        return updated

    async def _store_key(self, caller: Caller, api_key: str, request: KeyRequest) -> ApiKeyRecord:
        """Check a new key's fields and store its prefix and hash for the caller."""
        _check_key_request(request, utc_now())
        user = await self._account(caller)
        new_key = NewApiKey(
            request.name,
            lookup_prefix(api_key),
            hash_api_key(api_key),
            description=request.description,
            scopes=request.scopes,
            expires_at=request.expires_at,
        )
        record = await self._store.create_api_key(user, new_key)
        logger.info("api key created", extra={"user_id": user.id, "api_key_id": record.id})
        return record

    async def _account(self, caller: Caller) -> UserRecord:
        user = await self._store.get_user(caller.user_id)
        if user is None:
            raise UserNotFoundError()
        return user


def _changed(current: int | None, requested: int | None) -> int | None:
    """Return an override after a change: kept when not asked, cleared by 0, else the new value."""
    if requested is None:
        return current
    return requested or None


def _check_key_request(request: KeyRequest, now: datetime.datetime) -> None:
    """Raise InvalidArgumentError naming the first bad field of a new key."""
    name, description = request.name, request.description
    if not name.strip() or len(name) > MAX_NAME_CHARACTERS or not printable(name):
        raise InvalidArgumentError(
            "name", f"name must be 1..{MAX_NAME_CHARACTERS} printable characters, not blank"
        )
    if len(description) > MAX_DESCRIPTION_CHARACTERS or not printable(description, line_breaks=True):
        raise InvalidArgumentError(
            "description", f"description must be at most {MAX_DESCRIPTION_CHARACTERS} printable characters"
        )
    if not valid_scopes(request.scopes):
        raise InvalidArgumentError("scopes", f"scopes must be {SCOPES_RULE}")
    if request.expires_at is not None and request.expires_at <= now:
        raise InvalidArgumentError("expires_at", "expires_at must be in the future")
