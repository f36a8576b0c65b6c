"""Durable state behind one interface (``Store``), with one implementation per database."""

from orchestrator.store.base import Store
from orchestrator.store.sqlite import SQLiteStore
from orchestrator.store.sqlite_database import URL_PREFIX as SQLITE_URL_PREFIX


async def open_store(database_url: str) -> Store:
    """Open the store a database URL names; the caller migrates it and closes it."""
    if database_url.startswith(SQLITE_URL_PREFIX):
        return await SQLiteStore.open(database_url)
    raise ValueError("unsupported database URL: only sqlite:/// URLs are supported in this build")
