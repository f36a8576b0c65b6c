"""SQLite connections for the store: one writer, two readers, WAL, and the migration runner.

SQLite allows one writer at a time, so every write goes through one connection under an asyncio
lock (a transaction is never interleaved with another coroutine's statements); reads use a second
connection, which WAL lets run while a write is in progress. aiosqlite runs each of these
connections in its own thread, so no query blocks the event loop, at the price of two thread hops
per statement (the statement goes to the thread, its result comes back through the loop's
self-pipe), which cost more than a read by primary key itself.

So ``lookup`` (a short read by key: a task, an API key) runs on a third connection, a plain
``sqlite3`` one read from the loop's thread: no hop, no wait. It is read-only
(``query_only``), in autocommit, and every statement is read to its end, so each read is a
transaction of its own that sees everything committed before it began (WAL: a reader never waits
for the writer, nor the writer for it) and holds no snapshot afterwards. Its busy timeout is zero:
in the rare moment WAL makes a reader wait (the wal-index being rebuilt) it fails at once instead
of blocking the loop, and the read is asked again of the threaded reader.
"""

import asyncio
import contextlib
import logging
import pathlib
import sqlite3
from collections.abc import AsyncIterator
from collections.abc import Callable
from typing import Any

import aiosqlite

from orchestrator.store.database import Database
from orchestrator.store.database import Parameters
from orchestrator.store.database import Row
from orchestrator.store.database import Transaction
from orchestrator.store.dialect import SQLITE_CLOCK_FUNCTION
from orchestrator.store.dialect import Dialect
from orchestrator.store.dialect import sqlite_clock
from orchestrator.store.migrations import Migration
from orchestrator.store.migrations import load_migrations

logger = logging.getLogger(__name__)

URL_PREFIX = "sqlite:///"
# What a read may meet in WAL mode, for a moment: it is then asked again of the threaded reader.
_BUSY_CODES = frozenset((sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED))
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


def database_path(url: str) -> pathlib.Path:
    """Return the file of ``sqlite:///relative/path`` (relative to the working directory) or ``sqlite:////abs``."""
    if not url.startswith(URL_PREFIX) or url == URL_PREFIX:
        raise ValueError("a SQLite URL looks like sqlite:///relative/path or sqlite:////absolute/path")
    return pathlib.Path(url[len(URL_PREFIX) :])


def split_statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (triggers and quoted semicolons kept whole)."""
    statements = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if statement.rstrip(";").strip() and not _is_only_comments(statement):
                statements.append(statement)
            pending = ""
    if pending.strip() and not _is_only_comments(pending):
        raise ValueError("migration script ends with an incomplete statement")
    return statements


def _is_only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def _connect_loop_reader(path: pathlib.Path) -> sqlite3.Connection:
    """Open the read-only connection ``lookup`` uses from the loop's thread (opened in another)."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.row_factory = sqlite3.Row
        for pragma in (*_PRAGMAS, "PRAGMA busy_timeout=0", "PRAGMA query_only=ON"):
            connection.execute(pragma)
        connection.create_function(SQLITE_CLOCK_FUNCTION, 1, sqlite_clock)
    except BaseException:
        connection.close()
        raise
    return connection


def _arguments(parameters: Parameters) -> Any:
    return parameters if isinstance(parameters, dict) else tuple(parameters)


class SQLiteTransaction(Transaction):
    """Statements on the writer connection, inside its immediate transaction."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        cursor = await self._connection.execute(sql, _arguments(parameters))
        count = cursor.rowcount
        await cursor.close()
        return count

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run a query (or a write with ``RETURNING``); return every row."""
        cursor = await self._connection.execute(sql, _arguments(parameters))
        rows = list(await cursor.fetchall())
        await cursor.close()
        return rows


