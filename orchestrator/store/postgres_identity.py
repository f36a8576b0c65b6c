"""Users, API keys and refresh tokens on PostgreSQL, mixed into ``PostgresStore``.

They read the schema of migrations 0001 and 0004: users with their password hash, keys with
their description, scopes and rate-limit overrides, and refresh tokens in families. Emails are
unique by ``lower(email)`` and looked up the same way.
"""

import datetime
import json
import uuid
from collections.abc import Sequence

import psycopg

from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.domain.accounts import NewAccount
from orchestrator.domain.accounts import NewRefreshToken
from orchestrator.domain.accounts import RateLimitOverrides
from orchestrator.domain.accounts import RefreshOutcome
from orchestrator.domain.accounts import RefreshRotation
from orchestrator.domain.accounts import UserCredentials
from orchestrator.domain.accounts import UserRecord
from orchestrator.errors import AlreadyExistsError
from orchestrator.store.postgres_database import Connection
from orchestrator.store.postgres_database import PostgresDatabase
from orchestrator.store.postgres_rows import api_key_from_row
from orchestrator.store.postgres_rows import user_from_row
from orchestrator.store.postgres_rows import utc
from taskgate.rfc3339 import utc_now

EMAIL_TAKEN_MESSAGE = "A user with this email exists"


class PostgresIdentity:
    """The user, API-key and refresh-token methods of ``PostgresStore``."""

    _db: PostgresDatabase

    # Users.

    async def create_user(
        self, email: str, username: str, role: str = "user", tier: str = "free"
    ) -> UserRecord:
        """Create a user in a new tenant; raise AlreadyExistsError when the email is taken."""
        user = UserRecord(str(uuid.uuid4()), str(uuid.uuid4()), email, username, role, tier, utc_now())
        try:
            async with self._db.transaction() as connection:
                await _insert_user(connection, user, password_hash=None)
        except psycopg.errors.UniqueViolation as ex:
            raise AlreadyExistsError(EMAIL_TAKEN_MESSAGE) from ex
        return user

    async def create_account(self, account: NewAccount) -> UserRecord:
        """Create a user with a password in a new tenant, with its first key and refresh token, at once."""
        now = utc_now()
        user = UserRecord(
            str(uuid.uuid4()),
            str(uuid.uuid4()),
            account.email,
            account.username,
            account.role,
            account.tier,
            now,
            name=account.name,
        )
        new_key = account.api_key
        key = ApiKeyRecord(
            str(uuid.uuid4()),
            user.id,
            user.tenant_id,
            new_key.name,
            new_key.key_prefix,
            new_key.key_hash,
            now,
            expires_at=new_key.expires_at,
            description=new_key.description,
            scopes=new_key.scopes,
        )
        try:
            async with self._db.transaction() as connection:
                await _insert_user(connection, user, account.password_hash)
                await _insert_api_key(connection, key)
                await _insert_refresh_token(
                    connection, str(uuid.uuid4()), user.id, account.refresh_token, now
                )
        except psycopg.errors.UniqueViolation as ex:
            raise AlreadyExistsError(EMAIL_TAKEN_MESSAGE) from ex
        return user

    async def ensure_user(self, user: UserRecord) -> None:
        """Create this user (and its tenant) under its own ids unless a user with its id or email exists."""
        async with self._db.transaction() as connection:
            # Replicas starting together serialise here, so only one of them inserts.
            await connection.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            cursor = await connection.execute(
                "SELECT 1 FROM users WHERE id = %s OR lower(email) = lower(%s)", (user.id, user.email)
            )
            if await cursor.fetchone() is None:
                await _insert_user(connection, user, password_hash=None)

    async def get_user(self, user_id: str) -> UserRecord | None:
        """Return a user by id."""
        row = await self._db.fetch_one("SELECT * FROM users WHERE id = %s", (user_id,))
        return user_from_row(row) if row else None

    async def find_user_by_email(self, email: str) -> UserRecord | None:
        """Return a user by email (compared case-insensitively)."""
        row = await self._db.fetch_one("SELECT * FROM users WHERE lower(email) = lower(%s)", (email,))
        return user_from_row(row) if row else None

    async def find_user_credentials(self, email: str) -> UserCredentials | None:
        """Return a user by email (compared case-insensitively) with its password hash."""
        row = await self._db.fetch_one("SELECT * FROM users WHERE lower(email) = lower(%s)", (email,))
        return UserCredentials(user_from_row(row), row["password_hash"]) if row else None

    async def set_user_role(self, email: str, role: str) -> UserRecord | None:
        """Give the user with this email a role; None when there is no such user."""
        row = await self._db.fetch_one(
            "UPDATE users SET role = %s WHERE lower(email) = lower(%s) RETURNING *", (role, email)
        )
        return user_from_row(row) if row else None

    # API keys.

    async def create_api_key(
        self,
        user: UserRecord,
        name: str,
        key_prefix: str,
        key_hash: str,
        expires_at: datetime.datetime | None = None,
        description: str = "",
        scopes: Sequence[str] = (),
    ) -> ApiKeyRecord:
        """Store a new key's prefix and hash for a user."""
        key = ApiKeyRecord(
            str(uuid.uuid4()),
            user.id,
            user.tenant_id,
            name,
            key_prefix,
            key_hash,
            utc_now(),
            expires_at=expires_at,
            description=description,
            scopes=tuple(scopes),
        )
        try:
            async with self._db.connection() as connection:
                await _insert_api_key(connection, key)
        except psycopg.errors.UniqueViolation as ex:
            raise AlreadyExistsError("This API key exists") from ex
        return key

    async def find_api_keys(self, key_prefix: str) -> list[tuple[ApiKeyRecord, UserRecord]]:
        """Return the keys with this lookup prefix, each with its owner (usually zero or one)."""
        rows = await self._db.fetch_all(
            "SELECT k.*, u.id AS u_id, u.tenant_id AS u_tenant_id, u.email AS u_email,"
            " u.username AS u_username, u.role AS u_role, u.tier AS u_tier, u.created_at AS u_created_at,"
            " u.name AS u_name"
            " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_prefix = %s",
            (key_prefix,),
        )
        return [(api_key_from_row(row), user_from_row(row, prefix="u_")) for row in rows]

    async def touch_api_key(self, key_id: str, used_at: datetime.datetime) -> None:
        """Record that a key was used."""
        await self._db.execute("UPDATE api_keys SET last_used_at = %s WHERE id = %s", (used_at, key_id))

    async def list_api_keys(self, user_id: str) -> list[ApiKeyRecord]:
        """Return every key of a user, revoked and expired ones included, newest first."""
        rows = await self._db.fetch_all(
            "SELECT * FROM api_keys WHERE user_id = %s ORDER BY created_at DESC, id DESC", (user_id,)
        )
        return [api_key_from_row(row) for row in rows]

    async def revoke_api_key(self, key_id: str, user_id: str, now: datetime.datetime) -> bool:
        """Revoke one of the user's keys (a revoked one stays as it was); return whether the user has it."""
        changed = await self._db.execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, %s) WHERE id = %s AND user_id = %s",
            (now, key_id, user_id),
        )
        return changed > 0

    async def get_tenant_api_key(self, key_id: str, tenant_id: str) -> ApiKeyRecord | None:
        """Return a key of any user of a tenant."""
        row = await self._db.fetch_one(
            "SELECT * FROM api_keys WHERE id = %s AND tenant_id = %s", (key_id, tenant_id)
        )
        return api_key_from_row(row) if row else None

    async def set_api_key_rate_limits(
        self, key_id: str, tenant_id: str, overrides: RateLimitOverrides
    ) -> ApiKeyRecord | None:
        """Set the rate-limit overrides of a key of the tenant; return the key, None when there is none."""
        row = await self._db.fetch_one(
            "UPDATE api_keys SET rate_limit_per_minute = %s, rate_limit_per_hour = %s"
            " WHERE id = %s AND tenant_id = %s RETURNING *",
            (overrides.per_minute, overrides.per_hour, key_id, tenant_id),
        )
        return api_key_from_row(row) if row else None

    # Refresh tokens.

    async def create_refresh_token(self, user_id: str, token: NewRefreshToken) -> None:
        """Store the first token of a new family for a user, and delete the user's expired tokens."""
        now = utc_now()
        async with self._db.transaction() as connection:
            await connection.execute(
                "DELETE FROM refresh_tokens WHERE user_id = %s AND expires_at < %s", (user_id, now)
            )
            await _insert_refresh_token(connection, str(uuid.uuid4()), user_id, token, now)

    async def rotate_refresh_token(
        self, token_hash: str, replacement: NewRefreshToken, now: datetime.datetime
    ) -> RefreshRotation:
        """Use a refresh token once: store its replacement in its family and return its user."""
        async with self._db.transaction() as connection:
            # The row lock makes concurrent rotations of one token take turns: one use, then a reuse.
            cursor = await connection.execute(
                "SELECT t.id AS token_id, t.family_id, t.expires_at AS token_expires_at, t.used_at,"
                " t.revoked_at AS token_revoked_at, u.*"
                " FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = %s"
                " FOR UPDATE OF t",
                (token_hash,),
            )
            row = await cursor.fetchone()
            if row is None:
                return RefreshRotation(RefreshOutcome.UNKNOWN)
            if row["token_revoked_at"] is not None:
                return RefreshRotation(RefreshOutcome.REVOKED)
            if row["used_at"] is not None:
                await connection.execute(
                    "UPDATE refresh_tokens SET revoked_at = %s WHERE family_id = %s AND revoked_at IS NULL",
                    (now, row["family_id"]),
                )
                return RefreshRotation(RefreshOutcome.REUSED, user_from_row(row))
            if utc(row["token_expires_at"]) <= now:
                return RefreshRotation(RefreshOutcome.EXPIRED)
            await connection.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE id = %s", (now, row["token_id"])
            )
            user = user_from_row(row)
            await _insert_refresh_token(connection, row["family_id"], user.id, replacement, now)
        return RefreshRotation(RefreshOutcome.ROTATED, user)


