"""The store on PostgreSQL: shared by every orchestrator replica.

``PostgresStore`` is assembled from one class per area (``postgres_sessions``, ``postgres_search``,
``postgres_tasks``: the task queue and its leases, ``postgres_task_control``, ``postgres_events``);
this module holds users and API keys, and opening, migrating and closing the database.
"""

import datetime
import uuid

import psycopg

from orchestrator.errors import AlreadyExistsError
from orchestrator.store.base import Store
from orchestrator.store.postgres_database import PostgresDatabase
from orchestrator.store.postgres_events import PostgresEvents
from orchestrator.store.postgres_rows import api_key_from_row
from orchestrator.store.postgres_rows import user_from_row
from orchestrator.store.postgres_search import PostgresSearch
from orchestrator.store.postgres_sessions import PostgresSessions
from orchestrator.store.postgres_task_control import PostgresTaskControl
from orchestrator.store.postgres_tasks import PostgresTasks
from orchestrator.store.records import ApiKeyRecord
from orchestrator.store.records import UserRecord
from taskgate.rfc3339 import utc_now


class PostgresStore(
    PostgresSessions, PostgresSearch, PostgresTasks, PostgresTaskControl, PostgresEvents, Store
):
    """Users, API keys, sessions, tasks and events in one PostgreSQL database, for any number of replicas."""

    single_replica = False

    def __init__(self, database: PostgresDatabase) -> None:
        self._db = database

    @classmethod
    async def open(cls, url: str) -> "PostgresStore":
        """Open the store of a ``postgresql://`` URL; call ``migrate()`` before first use."""
        return cls(await PostgresDatabase.open(url))

    async def migrate(self) -> list[int]:
        """Apply the schema migrations not applied yet; return the versions applied now."""
        return await self._db.migrate("postgres")

    async def close(self) -> None:
        """Release the database connections."""
        await self._db.close()

    # Users and API keys.

    async def create_user(
        self, email: str, username: str, role: str = "user", tier: str = "free"
    ) -> UserRecord:
        """Create a user in a new tenant; raise AlreadyExistsError when the email is taken."""
        now = utc_now()
        user = UserRecord(str(uuid.uuid4()), str(uuid.uuid4()), email, username, role, tier, now)
        try:
            async with self._db.transaction() as connection:
                await connection.execute(
                    "INSERT INTO tenants (id, name, created_at) VALUES (%s, %s, %s)",
                    (user.tenant_id, username, now),
                )
                await connection.execute(
                    "INSERT INTO users (id, tenant_id, email, username, role, tier, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (user.id, user.tenant_id, email, username, role, tier, now),
                )
        except psycopg.errors.UniqueViolation as ex:
            raise AlreadyExistsError("A user with this email exists") from ex
        return user

    async def get_user(self, user_id: str) -> UserRecord | None:
        """Return a user by id."""
        row = await self._db.fetch_one("SELECT * FROM users WHERE id = %s", (user_id,))
        return user_from_row(row) if row else None

    async def find_user_by_email(self, email: str) -> UserRecord | None:
        """Return a user by email (compared case-insensitively)."""
        row = await self._db.fetch_one("SELECT * FROM users WHERE lower(email) = lower(%s)", (email,))
        return user_from_row(row) if row else None

    async def create_api_key(
        self,
        user: UserRecord,
        name: str,
        key_prefix: str,
        key_hash: str,
        expires_at: datetime.datetime | None = None,
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
        )
        try:
            await self._db.execute(
                "INSERT INTO api_keys"
                " (id, user_id, tenant_id, name, key_prefix, key_hash, created_at, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (key.id, key.user_id, key.tenant_id, name, key_prefix, key_hash, key.created_at, expires_at),
            )
        except psycopg.errors.UniqueViolation as ex:
            raise AlreadyExistsError("This API key exists") from ex
        return key

    async def find_api_keys(self, key_prefix: str) -> list[tuple[ApiKeyRecord, UserRecord]]:
        """Return the keys with this lookup prefix, each with its owner (usually zero or one)."""
        rows = await self._db.fetch_all(
            "SELECT k.*, u.id AS u_id, u.tenant_id AS u_tenant_id, u.email AS u_email,"
            " u.username AS u_username, u.role AS u_role, u.tier AS u_tier, u.created_at AS u_created_at"
            " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_prefix = %s",
            (key_prefix,),
        )
        return [(api_key_from_row(row), user_from_row(row, prefix="u_")) for row in rows]

    async def touch_api_key(self, key_id: str, used_at: datetime.datetime) -> None:
        """Record that a key was used."""
        await self._db.execute("UPDATE api_keys SET last_used_at = %s WHERE id = %s", (used_at, key_id))
