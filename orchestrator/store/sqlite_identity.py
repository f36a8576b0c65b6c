"""Users, API keys and refresh tokens on SQLite, mixed into ``SQLiteStore``.

They read the schema of migrations 0001 and 0004: users with their password hash, keys with
their description, scopes and rate-limit overrides, and refresh tokens in families.
"""

import datetime
import json
import sqlite3
import uuid
from collections.abc import Sequence

import aiosqlite

from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.domain.accounts import NewAccount
from orchestrator.domain.accounts import NewRefreshToken
from orchestrator.domain.accounts import RateLimitOverrides
from orchestrator.domain.accounts import RefreshOutcome
from orchestrator.domain.accounts import RefreshRotation
from orchestrator.domain.accounts import UserCredentials
from orchestrator.domain.accounts import UserRecord
from orchestrator.errors import AlreadyExistsError
from orchestrator.store.sqlite_database import SQLiteDatabase
from orchestrator.store.sqlite_database import decode_time
from orchestrator.store.sqlite_database import encode_time
from orchestrator.store.sqlite_rows import api_key_from_row
from orchestrator.store.sqlite_rows import key_owner_from_row
from orchestrator.store.sqlite_rows import user_from_row
from taskgate.rfc3339 import utc_now

EMAIL_TAKEN_MESSAGE = "A user with this email exists"


