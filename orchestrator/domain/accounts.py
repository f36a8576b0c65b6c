"""Users, API keys and the values of accounts: registrations, logins, refresh tokens."""

import dataclasses
import datetime
import enum


@dataclasses.dataclass(frozen=True)
class UserRecord:
    """A user; every user belongs to one tenant."""

    id: str
    tenant_id: str
    email: str
    username: str
    role: str
    tier: str
    created_at: datetime.datetime
    # The display name given at registration.
    name: str = ""


@dataclasses.dataclass(frozen=True)
class ApiKeyRecord:
    """A stored API key: its lookup prefix and hash, never the key itself."""

    id: str
    user_id: str
    tenant_id: str
    name: str
    key_prefix: str
    key_hash: str
    created_at: datetime.datetime
    last_used_at: datetime.datetime | None = None
    expires_at: datetime.datetime | None = None
    revoked_at: datetime.datetime | None = None
    description: str = ""
    scopes: tuple[str, ...] = ()
    # Overrides of the tier's limits an admin set on this key; None: the tier's.
    rate_limit_per_minute: int | None = None
    rate_limit_per_hour: int | None = None
    # The key's own budgets, inside its user's (orchestrator/engine/budgets.py); None: none.
    tokens_per_minute: int | None = None
    usd_per_day: float | None = None

    def is_usable(self, now: datetime.datetime) -> bool:
        """Whether the key is neither revoked nor expired at ``now``."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


@dataclasses.dataclass(frozen=True)
class NewApiKey:
    """A key to store: its name, lookup prefix and hash (never the key), and what it may do."""

    name: str
    key_prefix: str
    key_hash: str
    description: str = ""
    scopes: tuple[str, ...] = ()
    expires_at: datetime.datetime | None = None
    tokens_per_minute: int | None = None
    usd_per_day: float | None = None


@dataclasses.dataclass(frozen=True)
class NewRefreshToken:
    """A refresh token to store: its SHA-256 (never the token) and when it stops working."""

    token_hash: str
    expires_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class NewAccount:
    """A registration: the user (in a new tenant), its first API key and its first refresh token."""

    email: str
    username: str
    name: str
    password_hash: str
    api_key: NewApiKey
    refresh_token: NewRefreshToken
    role: str = "user"
    tier: str = "free"


@dataclasses.dataclass(frozen=True)
class UserCredentials:
    """A user with the hash a login is checked against (None: the user has no password)."""

    user: UserRecord
    password_hash: str | None


class RefreshOutcome(enum.Enum):
    """What presenting a refresh token led to."""

    ROTATED = "rotated"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    # The token had been used already: someone holds a copy, so its whole family is now revoked.
    REUSED = "reused"


@dataclasses.dataclass(frozen=True)
class RefreshRotation:
    """The outcome of a rotation and, when it rotated or was a reuse, whose token it was."""

    outcome: RefreshOutcome
    user: UserRecord | None = None


@dataclasses.dataclass(frozen=True)
class RateLimitOverrides:
    """A key's rate-limit overrides as an admin sets them; None: the tier's limit applies."""

    per_minute: int | None
    per_hour: int | None
