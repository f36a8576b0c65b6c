"""Users, API keys, accounts and refresh tokens.

They read the schema of migrations 0001, 0004 and 0016: users with their password hash, keys with
their description, scopes, rate-limit overrides and budgets, and refresh tokens in families (and,
on PostgreSQL, the insertion order of keys of migration 0009, which SQLite's rowid gives). Emails are compared
case-insensitively through ``dialect.email_equals`` (the column's NOCASE collation on SQLite,
``lower()`` on PostgreSQL, as each database's unique index does). A refresh token is rotated in one
transaction that holds its row (``FOR UPDATE`` on PostgreSQL; SQLite's single writer already runs
rotations one after the other), so two rotations of one token at once are one use and one reuse.
"""

import datetime
import uuid

from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.domain.accounts import NewAccount
from orchestrator.domain.accounts import NewApiKey
from orchestrator.domain.accounts import NewRefreshToken
from orchestrator.domain.accounts import RateLimitOverrides
from orchestrator.domain.accounts import RefreshOutcome
from orchestrator.domain.accounts import RefreshRotation
from orchestrator.domain.accounts import UserCredentials
from orchestrator.domain.accounts import UserRecord
from orchestrator.errors import AlreadyExistsError
from orchestrator.errors import ApiKeyLimitError
from orchestrator.events import compact_json
from orchestrator.store.database import Database
from orchestrator.store.database import Statements
from orchestrator.store.database import Transaction
from orchestrator.store.dialect import Dialect
from orchestrator.store.rows import api_key_from_row
from orchestrator.store.rows import stored_time
from orchestrator.store.rows import user_from_row
from taskgate.rfc3339 import utc_now

EMAIL_TAKEN_MESSAGE = "A user with this email exists"
KEY_TAKEN_MESSAGE = "This API key exists"

# The columns of a UserRecord (the password hash is read only where it is checked).
USER_COLUMNS = "id, tenant_id, email, username, role, tier, created_at, name"
# The columns of an ApiKeyRecord (not PostgreSQL's ``position``, which only orders them).
API_KEY_COLUMNS = (
    "id, user_id, tenant_id, name, key_prefix, key_hash, created_at, last_used_at, expires_at,"
    " revoked_at, description, scopes_json, rate_limit_per_minute, rate_limit_per_hour,"
    " tokens_per_minute, usd_per_day"
)


