"""SQLite's short reads by key on the event loop's own connection (``SQLiteDatabase.lookup``).

They must see every commit made on the writer connection before they began and nothing of a
transaction still open, and write nothing.
"""

import asyncio
import sqlite3

import pytest

from orchestrator.store.sqlite_database import SQLiteDatabase

pytestmark = pytest.mark.integration

CREATE = "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)"
SELECT = "SELECT id, body FROM notes WHERE id = ?"


def _run(scenario) -> None:
    asyncio.run(scenario())


def test_a_lookup_sees_a_commit_on_the_writer_and_nothing_of_an_open_transaction(tmp_path):
    async def scenario() -> None:
        database = await SQLiteDatabase.open(f"sqlite:///{tmp_path / 'reads.db'}")
        try:
            await database.execute(CREATE)
            await database.execute("INSERT INTO notes VALUES (?, ?)", ("a", "first"))
            assert [tuple(row) for row in await database.lookup(SELECT, ("a",))] == [("a", "first")]

            async with database.transaction() as transaction:
                await transaction.execute("UPDATE notes SET body = ? WHERE id = ?", ("second", "a"))
                await transaction.execute("INSERT INTO notes VALUES (?, ?)", ("b", "new"))
                # Not committed yet: the loop's reader still sees the last commit.
                assert [tuple(row) for row in await database.lookup(SELECT, ("a",))] == [("a", "first")]
                assert await database.lookup(SELECT, ("b",)) == []
            assert [tuple(row) for row in await database.lookup(SELECT, ("a",))] == [("a", "second")]
            assert [tuple(row) for row in await database.lookup(SELECT, ("b",))] == [("b", "new")]
        finally:
            await database.close()

    _run(scenario)


def test_the_loops_reader_writes_nothing(tmp_path):
    async def scenario() -> None:
        database = await SQLiteDatabase.open(f"sqlite:///{tmp_path / 'reads.db'}")
        try:
            await database.execute(CREATE)
            with pytest.raises(sqlite3.OperationalError):
                await database.lookup("INSERT INTO notes VALUES ('x', 'y') RETURNING id")
            assert await database.fetch_all("SELECT id FROM notes") == []
        finally:
            await database.close()

    _run(scenario)
