"""Durable state behind one interface (``Store``), written once in SQL for SQLite and PostgreSQL."""

from orchestrator.store.base import Store
from orchestrator.store.sqlite_database import URL_PREFIX as SQLITE_URL_PREFIX

POSTGRES_URL_PREFIXES = ("postgresql://", "postgres://")


async def open_store(database_url: str, max_running_per_user: int = 0) -> Store:
    """Open the store a database URL names; the caller migrates it and closes it.

    ``max_running_per_user`` caps the running tasks one user holds at once (0: no cap); claims honour it.
    """
    from orchestrator.store.sql_store import SQLStore

    if database_url.startswith(SQLITE_URL_PREFIX):
        from orchestrator.store.sqlite_database import SQLiteDatabase
        from orchestrator.store.sqlite_search import SQLiteTaskSearch

        database = await SQLiteDatabase.open(database_url)
        return SQLStore(database, SQLiteTaskSearch(database), max_running_per_user)
    if database_url.startswith(POSTGRES_URL_PREFIXES):
        # Imported only when configured: the embedded default starts without loading libpq.
        from orchestrator.store.postgres_database import PostgresDatabase
        from orchestrator.store.postgres_search import PostgresTaskSearch

        database = await PostgresDatabase.open(database_url)
        return SQLStore(database, PostgresTaskSearch(database), max_running_per_user)
    raise ValueError("unsupported database URL: use sqlite:///path or postgresql://…")
