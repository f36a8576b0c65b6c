"""Checkpoints: a runner's step recorded with its state, so a resumed task repeats neither.

A checkpoint is stored in the row of the event that ends its step (``events.checkpoint_json``):
one INSERT, conditional on the worker's claim of the RUNNING task (worker and epoch), so a worker
that lost its task records neither, and a task resumed elsewhere continues after exactly the
events its last checkpoint covers. On PostgreSQL the condition reads the task row FOR SHARE, so a
take-over of the task waits until the step is written and then sees it.
"""

from orchestrator.domain.tasks import Checkpoint
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import SavedCheckpoint
from orchestrator.domain.tasks import TaskStatus
from orchestrator.events import Event
from orchestrator.events import compact_json
from orchestrator.store.database import Database
from orchestrator.store.events import event_parameters
from orchestrator.store.rows import json_value


class CheckpointLog:
    """Writes a running task's steps with their checkpoints, and reads the last one."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def record_step(self, event: Event, claim: Claim, checkpoint: Checkpoint) -> bool:
        """Store the event with the checkpoint, if ``claim`` still holds the task; else nothing."""
        saved = compact_json({"state": checkpoint.state, "run_seconds": checkpoint.run_seconds})
        changed = await self._db.execute(
            "INSERT INTO events (workflow_id, seq, type, agent_id, message, payload_json, timestamp,"
            " checkpoint_json) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM tasks"
            " WHERE task_id = ? AND status = ? AND claimed_by = ? AND claim_epoch = ?"
            f"{self._db.dialect.for_share})",
            (
                *event_parameters(event, self._db.dialect),
                saved,
                event.workflow_id,
                TaskStatus.RUNNING.value,
                claim.worker_id,
                claim.epoch,
            ),
        )
        return changed == 1

    async def last_checkpoint(self, task_id: str) -> SavedCheckpoint | None:
        """Return the task's last checkpoint, None when no step of it has saved one."""
        row = await self._db.fetch_one(
            "SELECT seq, checkpoint_json FROM events WHERE workflow_id = ? AND checkpoint_json IS NOT NULL"
            " ORDER BY seq DESC LIMIT 1",
            (task_id,),
        )
        if row is None:
            return None
        saved = json_value(row["checkpoint_json"])
        return SavedCheckpoint(dict(saved["state"]), float(saved["run_seconds"]), row["seq"])
