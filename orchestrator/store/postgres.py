"""The store on PostgreSQL: shared by every orchestrator replica.

``PostgresStore`` is assembled from one class per area (``postgres_identity``: users, API keys and
refresh tokens, ``postgres_sessions``, ``postgres_search``, ``postgres_tasks``: the task queue and
its leases, ``postgres_task_control``, ``postgres_events``); this module opens, migrates and closes
the database.
"""

from orchestrator.store.base import Store
from orchestrator.store.postgres_approvals import PostgresApprovals
from orchestrator.store.postgres_database import PostgresDatabase
from orchestrator.store.postgres_events import PostgresEvents
from orchestrator.store.postgres_identity import PostgresIdentity
from orchestrator.store.postgres_schedules import PostgresSchedules
from orchestrator.store.postgres_search import PostgresSearch
from orchestrator.store.postgres_sessions import PostgresSessions
from orchestrator.store.postgres_task_control import PostgresTaskControl
from orchestrator.store.postgres_tasks import PostgresTasks


class PostgresStore(
    PostgresIdentity,
    PostgresSessions,
    PostgresSearch,
    PostgresTasks,
    PostgresTaskControl,
    PostgresEvents,
    PostgresSchedules,
    PostgresApprovals,
    Store,
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
