"""Group commit: the events of every running task that arrive while a write is in flight go in the next.

``append_event``, ``record_step`` and ``update_task_progress`` do not write on their
own. Each call queues what it writes and waits; one flusher at a time takes everything queued (up
to ``MAX_BATCH`` items, any number of workflows) and writes it in one transaction: the claims of
the batch's steps read in one statement (``checkpoints.held_claims_query``, the rows ``FOR KEY
SHARE`` on PostgreSQL), one multi-row INSERT of the events whose claim still holds
(``events.insert_events_statement``), one UPDATE of the progress values. Each waiter is answered
after the commit, so a caller that publishes after its call returns still publishes only what is
stored. While one batch is written the next one gathers; under load a batch holds about one event
of every running task, and an idle store writes a lone event at once.

On SQLite the whole transaction is one hop to the writer's thread (``writer_transactions.py``):
every statement of ``transaction()`` waits for the event loop to come round again, and the one
writer is held meanwhile.

Progress values join the batch on both databases. On PostgreSQL the UPDATE locks only the task rows
nobody else holds (``FOR NO KEY UPDATE SKIP LOCKED``) and says which it updated; a value whose row
was held (a lease renewal locks many task rows, in an order of its own) goes in the next batch, and
after a few batches is written as a statement of its own that waits for the row. So a batch waits
for a lock only at its first statement (the claims' FOR KEY SHARE), before it holds any: it can
never be part of a deadlock, which one UPDATE waiting for many rows could be.

What a batch keeps of one-write-per-event:

- Order and seqs: the caller gives each event its seq (a workflow's recorder, one event in flight
  at a time), and a batch inserts in arrival order.
- Fencing: a step whose claim was lost is not written and its caller gets False (``ClaimLost``
  for that task only); the other events of the batch are written.
- Errors: a seq already taken fails the batch's INSERT; the batch is then written again one item
  per transaction, so only the event that collides fails, with the error it always had. Any other
  error (the database is away) is every waiter's of that batch, and nothing of the batch is stored.
"""

import asyncio
import dataclasses

from orchestrator.domain.tasks import Checkpoint
from orchestrator.domain.tasks import Claim
from orchestrator.events import Event
from orchestrator.store.checkpoints import checkpoint_json
from orchestrator.store.checkpoints import claims_held
from orchestrator.store.checkpoints import held_claims_query
from orchestrator.store.database import Database
from orchestrator.store.database import Transaction
from orchestrator.store.dialect import Dialect
from orchestrator.store.events import insert_events_statement
from orchestrator.store.sqlite_database import SQLiteDatabase
from orchestrator.store.writer_transactions import run_transaction
from taskgate.rfc3339 import utc_now

#: The most items one transaction writes (8 parameters an event: well within both databases' limits).
MAX_BATCH = 256
#: The batches a progress value tries before it is written on its own, waiting for its row's lock.
_PROGRESS_BATCHES = 5


@dataclasses.dataclass(frozen=True)
class _Queued:
    """What waits for the next batch: an event (a step's when ``claim`` is set), or a task's progress."""

    written: asyncio.Future[bool]
    event: Event | None = None
    claim: Claim | None = None
    checkpoint_json: str | None = None
    progress: tuple[str, float] | None = None


