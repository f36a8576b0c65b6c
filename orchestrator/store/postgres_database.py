"""PostgreSQL connections for the store: an async pool, transactions, and the migration runner.

Every connection comes from one ``psycopg_pool.AsyncConnectionPool`` (checked before it is handed
out, so connections broken by a database restart are replaced rather than failing a request), in
autocommit mode with dict rows and the UTC time zone. A lost database is reported as
``UnavailableError`` (gRPC UNAVAILABLE, HTTP 503), never as a hang: taking a connection waits at
most ``acquire_timeout`` seconds. Notices (``listen``) come over one more connection per channel,
outside the pool (``orchestrator/store/postgres_notices.py``).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from orchestrator.errors import UnavailableError
from orchestrator.store.database import Database
from orchestrator.store.database import Parameters
from orchestrator.store.database import Row
from orchestrator.store.database import Transaction
from orchestrator.store.dialect import PostgresDialect
from orchestrator.store.migrations import Migration
from orchestrator.store.migrations import load_migrations
from orchestrator.store.postgres_notices import NoticeListener

logger = logging.getLogger(__name__)

POOL_MIN_SIZE = 2
POOL_MAX_SIZE = 20
ACQUIRE_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5
# Any fixed number: every replica takes this advisory lock while it migrates, so two replicas
# starting at once apply each migration once, one after the other.
MIGRATION_LOCK_KEY = 0x7461736B67617465  # "taskgate"
_CONNECTION_SETTINGS = {"options": "-c TimeZone=UTC", "connect_timeout": CONNECT_TIMEOUT_SECONDS}

Connection = psycopg.AsyncConnection[dict[str, Any]]


class PostgresTransaction(Transaction):
    """Statements on one pooled connection, inside its transaction."""

    def __init__(self, connection: Connection, dialect: PostgresDialect) -> None:
        self._connection = connection
        self._dialect = dialect

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        cursor = await self._connection.execute(self._dialect.translate(sql), parameters)
        return cursor.rowcount

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run a query (or a write with ``RETURNING``); return every row."""
        cursor = await self._connection.execute(self._dialect.translate(sql), parameters)
        return await cursor.fetchall()

    async def fetch_all_repeated(self, sql: str, parameters: Parameters, times: int) -> list[list[Row]]:
        """Run one statement ``times`` times in a row, sent together in pipeline mode: one round trip."""
        query = self._dialect.translate(sql)
        async with self._connection.pipeline():
            cursors = [await self._connection.execute(query, parameters) for _ in range(times)]
        return [await cursor.fetchall() for cursor in cursors]


class PostgresDatabase(Database):
    """The connection pool of one PostgreSQL database."""

    def __init__(self, pool: AsyncConnectionPool, url: str) -> None:
        self._pool = pool
        self._url = url
        self._unavailable = False
        self._listeners: dict[str, NoticeListener] = {}
        self.dialect = PostgresDialect()

    @classmethod
    async def open(
        cls,
        url: str,
        min_size: int = POOL_MIN_SIZE,
        max_size: int = POOL_MAX_SIZE,
        acquire_timeout: float = ACQUIRE_TIMEOUT_SECONDS,
    ) -> "PostgresDatabase":
        """Connect once (a wrong URL or a stopped server fails here, with its reason), then open the pool."""
        try:
            probe = await psycopg.AsyncConnection.connect(url, **_CONNECTION_SETTINGS)
        except psycopg.OperationalError as ex:
            # libpq's first line says why (refused, unknown host, bad password), never the password.
            raise ConnectionError(str(ex).strip().splitlines()[0] if str(ex).strip() else "no answer") from ex
        await probe.close()
        pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={**_CONNECTION_SETTINGS, "autocommit": True, "row_factory": dict_row},
            check=AsyncConnectionPool.check_connection,
            timeout=acquire_timeout,
            name="taskgate-store",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=acquire_timeout + CONNECT_TIMEOUT_SECONDS)
        except psycopg.OperationalError as ex:
            await pool.close()
            raise ConnectionError("the connection pool could not be filled") from ex
        return cls(pool, url)

    def listen(self, channel: str, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on this loop for each notice on ``channel``, from its own connection."""
        listener = self._listeners.get(channel)
        if listener is None:
            listener = self._listeners[channel] = NoticeListener(self._url, channel, _CONNECTION_SETTINGS)
        listener.add_callback(callback)

    async def close(self) -> None:
        """Stop listening, then close every connection of the pool."""
        for listener in self._listeners.values():
            await listener.close()
        self._listeners.clear()
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """Lend a pooled connection (autocommit); a lost database becomes UnavailableError."""
        try:
            async with self._pool.connection() as connection:
                yield connection
        except psycopg.OperationalError as ex:
            if not self._unavailable:
                self._unavailable = True
                logger.warning(
                    "database unavailable; calls fail until it is back", extra={"error": type(ex).__name__}
                )
            raise UnavailableError() from ex
        if self._unavailable:
            self._unavailable = False
            logger.info("database reachable again")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        """Lend a connection inside a transaction: committed on success, rolled back on error."""
        async with self.connection() as connection, connection.transaction():
            yield PostgresTransaction(connection, self.dialect)

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        """Run one statement on its own; return the number of rows it changed."""
        async with self.connection() as connection:
            return await PostgresTransaction(connection, self.dialect).execute(sql, parameters)

    async def returning(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run one writing statement with ``RETURNING`` on its own; return the rows it produced."""
        return await self.fetch_all(sql, parameters)

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run one statement on its own and return every row it produced."""
        async with self.connection() as connection:
            return await PostgresTransaction(connection, self.dialect).fetch_all(sql, parameters)

    async def migrate(self) -> list[int]:
        """Apply the migrations not yet recorded in ``schema_migrations``; return the versions applied.

        All of it is one transaction under an advisory lock: DDL is transactional in PostgreSQL, so
        a failed migration leaves nothing half applied, and a second replica waits for the first
        and then finds nothing left to do.
        """
        migrations: list[Migration] = await asyncio.to_thread(load_migrations, self.dialect.name)
        newly_applied = []
        async with self.connection() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor = await connection.execute("SELECT version FROM schema_migrations")
            applied = {row["version"] for row in await cursor.fetchall()}
            for migration in migrations:
                if migration.version in applied:
                    continue
                # A script without parameters may hold several statements (simple query protocol).
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                newly_applied.append(migration.version)
        for version in newly_applied:
            logger.info("schema migration applied", extra={"version": version})
        return newly_applied
