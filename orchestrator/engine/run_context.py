"""The engine's side of a runner's context: events through the recorder, progress to the store."""

from collections.abc import Mapping
from typing import Any

from orchestrator.domain.tasks import Checkpoint
from orchestrator.engine.approvals import ApprovalNeeded
from orchestrator.engine.approvals import approved_action
from orchestrator.engine.recorder import EventRecorder
from orchestrator.engine.run_control import RunControl
from orchestrator.runners.base import ApprovedAction
from orchestrator.runners.base import RunContext
from orchestrator.runners.base import RunTask
from orchestrator.store.base import Store


class TaskRunContext(RunContext):
    """What a runner sees of the engine while it runs one task."""

    def __init__(self, task: RunTask, recorder: EventRecorder, store: Store, control: RunControl) -> None:
        self._task = task
        self._recorder = recorder
        self._store = store
        self._control = control

    @property
    def task(self) -> RunTask:
        """The task being run."""
        return self._task

    async def emit(
        self,
        event_type: str,
        message: str = "",
        payload: Mapping[str, Any] | None = None,
        agent_id: str = "",
        checkpoint: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an event of the task, with the runner's checkpoint when it ends a step."""
        saved = None if checkpoint is None else Checkpoint(dict(checkpoint), self._control.used_seconds())
        await self._recorder.emit(event_type, message, payload, agent_id, saved)

    async def checkpoint(self) -> None:
        """Honour the owner's requests between two steps: park the task when paused, stop it when cancelled.

        The runner is between steps, so parking or stopping it here leaves nothing half done.
        """
        await self._control.checkpoint()

    async def sleep(self, seconds: float) -> None:
        """Wait between steps; a cancellation or the end of the task's timeout ends the wait at once."""
        await self._control.sleep(seconds)

    async def report_progress(self, fraction: float) -> None:
        """Record how far the run is, 0..1."""
        await self._store.update_task_progress(self._task.workflow_id, fraction)

    async def request_approval(
        self, step: str, proposed_action: Mapping[str, Any], reason: str
    ) -> ApprovedAction:
        """Return the approval of a step, or end the run (ApprovalNeeded): the task waits parked."""
        approved = approved_action(await self._store.list_task_approvals(self._task.workflow_id), step)
        if approved is None:
            raise ApprovalNeeded(step, proposed_action, reason)
        return approved
