"""The store interface: every durable read and write the orchestrator makes goes through it.

One implementation per database (``SQLiteStore`` now, a PostgreSQL one later); the engine and
the servicers only see this interface. Reads that take a ``user_id`` are scoped to that user: a
row of someone else is reported exactly like a missing one.
"""

import abc
import datetime

from orchestrator.events import Event
from orchestrator.store.records import ApiKeyRecord
from orchestrator.store.records import NewTask
from orchestrator.store.records import SessionRecord
from orchestrator.store.records import TaskOutcome
from orchestrator.store.records import TaskRecord
from orchestrator.store.records import TaskStatus
from orchestrator.store.records import UserRecord


class Store(abc.ABC):
    """Durable state: users, API keys, sessions, tasks and their events."""

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply the schema migrations not applied yet; return the versions applied now."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the database connections."""

    # Users and API keys.

    @abc.abstractmethod
    async def create_user(
        self, email: str, username: str, role: str = "user", tier: str = "free"
    ) -> UserRecord:
        """Create a user in a new tenant; raise AlreadyExistsError when the email is taken."""

    @abc.abstractmethod
    async def get_user(self, user_id: str) -> UserRecord | None:
        """Return a user by id."""

    @abc.abstractmethod
    async def find_user_by_email(self, email: str) -> UserRecord | None:
        """Return a user by email (compared case-insensitively)."""

    @abc.abstractmethod
    async def create_api_key(
        self,
        user: UserRecord,
        name: str,
        key_prefix: str,
        key_hash: str,
        expires_at: datetime.datetime | None = None,
    ) -> ApiKeyRecord:
        """Store a new key's prefix and hash for a user."""

    @abc.abstractmethod
    async def find_api_keys(self, key_prefix: str) -> list[tuple[ApiKeyRecord, UserRecord]]:
        """Return the keys with this lookup prefix, each with its owner (usually zero or one)."""

    @abc.abstractmethod
    async def touch_api_key(self, key_id: str, used_at: datetime.datetime) -> None:
        """Record that a key was used."""

    # Sessions.

    @abc.abstractmethod
    async def create_session(
        self, user_id: str, tenant_id: str, session_id: str | None = None, title: str = ""
    ) -> SessionRecord:
        """Create a session (with a new id unless one is given)."""

    @abc.abstractmethod
    async def get_session(self, session_id: str, user_id: str) -> SessionRecord | None:
        """Return one of the user's sessions that is not deleted."""

    # Tasks.

    @abc.abstractmethod
    async def create_task(self, task: NewTask) -> TaskRecord:
        """Store a QUEUED task, creating its session if absent; a foreign session is SessionNotFoundError."""

    @abc.abstractmethod
    async def get_task(self, task_id: str, user_id: str) -> TaskRecord | None:
        """Return one of the user's tasks."""

    @abc.abstractmethod
    async def list_tasks(
        self,
        user_id: str,
        limit: int,
        offset: int,
        session_id: str | None = None,
        status: TaskStatus | None = None,
    ) -> tuple[list[TaskRecord], int]:
        """Return one page of the user's tasks, newest first, and how many match in total."""

    @abc.abstractmethod
    async def claim_next(self, worker_id: str, lease_seconds: float) -> TaskRecord | None:
        """Atomically move the oldest QUEUED task to RUNNING for this worker and return it.

        Exactly one caller gets each task, however many workers and replicas claim at once.
        """

    @abc.abstractmethod
    async def list_running_tasks(self) -> list[TaskRecord]:
        """Return every RUNNING task, whoever claimed it."""

    @abc.abstractmethod
    async def update_task_progress(self, task_id: str, progress: float) -> None:
        """Record how far a running task is (0..1)."""

    @abc.abstractmethod
    async def finish_task(self, task_id: str, outcome: TaskOutcome) -> None:
        """Record a task's terminal state, and add its usage to its session."""

    # Events.

    @abc.abstractmethod
    async def append_event(self, event: Event) -> None:
        """Store an event under the seq it carries; a seq already taken is an error."""

    @abc.abstractmethod
    async def list_events(
        self, workflow_id: str, after_seq: int = 0, limit: int = 500, offset: int = 0
    ) -> list[Event]:
        """Return the workflow's events with seq > after_seq, in seq order, one page at a time."""

    @abc.abstractmethod
    async def count_events(self, workflow_id: str) -> int:
        """Return how many events a workflow has."""

    @abc.abstractmethod
    async def last_event_seq(self, workflow_id: str, event_type: str | None = None) -> int:
        """Return the highest seq of the workflow's events (of one type if given), 0 when none."""

    @abc.abstractmethod
    async def workflow_owner(self, workflow_id: str) -> str | None:
        """Return the user id owning a workflow, None when there is no such workflow."""