async def _insert_user(connection: Connection, user: UserRecord, password_hash: str | None) -> None:
    """Insert a user and its tenant (named after the user)."""
    await connection.execute(
        "INSERT INTO tenants (id, name, created_at) VALUES (%s, %s, %s)",
        (user.tenant_id, user.username, user.created_at),
    )
    await connection.execute(
        "INSERT INTO users (id, tenant_id, email, username, role, tier, created_at, name, password_hash)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            user.id,
            user.tenant_id,
            user.email,
            user.username,
            user.role,
            user.tier,
            user.created_at,
            user.name,
            password_hash,
        ),
    )


async def _insert_api_key(connection: Connection, key: ApiKeyRecord) -> None:
    await connection.execute(
        "INSERT INTO api_keys (id, user_id, tenant_id, name, key_prefix, key_hash, created_at, expires_at,"
        " description, scopes_json) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            key.id,
            key.user_id,
            key.tenant_id,
            key.name,
            key.key_prefix,
            key.key_hash,
            key.created_at,
            key.expires_at,
            key.description,
            json.dumps(list(key.scopes)),
        ),
    )


async def _insert_refresh_token(
    connection: Connection, family_id: str, user_id: str, token: NewRefreshToken, now: datetime.datetime
) -> None:
    await connection.execute(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (str(uuid.uuid4()), family_id, user_id, token.token_hash, now, token.expires_at),
    )