class IdentityQueries:
    """Users and their tenants, API keys, accounts and refresh-token families."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # Users.

    async def create_user(
        self, email: str, username: str, role: str = "user", tier: str = "free"
    ) -> UserRecord:
        """Insert the tenant and the user in one transaction; the email's unique index rejects a taken one."""
        user = UserRecord(str(uuid.uuid4()), str(uuid.uuid4()), email, username, role, tier, utc_now())
        try:
            async with self._db.transaction() as transaction:
                await _insert_user(transaction, self._db.dialect, user, password_hash=None)
        except self._db.dialect.unique_violation as ex:
            raise AlreadyExistsError(EMAIL_TAKEN_MESSAGE) from ex
        return user

    async def create_account(self, account: NewAccount) -> UserRecord:
        """Insert the tenant, the user, the key and the refresh token in one transaction.

        The unique index on email rejects a taken one, which rolls back all four.
        """
        dialect = self._db.dialect
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
        key = _api_key_record(user, account.api_key, now)
        try:
            async with self._db.transaction() as transaction:
                await _insert_user(transaction, dialect, user, account.password_hash)
                await _insert_api_key(transaction, dialect, key)
                await _insert_refresh_token(
                    transaction, dialect, str(uuid.uuid4()), user.id, account.refresh_token, now
                )
        except dialect.unique_violation as ex:
            raise AlreadyExistsError(EMAIL_TAKEN_MESSAGE) from ex
        return user

    async def ensure_user(self, user: UserRecord) -> None:
        """Look for the user and insert it in one transaction, which on PostgreSQL locks writes to users."""
        dialect = self._db.dialect
        async with self._db.transaction() as transaction:
            lock = dialect.lock_table_writes("users")
            if lock is not None:
                # Replicas starting together take turns here, so only one of them inserts (and a
                # registration of the same email meanwhile waits, then finds it taken).
                await transaction.execute(lock)
            found = await transaction.fetch_one(
                f"SELECT 1 AS found FROM users WHERE id = :id OR {dialect.email_equals('email')}",
                {"id": user.id, "email": user.email},
            )
            if found is None:
                await _insert_user(transaction, dialect, user, password_hash=None)

    async def get_user(self, user_id: str) -> UserRecord | None:
        row = await self._db.fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return user_from_row(row) if row else None

    async def find_user_by_email(self, email: str) -> UserRecord | None:
        row = await self._db.fetch_one(
            f"SELECT {USER_COLUMNS} FROM users WHERE {self._db.dialect.email_equals('email')}",
            {"email": email},
        )
        return user_from_row(row) if row else None

    async def find_user_credentials(self, email: str) -> UserCredentials | None:
        row = await self._db.fetch_one(
            f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE {self._db.dialect.email_equals('email')}",
            {"email": email},
        )
        return UserCredentials(user_from_row(row), row["password_hash"]) if row else None

    async def set_user_role(self, email: str, role: str) -> UserRecord | None:
        rows = await self._db.returning(
            f"UPDATE users SET role = :role WHERE {self._db.dialect.email_equals('email')}"
            f" RETURNING {USER_COLUMNS}",
            {"role": role, "email": email},
        )
        return user_from_row(rows[0]) if rows else None

    # API keys.

    async def create_api_key(self, user: UserRecord, key: NewApiKey, max_active: int = 0) -> ApiKeyRecord:
        """Count the user's active keys and insert the new one in one transaction.

        With ``max_active`` > 0, a user holding that many unrevoked, unexpired keys gets
        ApiKeyLimitError and nothing is stored. On PostgreSQL the user's row is locked first, so
        creations for one user take turns and the count is exact (SQLite has one writer already).
        A unique violation (the key exists) is AlreadyExistsError.
        """
        dialect = self._db.dialect
        now = utc_now()
        record = _api_key_record(user, key, now)
        try:
            async with self._db.transaction() as transaction:
                if max_active > 0:
                    await transaction.fetch_one(
                        f"SELECT id FROM users WHERE id = ?{dialect.for_update}", (user.id,)
                    )
                    active = await transaction.fetch_one(
                        "SELECT COUNT(*) AS active FROM api_keys WHERE user_id = ? AND revoked_at IS NULL"
                        " AND (expires_at IS NULL OR expires_at > ?)",
                        (user.id, dialect.encode_time(now)),
                    )
                    if active["active"] >= max_active:
                        raise ApiKeyLimitError(max_active)
                await _insert_api_key(transaction, dialect, record)
        except dialect.unique_violation as ex:
            raise AlreadyExistsError(KEY_TAKEN_MESSAGE) from ex
        return record

    async def find_api_keys(self, key_prefix: str) -> list[tuple[ApiKeyRecord, UserRecord]]:
        """Join each key to its user, whose columns are prefixed ``u_``."""
        rows = await self._db.lookup(
            "SELECT k.id, k.user_id, k.tenant_id, k.name, k.key_prefix, k.key_hash, k.created_at,"
            " k.last_used_at, k.expires_at, k.revoked_at, k.description, k.scopes_json,"
            " k.rate_limit_per_minute, k.rate_limit_per_hour, k.tokens_per_minute, k.usd_per_day,"
            " u.id AS u_id, u.tenant_id AS u_tenant_id, u.email AS u_email, u.username AS u_username,"
            " u.role AS u_role, u.tier AS u_tier, u.created_at AS u_created_at, u.name AS u_name"
            " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_prefix = ?",
            (key_prefix,),
        )
        return [(api_key_from_row(row), user_from_row(row, prefix="u_")) for row in rows]

    async def touch_api_key(self, key_id: str, used_at: datetime.datetime) -> None:
        await self._db.execute(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
            (self._db.dialect.encode_time(used_at), key_id),
        )

    async def list_api_keys(self, user_id: str) -> list[ApiKeyRecord]:
        # Keys created in the same instant: the later inserted first, on both databases.
        rows = await self._db.fetch_all(
            f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE user_id = ?"
            f" ORDER BY created_at DESC, {self._db.dialect.insertion_order} DESC",
            (user_id,),
        )
        return [api_key_from_row(row) for row in rows]

    async def revoke_api_key(self, key_id: str, user_id: str, now: datetime.datetime) -> bool:
        """Keep the first revocation's time (``COALESCE``), so revoking again changes nothing."""
        changed = await self._db.execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND user_id = ?",
            (self._db.dialect.encode_time(now), key_id, user_id),
        )
        return changed > 0

    async def get_tenant_api_key(self, key_id: str, tenant_id: str) -> ApiKeyRecord | None:
        row = await self._db.fetch_one(
            f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ? AND tenant_id = ?", (key_id, tenant_id)
        )
        return api_key_from_row(row) if row else None

    async def set_api_key_rate_limits(
        self, key_id: str, tenant_id: str, overrides: RateLimitOverrides
    ) -> ApiKeyRecord | None:
        rows = await self._db.returning(
            "UPDATE api_keys SET rate_limit_per_minute = ?, rate_limit_per_hour = ?"
            f" WHERE id = ? AND tenant_id = ? RETURNING {API_KEY_COLUMNS}",
            (overrides.per_minute, overrides.per_hour, key_id, tenant_id),
        )
        return api_key_from_row(rows[0]) if rows else None

    # Refresh tokens.

    async def create_refresh_token(self, user_id: str, token: NewRefreshToken) -> None:
        """Delete the user's expired tokens and insert the new one in one transaction."""
        dialect = self._db.dialect
        now = utc_now()
        async with self._db.transaction() as transaction:
            await transaction.execute(
                "DELETE FROM refresh_tokens WHERE user_id = ? AND expires_at < ?",
                (user_id, dialect.encode_time(now)),
            )
            await _insert_refresh_token(transaction, dialect, str(uuid.uuid4()), user_id, token, now)

    async def rotate_refresh_token(
        self, token_hash: str, replacement: NewRefreshToken, now: datetime.datetime
    ) -> RefreshRotation:
        """In one transaction: lock the token's row, then revoke its family or use it and add the next."""
        dialect = self._db.dialect
        async with self._db.transaction() as transaction:
            # The row lock makes concurrent rotations of one token take turns: one use, then a
            # reuse. Only the token's row is locked, not its user's.
            token = await transaction.fetch_one(
                "SELECT id, family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens"
                f" WHERE token_hash = ?{dialect.for_update}",
                (token_hash,),
            )
            if token is None:
                return RefreshRotation(RefreshOutcome.UNKNOWN)
            if token["revoked_at"] is not None:
                return RefreshRotation(RefreshOutcome.REVOKED)
            if token["used_at"] is not None:
                await transaction.execute(
                    "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
                    (dialect.encode_time(now), token["family_id"]),
                )
                return RefreshRotation(RefreshOutcome.REUSED, await _user_of(transaction, token["user_id"]))
            if stored_time(token["expires_at"]) <= now:
                return RefreshRotation(RefreshOutcome.EXPIRED)
            await transaction.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE id = ?", (dialect.encode_time(now), token["id"])
            )
            user = await _user_of(transaction, token["user_id"])
            await _insert_refresh_token(transaction, dialect, token["family_id"], user.id, replacement, now)
        return RefreshRotation(RefreshOutcome.ROTATED, user)