class EventWriter:
    """Writes the events and progress of every running task in batches, one transaction at a time."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._queue: list[_Queued] = []
        self._flusher: asyncio.Task[None] | None = None
        self._in_writer_thread = isinstance(database, SQLiteDatabase)

    async def append_event(self, event: Event) -> None:
        """Store an event under the seq it carries, in the next batch; a seq already taken is an error."""
        await self._write(event=event)

    async def record_step(self, event: Event, claim: Claim, checkpoint: Checkpoint) -> bool:
        """Store a step's event with its checkpoint in the next batch, if ``claim`` still holds the task."""
        return await self._write(event=event, claim=claim, checkpoint_json=checkpoint_json(checkpoint))

    async def update_task_progress(self, task_id: str, progress: float) -> None:
        """Record how far a running task is (clamped to 0..1), in the next batch that can lock its row."""
        clamped = min(max(progress, 0.0), 1.0)
        for _ in range(_PROGRESS_BATCHES):
            if await self._write(progress=(task_id, clamped)):
                return
        # Its row was held by others all along (or is gone): wait for it, as a statement of its own.
        await self._db.execute(
            "UPDATE tasks SET progress = ?, updated_at = ? WHERE task_id = ?",
            (clamped, self._db.dialect.encode_time(utc_now()), task_id),
        )

    async def close(self) -> None:
        """Wait until everything queued is written (or has failed)."""
        while self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _write(self, **what: object) -> bool:
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(written, **what))  # type: ignore[arg-type]
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        # The flusher writes it even if this caller is cancelled meanwhile.
        return await asyncio.shield(written)

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._write_batch(batch)
        finally:
            self._flusher = None
            if self._queue:  # only when this task was cancelled mid-flush: the rest gets a new one
                self._flusher = asyncio.create_task(self._flush(), name="group-commit")

    async def _write_batch(self, batch: list[_Queued]) -> None:
        try:
            stored = await self._run(batch)
        except self._db.dialect.unique_violation as ex:
            if len(batch) == 1:
                _fail(batch, ex)
            else:
                # Some seq was taken already: write each item on its own, so only that one fails.
                for queued in batch:
                    await self._write_batch([queued])
            return
        except BaseException as ex:
            _fail(batch, ex)
            if not isinstance(ex, Exception):
                raise
            return
        for queued, was_stored in zip(batch, stored, strict=True):
            if not queued.written.done():
                queued.written.set_result(was_stored)

    async def _run(self, batch: list[_Queued]) -> list[bool]:
        """Write the batch in one transaction; return, per item, whether it was stored."""
        return await run_transaction(
            self._db, lambda transaction: _write(transaction, self._db.dialect, batch)
        )


async def _write(transaction: Transaction, dialect: Dialect, batch: list[_Queued]) -> list[bool]:
    """The batch's statements: the claims of its steps, its events, its progress values."""
    claims = {(queued.event.workflow_id, queued.claim) for queued in batch if queued.event and queued.claim}
    held: set[tuple[str, Claim]] = set()
    if claims:
        held = claims_held(await transaction.fetch_all(*held_claims_query(dialect, claims)), claims)
    stored = [
        queued.claim is None
        or (queued.event is not None and (queued.event.workflow_id, queued.claim) in held)
        for queued in batch
    ]
    events = [
        (queued.event, queued.checkpoint_json)
        for queued, was_stored in zip(batch, stored, strict=True)
        if was_stored and queued.event is not None
    ]
    if events:
        await transaction.execute(*insert_events_statement(dialect, events))
    progress = dict(queued.progress for queued in batch if queued.progress is not None)
    if progress:
        values = ", ".join("(?, CAST(? AS double precision))" for _ in progress)
        parameters = [value for pair in progress.items() for value in pair]
        # Rows another transaction holds (a lease renewal) are passed over, not waited for, so a
        # batch never waits for a lock while it holds others' (no deadlock); their values go in the
        # next batch. The lead is the task's own row, so a value of one task is never overtaken.
        updated = await transaction.fetch_all(
            f"WITH progress (task_id, value) AS (VALUES {values}) UPDATE tasks SET"
            " progress = (SELECT value FROM progress WHERE progress.task_id = tasks.task_id), updated_at = ?"
            " WHERE task_id IN (SELECT task_id FROM tasks WHERE task_id IN (SELECT task_id FROM progress)"
            f"{dialect.for_no_key_update_skip_locked}) RETURNING task_id",
            [*parameters, dialect.encode_time(utc_now())],
        )
        written = {row["task_id"] for row in updated} if len(updated) < len(progress) else progress.keys()
        stored = [
            was_stored if queued.progress is None else queued.progress[0] in written
            for queued, was_stored in zip(batch, stored, strict=True)
        ]
    return stored


def _fail(batch: list[_Queued], error: BaseException) -> None:
    for queued in batch:
        if not queued.written.done():
            queued.written.set_exception(error)