class SQLiteDatabase(Database):
    """The writer and reader connections of one SQLite file."""

    dialect = Dialect()
    single_replica = True

    def __init__(
        self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, loop_reader: sqlite3.Connection
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._loop_reader = loop_reader
        self._write_lock = asyncio.Lock()
        self._in_transaction = SQLiteTransaction(writer)

    @classmethod
    async def open(cls, url: str) -> "SQLiteDatabase":
        """Open (creating the file and its directory if needed) the database of a ``sqlite:///`` URL."""
        path = database_path(url)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        writer = await cls._connect(path)
        try:
            reader = await cls._connect(path)
            await reader.execute("PRAGMA query_only=ON")
        except BaseException:
            await writer.close()
            raise
        try:
            loop_reader = await asyncio.to_thread(_connect_loop_reader, path)
        except BaseException:
            await writer.close()
            await reader.close()
            raise
        return cls(writer, reader, loop_reader)

    @staticmethod
    async def _connect(path: pathlib.Path) -> aiosqlite.Connection:
        # isolation_level=None: autocommit, transactions are opened explicitly with BEGIN IMMEDIATE.
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = sqlite3.Row
        for pragma in _PRAGMAS:
            await connection.execute(pragma)
        await connection.create_function(SQLITE_CLOCK_FUNCTION, 1, sqlite_clock)
        return connection

    def listen(self, channel: str, callback: Callable[[], None]) -> None:
        """Do nothing: SQLite announces nothing, and the one process using the file tells itself."""

    async def close(self) -> None:
        """Close the connections."""
        async with self._write_lock:
            await self._writer.close()
        await self._reader.close()
        self._loop_reader.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SQLiteTransaction]:
        """Hold the write lock and an immediate transaction; commit on success, roll back on error."""
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._in_transaction
                await self._writer.execute("COMMIT")
            except BaseException:
                if self._writer.in_transaction:
                    await self._writer.execute("ROLLBACK")
                raise

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        """Run one writing statement on its own; return the number of rows it changed."""
        async with self._write_lock:
            return await self._in_transaction.execute(sql, parameters)

    async def returning(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run one ``... RETURNING`` statement on its own; return every row it produced."""
        async with self._write_lock:
            return await self._in_transaction.fetch_all(sql, parameters)

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run a query on the reader connection and return every row."""
        return list(await self._reader.execute_fetchall(sql, _arguments(parameters)))

    async def lookup(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run a short read by key on the loop's own connection (the threaded reader if it is busy)."""
        try:
            return self._loop_reader.execute(sql, _arguments(parameters)).fetchall()
        except sqlite3.OperationalError as ex:
            # The primary code: the extended ones (SQLITE_BUSY_RECOVERY, …) keep it in the low byte.
            if ex.sqlite_errorcode & 0xFF not in _BUSY_CODES:
                raise
        return await self.fetch_all(sql, parameters)

    async def migrate(self) -> list[int]:
        """Apply the migrations not yet recorded in ``schema_migrations``; return the versions applied."""
        migrations: list[Migration] = await asyncio.to_thread(load_migrations, self.dialect.name)
        async with self.transaction() as connection:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            rows = await connection.fetch_all("SELECT version FROM schema_migrations")
            applied = {row["version"] for row in rows}
            newly_applied = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                for statement in split_statements(migration.sql):
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, sqlite_clock()),
                )
                newly_applied.append(migration.version)
        for version in newly_applied:
            logger.info("schema migration applied", extra={"version": version})
        return newly_applied

    async def run_in_writer(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``work(connection)`` in one immediate transaction on the writer's thread; return its answer.

        One thread hop for the whole transaction, where ``transaction()`` makes one or more per
        statement: for a write whose statements follow from each other's rows without awaiting
        anything else (the group commit of events, ``store/group_commit.py``). Committed when
        ``work`` returns, rolled back when it raises. It uses aiosqlite's queue of calls to its
        connection's thread (``_execute``), the one way to run several statements in one hop.
        """

        def in_transaction(connection: sqlite3.Connection) -> Any:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            return result

        async with self._write_lock:
            return await self._writer._execute(lambda: in_transaction(self._writer._conn))  # noqa: SLF001
