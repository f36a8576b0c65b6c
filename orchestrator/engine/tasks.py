"""The task engine: what the servicers ask of the orchestrator, every call scoped to the caller."""

from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Collection

from orchestrator.bus import EventBus
from orchestrator.caller import Caller
from orchestrator.engine.submission import TaskSubmission
from orchestrator.engine.submission import validate_submission
from orchestrator.errors import TaskNotFoundError
from orchestrator.events import Event
from orchestrator.identifiers import new_session_id
from orchestrator.identifiers import new_task_id
from orchestrator.store.base import Store
from orchestrator.store.records import NewTask
from orchestrator.store.records import TaskRecord
from orchestrator.store.records import TaskStatus
from orchestrator.streaming import follow_events


class TaskEngine:
    """Submits, reads and follows tasks; another user's task is reported exactly like a missing one."""

    def __init__(
        self, store: Store, bus: EventBus, wake_workers: Callable[[], None], stream_buffer: int
    ) -> None:
        self._store = store
        self._bus = bus
        self._wake_workers = wake_workers
        self._stream_buffer = stream_buffer

    async def submit(self, caller: Caller, submission: TaskSubmission) -> TaskRecord:
        """Check and queue a task, creating its session if needed, and wake the workers."""
        valid = validate_submission(submission)
        task = await self._store.create_task(
            NewTask(
                task_id=new_task_id(),
                user_id=caller.user_id,
                tenant_id=caller.tenant_id,
                session_id=valid.session_id or new_session_id(),
                query=valid.query,
                mode=valid.mode,
                context=valid.context,
                options=valid.options,
            )
        )
        self._wake_workers()
        return task

    async def get_task(self, caller: Caller, task_id: str) -> TaskRecord:
        """Return one of the caller's tasks; raise TaskNotFoundError otherwise."""
        task = await self._store.get_task(task_id, caller.user_id)
        if task is None:
            raise TaskNotFoundError()
        return task

    async def list_tasks(
        self,
        caller: Caller,
        limit: int,
        offset: int,
        session_id: str | None = None,
        status: TaskStatus | None = None,
    ) -> tuple[list[TaskRecord], int]:
        """Return one page of the caller's tasks, newest first, and the total matching."""
        return await self._store.list_tasks(
            caller.user_id, limit, offset, session_id=session_id, status=status
        )

    async def list_events(
        self, caller: Caller, workflow_id: str, limit: int, offset: int
    ) -> tuple[list[Event], int]:
        """Return one page of a workflow's stored events in seq order, and how many it has."""
        await self.require_workflow(caller, workflow_id)
        page = await self._store.list_events(workflow_id, limit=limit, offset=offset)
        return page, await self._store.count_events(workflow_id)

    async def require_workflow(self, caller: Caller, workflow_id: str) -> None:
        """Raise TaskNotFoundError unless the workflow exists and is the caller's."""
        if await self._store.workflow_owner(workflow_id) != caller.user_id:
            raise TaskNotFoundError()

    def follow(self, workflow_id: str, after_seq: int, types: Collection[str] | None) -> AsyncIterator[Event]:
        """Follow a workflow's events (check ownership with ``require_workflow`` first)."""
        return follow_events(self._store, self._bus, workflow_id, after_seq, types, self._stream_buffer)
