"""A write transaction in one hop to SQLite's writer thread, the same code as on PostgreSQL.

``run_transaction(database, work)`` runs ``work(transaction)``, an ordinary async function written
against ``Transaction``, in one transaction. On PostgreSQL that is ``database.transaction()``. On
SQLite every statement of ``transaction()`` is one or more hops to the writer connection's thread,
each waiting for the event loop to come round again while the one writer is held; here the whole
of ``work`` runs in that thread instead (``SQLiteDatabase.run_in_writer``), its statements
executed directly: one hop for the transaction, whatever its length.

That is possible because such a ``work`` awaits nothing but its statements, and a statement on the
writer's own thread completes at once: the coroutine runs from start to end in one ``send``. One
that awaits anything else (a sleep, a lock, another service) cannot run there and is refused.
"""

import sqlite3
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine
from typing import Any
from typing import TypeVar

from orchestrator.store.database import Database
from orchestrator.store.database import Parameters
from orchestrator.store.database import Row
from orchestrator.store.database import Transaction
from orchestrator.store.sqlite_database import SQLiteDatabase

T = TypeVar("T")


async def run_transaction(database: Database, work: Callable[[Transaction], Awaitable[T]]) -> T:
    """Run ``work`` in a transaction of its own: committed when it returns, rolled back when it raises."""
    if isinstance(database, SQLiteDatabase):
        return await database.run_in_writer(lambda connection: _run_to_end(work(_InWriterThread(connection))))
    async with database.transaction() as transaction:
        return await work(transaction)


class _InWriterThread(Transaction):
    """Statements on SQLite's writer connection, run directly: only ever used on its own thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        return self._connection.execute(sql, _arguments(parameters)).rowcount

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Run a query (or a write with ``RETURNING``); return every row."""
        return self._connection.execute(sql, _arguments(parameters)).fetchall()


def _arguments(parameters: Parameters) -> Any:
    return parameters if isinstance(parameters, dict) else tuple(parameters)


def _run_to_end(coroutine: Awaitable[T]) -> T:
    """Run a coroutine that never suspends to its end, in one step; return its result."""
    assert isinstance(coroutine, Coroutine)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a transaction run on the writer's thread awaited something other than its statements")
