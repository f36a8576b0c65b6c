"""The values the store reads and writes for accounts: registrations, logins, refresh tokens, keys."""

import dataclasses
import datetime
import enum

from orchestrator.store.records import UserRecord


@dataclasses.dataclass(frozen=True)
class NewApiKey:
    """A key to store: its name, lookup prefix and hash (never the key), and what it may do."""

    name: str
    key_prefix: str
    key_hash: str
    description: str = ""
    scopes: tuple[str, ...] = ()
    expires_at: datetime.datetime | None = None


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
