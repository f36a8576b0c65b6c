"""Checkpoints: a runner's step recorded with its state, so a resumed task repeats neither.

A step's event and the runner's state after it are written in one transaction, conditional on the
worker's claim (worker and epoch) of a RUNNING task: a worker that lost its task records neither,
and a task resumed elsewhere continues after exactly the events its checkpoint covers.
"""

from orchestrator.domain.tasks import Checkpoint
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import TaskStatus
from orchestrator.events import Event
from orchestrator.events import compact_json
from orchestrator.store.database import Database
from orchestrator.store.events import INSERT_EVENT
from orchestrator.store.events import event_parameters


class CheckpointLog:
    """Writes a running task's steps with their checkpoints."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def record_step(self, event: Event, claim: Claim, checkpoint: Checkpoint) -> bool:
        """Store the event and make the checkpoint the task's, if ``claim`` still holds it; else neither."""
        async with self._db.transaction() as transaction:
            changed = await transaction.execute(
                "UPDATE tasks SET checkpoint_json = ?, checkpoint_seq = ?, run_seconds = ?"
                " WHERE task_id = ? AND status = ? AND claimed_by = ? AND claim_epoch = ?",
                (
                    compact_json(checkpoint.state),
                    event.seq,
                    checkpoint.run_seconds,
                    event.workflow_id,
                    TaskStatus.RUNNING.value,
                    claim.worker_id,
                    claim.epoch,
                ),
            )
            if changed != 1:
                return False
            await transaction.execute(INSERT_EVENT, event_parameters(event, self._db.dialect))
        return True
