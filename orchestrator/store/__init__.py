"""Durable state behind one interface (``Store``), with one implementation per database."""

from orchestrator.store.base import Store
from orchestrator.store.sqlite import SQLiteStore
from orchestrator.store.sqlite_database import URL_PREFIX as SQLITE_URL_PREFIX

POSTGRES_URL_PREFIXES = ("postgresql://", "postgres://")


async def open_store(database_url: str) -> Store:
    """Open the store a database URL names; the caller migrates it and closes it."""
    if database_url.startswith(SQLITE_URL_PREFIX):
        return await SQLiteStore.open(database_url)
    if database_url.startswith(POSTGRES_URL_PREFIXES):
        # Imported only when configured: the embedded default starts without loading libpq.
        from orchestrator.store.postgres import PostgresStore

        return await PostgresStore.open(database_url)
    raise ValueError("unsupported database URL: use sqlite:///path or postgresql://…")
