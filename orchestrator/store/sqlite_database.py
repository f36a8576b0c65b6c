"""SQLite connections for the store: one writer, one reader, WAL, and the migration runner.

SQLite allows one writer at a time, so every write goes through one connection under an asyncio
lock (a transaction is never interleaved with another coroutine's statements); reads use a second
connection, which WAL lets run while a write is in progress. aiosqlite runs each connection in
its own thread, so no query blocks the event loop.
"""

import asyncio
import contextlib
import datetime
import logging
import pathlib
import sqlite3
from collections.abc import AsyncIterator
from collections.abc import Iterable
from typing import Any

import aiosqlite

from orchestrator.store.migrations import Migration
from orchestrator.store.migrations import load_migrations

logger = logging.getLogger(__name__)

URL_PREFIX = "sqlite:///"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
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


def encode_time(value: datetime.datetime | None) -> str | None:
    """Return the stored form of a time: fixed-width UTC text, so text order is time order."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use aware UTC times")
    return value.astimezone(datetime.UTC).strftime(_TIME_FORMAT)


def decode_time(text: str | None) -> datetime.datetime | None:
    """Return the aware UTC datetime of a stored time."""
    if text is None:
        return None
    return datetime.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=datetime.UTC)


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


class SQLiteDatabase:
    """The writer and reader connections of one SQLite file."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()

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
        return cls(writer, reader)

    @staticmethod
    async def _connect(path: pathlib.Path) -> aiosqlite.Connection:
        # isolation_level=None: autocommit, transactions are opened explicitly with BEGIN IMMEDIATE.
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = sqlite3.Row
        for pragma in _PRAGMAS:
            await connection.execute(pragma)
        return connection

    async def close(self) -> None:
        """Close both connections."""
        async with self._write_lock:
            await self._writer.close()
        await self._reader.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the write lock and an immediate transaction; commit on success, roll back on error."""
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
                await self._writer.execute("COMMIT")
            except BaseException:
                if self._writer.in_transaction:
                    await self._writer.execute("ROLLBACK")
                raise

    async def write(self, sql: str, parameters: Iterable[Any] = ()) -> int:
        """Run one writing statement on its own; return the number of rows it changed."""
        async with self._write_lock:
            cursor = await self._writer.execute(sql, tuple(parameters))
            count = cursor.rowcount
            await cursor.close()
            return count

    async def write_returning(self, sql: str, parameters: Iterable[Any] = ()) -> sqlite3.Row | None:
        """Run one ``... RETURNING`` statement on its own; return the first row it produced."""
        async with self._write_lock:
            cursor = await self._writer.execute(sql, tuple(parameters))
            row = await cursor.fetchone()
            await cursor.fetchall()
            await cursor.close()
            return row

    async def write_returning_all(self, sql: str, parameters: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Run one ``... RETURNING`` statement on its own; return every row it produced."""
        async with self._write_lock:
            cursor = await self._writer.execute(sql, tuple(parameters))
            rows = list(await cursor.fetchall())
            await cursor.close()
            return rows

    async def fetch_all(self, sql: str, parameters: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Run a query on the reader connection and return every row."""
        return list(await self._reader.execute_fetchall(sql, tuple(parameters)))

    async def fetch_one(self, sql: str, parameters: Iterable[Any] = ()) -> sqlite3.Row | None:
        """Run a query on the reader connection and return its first row."""
        rows = await self.fetch_all(sql, parameters)
        return rows[0] if rows else None

    async def migrate(self, dialect: str = "sqlite") -> list[int]:
        """Apply the migrations not yet recorded in ``schema_migrations``; return the versions applied."""
        migrations: list[Migration] = await asyncio.to_thread(load_migrations, dialect)
        async with self.transaction() as connection:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = {
                row[0] for row in await connection.execute_fetchall("SELECT version FROM schema_migrations")
            }
            newly_applied = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                for statement in split_statements(migration.sql):
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, encode_time(datetime.datetime.now(datetime.UTC))),
                )
                newly_applied.append(migration.version)
        for version in newly_applied:
            logger.info("schema migration applied", extra={"version": version})
        return newly_applied