class SQLiteIdentity:
    """The user, API-key and refresh-token methods of ``SQLiteStore``."""

    _db: SQLiteDatabase

    # Users.

    async def create_user(
        self, email: str, username: str, role: str = "user", tier: str = "free"
    ) -> UserRecord:
        """Create a user in a new tenant; raise AlreadyExistsError when the email is taken."""
        user = UserRecord(str(uuid.uuid4()), str(uuid.uuid4()), email, username, role, tier, utc_now())
        try:
            async with self._db.transaction() as connection:
                await _insert_user(connection, user, password_hash=None)
        except sqlite3.IntegrityError as ex:
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
        except sqlite3.IntegrityError as ex:
            raise AlreadyExistsError(EMAIL_TAKEN_MESSAGE) from ex
        return user

    async def ensure_user(self, user: UserRecord) -> None:
        """Create this user (and its tenant) under its own ids unless a user with its id or email exists."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT 1 FROM users WHERE id = ? OR email = ?", (user.id, user.email)
            )
            exists = await cursor.fetchone()
            await cursor.close()
            if exists is None:
                await _insert_user(connection, user, password_hash=None)

    async def get_user(self, user_id: str) -> UserRecord | None:
        """Return a user by id."""
        row = await self._db.fetch_one("SELECT * FROM users WHERE id = ?", (user_id,))
        return user_from_row(row) if row else None

    async def find_user_by_email(self, email: str) -> UserRecord | None:
        """Return a user by email (compared case-insensitively)."""
        row = await self._db.fetch_one("SELECT * FROM users WHERE email = ?", (email,))
        return user_from_row(row) if row else None

    async def find_user_credentials(self, email: str) -> UserCredentials | None:
        """Return a user by email (compared case-insensitively) with its password hash."""
        row = await self._db.fetch_one("SELECT * FROM users WHERE email = ?", (email,))
        return UserCredentials(user_from_row(row), row["password_hash"]) if row else None

    async def set_user_role(self, email: str, role: str) -> UserRecord | None:
        """Give the user with this email a role; None when there is no such user."""
        row = await self._db.write_returning(
            "UPDATE users SET role = ? WHERE email = ? RETURNING *", (role, email)
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
            async with self._db.transaction() as connection:
                await _insert_api_key(connection, key)
        except sqlite3.IntegrityError as ex:
            raise AlreadyExistsError("This API key exists") from ex
        return key

    async def find_api_keys(self, key_prefix: str) -> list[tuple[ApiKeyRecord, UserRecord]]:
        """Return the keys with this lookup prefix, each with its owner (usually zero or one)."""
        rows = await self._db.fetch_all(
            "SELECT k.*, u.tenant_id AS u_tenant_id, u.email, u.username, u.role, u.tier,"
            " u.created_at AS u_created_at, u.name AS u_name"
            " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_prefix = ?",
            (key_prefix,),
        )
        return [(api_key_from_row(row), key_owner_from_row(row)) for row in rows]

    async def touch_api_key(self, key_id: str, used_at: datetime.datetime) -> None:
        """Record that a key was used."""
        await self._db.write(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (encode_time(used_at), key_id)
        )

    async def list_api_keys(self, user_id: str) -> list[ApiKeyRecord]:
        """Return every key of a user, revoked and expired ones included, newest first."""
        rows = await self._db.fetch_all(
            "SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at DESC, rowid DESC", (user_id,)
        )
        return [api_key_from_row(row) for row in rows]

    async def revoke_api_key(self, key_id: str, user_id: str, now: datetime.datetime) -> bool:
        """Revoke one of the user's keys (a revoked one stays as it was); return whether the user has it."""
        row = await self._db.write_returning(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND user_id = ?"
            " RETURNING id",
            (encode_time(now), key_id, user_id),
        )
        return row is not None

    async def get_tenant_api_key(self, key_id: str, tenant_id: str) -> ApiKeyRecord | None:
        """Return a key of any user of a tenant."""
        row = await self._db.fetch_one(
            "SELECT * FROM api_keys WHERE id = ? AND tenant_id = ?", (key_id, tenant_id)
        )
        return api_key_from_row(row) if row else None

    async def set_api_key_rate_limits(
        self, key_id: str, tenant_id: str, overrides: RateLimitOverrides
    ) -> ApiKeyRecord | None:
        """Set the rate-limit overrides of a key of the tenant; return the key, None when there is none."""
        row = await self._db.write_returning(
            "UPDATE api_keys SET rate_limit_per_minute = ?, rate_limit_per_hour = ?"
            " WHERE id = ? AND tenant_id = ? RETURNING *",
            (overrides.per_minute, overrides.per_hour, key_id, tenant_id),
        )
        return api_key_from_row(row) if row else None

    # Refresh tokens.

    async def create_refresh_token(self, user_id: str, token: NewRefreshToken) -> None:
        """Store the first token of a new family for a user, and delete the user's expired tokens."""
        now = utc_now()
        async with self._db.transaction() as connection:
            await connection.execute(
                "DELETE FROM refresh_tokens WHERE user_id = ? AND expires_at < ?", (user_id, encode_time(now))
            )
            await _insert_refresh_token(connection, str(uuid.uuid4()), user_id, token, now)

    async def rotate_refresh_token(
        self, token_hash: str, replacement: NewRefreshToken, now: datetime.datetime
    ) -> RefreshRotation:
        """Use a refresh token once: store its replacement in its family and return its user."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT t.id AS token_id, t.family_id, t.expires_at AS token_expires_at, t.used_at,"
                " t.revoked_at AS token_revoked_at, u.*"
                " FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
                (token_hash,),
            )
            row = await cursor.fetchone()
            await cursor.close()
            if row is None:
                return RefreshRotation(RefreshOutcome.UNKNOWN)
            if row["token_revoked_at"] is not None:
                return RefreshRotation(RefreshOutcome.REVOKED)
            if row["used_at"] is not None:
                await connection.execute(
                    "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
                    (encode_time(now), row["family_id"]),
                )
                return RefreshRotation(RefreshOutcome.REUSED, user_from_row(row))
            if decode_time(row["token_expires_at"]) <= now:
                return RefreshRotation(RefreshOutcome.EXPIRED)
            await connection.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE id = ?", (encode_time(now), row["token_id"])
            )
            user = user_from_row(row)
            await _insert_refresh_token(connection, row["family_id"], user.id, replacement, now)
        return RefreshRotation(RefreshOutcome.ROTATED, user)


async def _insert_user(connection: aiosqlite.Connection, user: UserRecord, password_hash: str | None) -> None:
    """Insert a user and its tenant (named after the user)."""
    await connection.execute(
        "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)",
        (user.tenant_id, user.username, encode_time(user.created_at)),
    )
    await connection.execute(
        "INSERT INTO users (id, tenant_id, email, username, role, tier, created_at, name, password_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            user.id,
            user.tenant_id,
            user.email,
            user.username,
            user.role,
            user.tier,
            encode_time(user.created_at),
            user.name,
            password_hash,
        ),
    )


async def _insert_api_key(connection: aiosqlite.Connection, key: ApiKeyRecord) -> None:
    await connection.execute(
        "INSERT INTO api_keys (id, user_id, tenant_id, name, key_prefix, key_hash, created_at, expires_at,"
        " description, scopes_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.id,
            key.user_id,
            key.tenant_id,
            key.name,
            key.key_prefix,
            key.key_hash,
            encode_time(key.created_at),
            encode_time(key.expires_at),
            key.description,
            json.dumps(list(key.scopes)),
        ),
    )


async def _insert_refresh_token(
    connection: aiosqlite.Connection,
    family_id: str,
    user_id: str,
    token: NewRefreshToken,
    now: datetime.datetime,
) -> None:
    await connection.execute(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            str(uuid.uuid4()),
            family_id,
            user_id,
            token.token_hash,
            encode_time(now),
            encode_time(token.expires_at),
        ),
    )
