"""The small database interface every query of the store is written against.

A ``Database`` runs one statement on its own (``execute``, ``fetch_one``, ``fetch_all``, and
``returning`` for a write that returns rows) or lends a ``Transaction`` that runs several
atomically; both are ``Statements``, so a query helper can take either. Two drivers implement
it: ``SQLiteDatabase`` (aiosqlite) and ``PostgresDatabase`` (a psycopg async pool). Statements
use ``?`` or ``:name`` parameters; the driver's ``dialect`` translates them and answers for
everything else that differs (``orchestrator/store/dialect.py``).
"""

import abc
import contextlib
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from orchestrator.store.dialect import Dialect

#: A row: its columns by name (``sqlite3.Row`` or a dict).
Row = Mapping[str, Any]
Parameters = Sequence[Any] | Mapping[str, Any]


class Statements(abc.ABC):
    """What runs statements: a transaction, or a database running each statement on its own."""

    @abc.abstractmethod
    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        """Run a writing statement; return the number of rows it changed."""

    @abc.abstractmethod
    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run a query (in a transaction, a write with ``RETURNING`` too); return every row."""

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        """Run a query (in a transaction, a write with ``RETURNING`` too); return its first row."""
        rows = await self.fetch_all(sql, parameters)
        return rows[0] if rows else None

    async def fetch_value(self, sql: str, parameters: Parameters = ()) -> Any:
        """Run a query; return the first column of its first row (None when no row)."""
        row = await self.fetch_one(sql, parameters)
        return row[next(iter(row.keys()))] if row is not None else None


class Transaction(Statements):
    """Statements on one connection inside one transaction: all of them commit, or none."""

    async def fetch_all_repeated(self, sql: str, parameters: Parameters, times: int) -> list[list[Row]]:
        """Run one statement ``times`` times in a row, each seeing the ones before; return each run's rows.

        A driver that can sends them all at once (PostgreSQL's pipeline mode: one round trip).
        """
        return [await self.fetch_all(sql, parameters) for _ in range(times)]


class Database(Statements):
    """One database: single statements (each on its own), transactions, migrations."""

    dialect: Dialect
    #: True when one orchestrator process owns the database (SQLite): a task still RUNNING when it
    #: starts was interrupted by its previous life. False when replicas share it (PostgreSQL).
    single_replica = False

    async def lookup(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run a short read (a few rows found by key, such as a task by its id); return every row.

        Meant for reads that cost microseconds, on the path of every call: SQLite answers them on
        a connection of the event loop's own, without the two thread hops of ``fetch_all``. Any
        other read (a page, a count, a search) uses ``fetch_all``. Elsewhere it is ``fetch_all``.
        """
        return await self.fetch_all(sql, parameters)

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """Lend a transaction: committed when the block ends, rolled back when it raises."""

    @abc.abstractmethod
    async def returning(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run one writing statement with ``RETURNING`` on its own; return the rows it produced."""

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet; return the versions applied now."""

    @abc.abstractmethod
    def listen(self, channel: str, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on this loop whenever the database announces ``channel``, best effort.

        Notices can be lost (while the database is away), so what they announce needs a fallback.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connections."""


def marks(values: Sequence[Any]) -> str:
    """Return one ``?`` per value, comma-separated, for an ``IN (…)`` list (values stay parameters)."""
    return ", ".join("?" for _ in values)


def named_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """Return ``:name0, :name1, …`` for an ``IN (…)`` list of a named statement, and its parameters."""
    keys = [f"{name}{index}" for index in range(len(values))]
    return ", ".join(f":{key}" for key in keys), dict(zip(keys, values, strict=True))