async def _user_of(transaction: Transaction, user_id: str) -> UserRecord:
    """Return the user a refresh token belongs to (its foreign key guarantees one)."""
    row = await transaction.fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
    return user_from_row(row)


async def _insert_user(
    transaction: Transaction, dialect: Dialect, user: UserRecord, password_hash: str | None
) -> None:
    """Insert a user and its tenant (named after the user)."""
    await transaction.execute(
        "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)",
        (user.tenant_id, user.username, dialect.encode_time(user.created_at)),
    )
    await transaction.execute(
        "INSERT INTO users (id, tenant_id, email, username, role, tier, created_at, name, password_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            user.id,
            user.tenant_id,
            user.email,
            user.username,
            user.role,
            user.tier,
            dialect.encode_time(user.created_at),
            user.name,
            password_hash,
        ),
    )


def _api_key_record(user: UserRecord, new_key: NewApiKey, now: datetime.datetime) -> ApiKeyRecord:
    """The record of a key the user gets now, under a new id."""
    return ApiKeyRecord(
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
        tokens_per_minute=new_key.tokens_per_minute,
        usd_per_day=new_key.usd_per_day,
    )


async def _insert_api_key(writer: Statements, dialect: Dialect, key: ApiKeyRecord) -> None:
    """Insert a key, on its own (a database) or as part of a transaction."""
    await writer.execute(
        "INSERT INTO api_keys (id, user_id, tenant_id, name, key_prefix, key_hash, created_at, expires_at,"
        " description, scopes_json, tokens_per_minute, usd_per_day)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.id,
            key.user_id,
            key.tenant_id,
            key.name,
            key.key_prefix,
            key.key_hash,
            dialect.encode_time(key.created_at),
            dialect.encode_time(key.expires_at),
            key.description,
            compact_json(list(key.scopes)),
            key.tokens_per_minute,
            key.usd_per_day,
        ),
    )


async def _insert_refresh_token(
    transaction: Transaction,
    dialect: Dialect,
    family_id: str,
    user_id: str,
    token: NewRefreshToken,
    now: datetime.datetime,
) -> None:
    """Insert one token of a family, unused and unrevoked."""
    await transaction.execute(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            str(uuid.uuid4()),
            family_id,
            user_id,
            token.token_hash,
            dialect.encode_time(now),
            dialect.encode_time(token.expires_at),
        ),
    )
