"""The worker pool: claims queued tasks from the store and runs them, a bounded number at once.

Shutdown policy: ``stop()`` stops claiming at once, gives running tasks a short grace to finish,
then cancels what is left, which stays RUNNING. The SQLite store serves one replica, so every task
still RUNNING when the orchestrator starts was interrupted by a crash or a shutdown of that
replica: ``recover_interrupted()`` ends it FAILED with a clear reason (and its stream with `done`)
before any new claim, so nothing is left RUNNING forever and nothing is run twice. Replicas on a
shared database will instead recover only tasks whose lease has expired.
"""

import asyncio
import contextlib
import logging

from orchestrator import events
from orchestrator.bus import EventBus
from orchestrator.engine.recorder import EventRecorder
from orchestrator.engine.run_context import TaskRunContext
from orchestrator.runners.base import Runner
from orchestrator.runners.base import RunResult
from orchestrator.runners.base import RunTask
from orchestrator.runners.base import SessionTurn
from orchestrator.store.base import Store
from orchestrator.store.records import TaskOutcome
from orchestrator.store.records import TaskRecord
from orchestrator.store.records import TaskStatus
from orchestrator.store.records import TokenUsage

logger = logging.getLogger(__name__)

FAILED_MESSAGE = "The task failed while running"
INTERRUPTED_MESSAGE = "The orchestrator restarted while the task was running; submit it again"
POLL_SECONDS = 0.5
LEASE_SECONDS = 300.0
HISTORY_TURNS = 10


class WorkerPool:
    """Runs queued tasks, at most ``concurrency`` at once, each claimed from the store by one worker."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        runner: Runner,
        concurrency: int,
        worker_id: str,
        poll_seconds: float = POLL_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._store = store
        self._bus = bus
        self._runner = runner
        self._worker_id = worker_id
        self._poll_seconds = poll_seconds
        self._lease_seconds = lease_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._claim_loop_task: asyncio.Task[None] | None = None

    @property
    def running_count(self) -> int:
        """How many tasks run right now."""
        return len(self._running)

    async def recover_interrupted(self) -> int:
        """End every task left RUNNING by an earlier life of this replica; return how many."""
        interrupted = await self._store.list_running_tasks()
        for task in interrupted:
            recorder = await EventRecorder.resume(self._store, self._bus, task.task_id)
            await self._fail(task, recorder, INTERRUPTED_MESSAGE)
            logger.warning("interrupted task failed on start-up", extra={"workflow_id": task.task_id})
        return len(interrupted)

    def start(self) -> None:
        """Start claiming queued tasks."""
        if self._claim_loop_task is None:
            self._claim_loop_task = asyncio.create_task(self._claim_loop(), name="worker-pool-claims")

    def wake(self) -> None:
        """Claim now instead of at the next poll (a task was just queued)."""
        self._wakeup.set()

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming, wait up to ``grace_seconds`` for running tasks, then cancel the rest."""
        if self._claim_loop_task is not None:
            self._claim_loop_task.cancel()
            await asyncio.gather(self._claim_loop_task, return_exceptions=True)
            self._claim_loop_task = None
        if not self._running:
            return
        _, unfinished = await asyncio.wait(set(self._running), timeout=grace_seconds)
        if unfinished:
            logger.warning(
                "tasks still running at shutdown are left for recovery", extra={"task_count": len(unfinished)}
            )
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def _claim_loop(self) -> None:
        while True:
            await self._slots.acquire()
            self._wakeup.clear()
            try:
                task = await self._claim()
            except Exception:
                logger.exception("claiming a task failed")
                task = None
            if task is None:
                self._slots.release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds)
                continue
            self._start(task)

    async def _claim(self) -> TaskRecord | None:
        """Claim one task with the slot already acquired; on cancellation settle the slot first."""
        claim = asyncio.ensure_future(self._store.claim_next(self._worker_id, self._lease_seconds))
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            # Stopping mid-claim: a claim that went through must still run (on the slot acquired
            # for it), or the task would sit RUNNING until its lease expires.
            try:
                task = await claim
            except Exception:
                task = None
            if task is None:
                self._slots.release()
            else:
                self._start(task)
            raise

    def _start(self, task: TaskRecord) -> None:
        running = asyncio.create_task(self._run(task), name=f"task {task.task_id}")
        self._running.add(running)
        running.add_done_callback(self._finished)

    def _finished(self, running: asyncio.Task[None]) -> None:
        self._running.discard(running)
        self._slots.release()

    async def _run(self, task: TaskRecord) -> None:
        try:
            recorder = await EventRecorder.resume(self._store, self._bus, task.task_id)
            await recorder.emit(events.WORKFLOW_STARTED, "Workflow started", {"task_id": task.task_id})
            try:
                run_task = await self._run_task(task)
                result = await self._runner.run(TaskRunContext(run_task, recorder, self._store))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("task failed", extra={"workflow_id": task.task_id})
                await self._fail(task, recorder)
                return
            await self._complete(task, recorder, result)
        except asyncio.CancelledError:
            logger.info("task interrupted by shutdown", extra={"workflow_id": task.task_id})
            raise
        except Exception:
            logger.exception("recording a task's end failed", extra={"workflow_id": task.task_id})

    async def _run_task(self, task: TaskRecord) -> RunTask:
        earlier, _ = await self._store.list_tasks(
            task.user_id, HISTORY_TURNS, 0, session_id=task.session_id, status=TaskStatus.COMPLETED
        )
        return RunTask(
            workflow_id=task.task_id,
            query=task.query,
            mode=task.mode,
            model_tier=str(task.options.get("model_tier", "")),
            context=task.context,
            options=task.options,
            history=tuple(SessionTurn(turn.query, turn.result) for turn in reversed(earlier)),
        )

    async def _complete(self, task: TaskRecord, recorder: EventRecorder, result: RunResult) -> None:
        usage = TokenUsage(result.prompt_tokens, result.completion_tokens, result.cost_usd)
        # The status is written before the terminal events, so whoever saw `done` reads the final task.
        await self._store.finish_task(
            task.task_id,
            TaskOutcome(
                TaskStatus.COMPLETED, result.result_text, "", usage, result.model_used, result.provider
            ),
        )
        await recorder.emit(
            events.WORKFLOW_COMPLETED,
            "Workflow completed",
            {
                "result": result.result_text,
                "model_used": result.model_used,
                "provider": result.provider,
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.total_tokens,
                    "cost_usd": usage.cost_usd,
                },
            },
        )
        await recorder.emit(events.STREAM_END, "Stream ended")

    async def _fail(self, task: TaskRecord, recorder: EventRecorder, message: str = FAILED_MESSAGE) -> None:
        await self._store.finish_task(task.task_id, TaskOutcome(TaskStatus.FAILED, error=message))
        await recorder.emit(events.WORKFLOW_FAILED, message, {"error": message})
        await recorder.emit(events.STREAM_END, "Stream ended")
