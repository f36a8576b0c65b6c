"""Checkpoints: a runner's step recorded with its state, so a resumed task repeats neither.

A checkpoint is stored in the row of the event that ends its step (``events.checkpoint_json``),
written only while the worker's claim of the RUNNING task (worker and epoch) holds, so a worker that
lost its task records neither, and a task resumed elsewhere continues after exactly the events its
last checkpoint covers. Steps are written in batches (``group_commit.py``): the claims of a batch's
steps are read in one statement in the batch's transaction (``held_claims_query``), which on PostgreSQL
locks those task rows FOR KEY SHARE, so a take-over of a task cannot pick it until the step is
written, and then sees it; only the steps whose claim holds are inserted.
"""

from collections.abc import Collection
from collections.abc import Iterable

from orchestrator.domain.tasks import Checkpoint
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import SavedCheckpoint
from orchestrator.domain.tasks import TaskStatus
from orchestrator.events import compact_json
from orchestrator.store.database import Database
from orchestrator.store.database import Row
from orchestrator.store.database import marks
from orchestrator.store.dialect import Dialect
from orchestrator.store.rows import json_value


def checkpoint_json(checkpoint: Checkpoint) -> str:
    """Return what the event row of a step keeps of its checkpoint: the state and the running time."""
    return compact_json({"state": checkpoint.state, "run_seconds": checkpoint.run_seconds})


def held_claims_query(dialect: Dialect, claims: Collection[tuple[str, Claim]]) -> tuple[str, list[object]]:
    """Return the query of the running tasks of (task id, claim) pairs; ``claims_held`` reads its rows.

    On PostgreSQL the task rows are read FOR KEY SHARE: until the transaction ends no take-over of
    those tasks can happen (it picks its rows FOR UPDATE SKIP LOCKED, so it passes over them), while
    writes that leave the claim alone (a lease renewal, a progress update) go on. FOR SHARE would
    hold those up, and a renewal locking many rows in another order than the batch could deadlock.
    The claim of a running task changes only by a take-over or by its own worker, whose recorder
    waits for its step.
    """
    task_ids = sorted({task_id for task_id, _ in claims})
    return (
        f"SELECT task_id, claimed_by, claim_epoch FROM tasks WHERE task_id IN ({marks(task_ids)})"
        f" AND status = ? ORDER BY task_id{dialect.for_key_share}",
        [*task_ids, TaskStatus.RUNNING.value],
    )


def claims_held(rows: Iterable[Row], claims: Collection[tuple[str, Claim]]) -> set[tuple[str, Claim]]:
    """Return the pairs whose claim still holds its task, from the rows of ``held_claims_query``."""
    running = {(row["task_id"], Claim(row["claimed_by"], row["claim_epoch"])) for row in rows}
    return {pair for pair in claims if pair in running}


class CheckpointLog:
    """Reads a task's last checkpoint (steps are written by ``group_commit.EventWriter``)."""

    def __init__(self, database: Database) -> None:
        self._db = database

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
