"""The worker pool: claims queued tasks from the store and runs them, a bounded number at once.

Each run has a ``RunControl`` (``orchestrator.engine.run_control``): the owner's pause holds it at
its next checkpoint, a cancel or the end of its timeout stops it there, or at once in a wait.

Shutdown policy: ``stop()`` stops claiming at once, gives running tasks a short grace to finish
(tasks held at a pause do no work, so they get none), then cancels what is left, which stays
RUNNING or PAUSED. The SQLite store serves one replica, so every task still claimed when the
orchestrator starts was interrupted by a crash or a shutdown of that replica:
``recover_interrupted()`` deals with each before any new claim, as its control state says
(``task_control.recovery_transition``): FAILED with a clear reason (and its stream ended with
`done`), CANCELLED if a cancel was asked, or parked PAUSED if it was paused, to run again from its
first step when resumed. Nothing is left RUNNING forever and nothing runs twice at once. Replicas
on a shared database instead recover only tasks whose lease has expired (``leases.py``).
"""

import asyncio
import contextlib
import logging

from orchestrator import events
from orchestrator.bus import EventBus
from orchestrator.control_signals import ControlSignals
from orchestrator.domain.task_control import stream_end_event
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.engine.approvals import DEFAULT_TIMEOUT_SECONDS as DEFAULT_APPROVAL_TIMEOUT_SECONDS
from orchestrator.engine.approvals import ApprovalNeeded
from orchestrator.engine.approvals import approve_task
from orchestrator.engine.approvals import park_for_approval
from orchestrator.engine.continuation import require_session_budget
from orchestrator.engine.continuation import session_history
from orchestrator.engine.recorder import EventRecorder
from orchestrator.engine.recorder import recover_tasks
from orchestrator.engine.run_context import TaskRunContext
from orchestrator.engine.run_control import RunControl
from orchestrator.engine.run_control import RunLost
from orchestrator.engine.run_control import RunningControls
from orchestrator.engine.run_control import RunStopped
from orchestrator.engine.run_control import timeout_budget
from orchestrator.errors import OrchestratorError
from orchestrator.runners.base import Runner
from orchestrator.runners.base import RunResult
from orchestrator.runners.base import RunTask
from orchestrator.store.base import Store

logger = logging.getLogger(__name__)

FAILED_MESSAGE = "The task failed while running"
POLL_SECONDS = 0.5
LEASE_SECONDS = 300.0
DEFAULT_TIMEOUT_SECONDS = 600.0
STOP_CHECK_SECONDS = 0.1


class WorkerPool:
    """Runs queued tasks, at most ``concurrency`` at once, each claimed from the store by one worker."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        runner: Runner,
        concurrency: int,
        worker_id: str,
        signals: ControlSignals,
        default_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        approval_timeout_seconds: float = DEFAULT_APPROVAL_TIMEOUT_SECONDS,
    ) -> None:
        self._store = store
        self._bus = bus
        self._runner = runner
        self._worker_id = worker_id
        self._default_timeout_seconds = default_timeout_seconds
        self._controls = RunningControls(store, signals)
        self._sweep_task: asyncio.Task[None] | None = None
        self._poll_seconds = poll_seconds
        self._lease_seconds = lease_seconds
        self._approval_timeout_seconds = approval_timeout_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._running_by_id: dict[str, asyncio.Task[None]] = {}
        self._claim_loop_task: asyncio.Task[None] | None = None

    @property
    def running_count(self) -> int:
        """How many tasks run right now."""
        return len(self._running)

    def held_task_ids(self) -> list[str]:
        """Return the ids of the tasks this pool runs (or holds at a pause) now: the leases to renew."""
        return list(self._running_by_id)

    def abandon(self, task_id: str) -> None:
        """Stop running a task at once, recording nothing more: another replica has taken it over."""
        running = self._running_by_id.get(task_id)
        if running is not None:
            running.cancel()

    async def recover_interrupted(self) -> int:
        """Recover every task an earlier life of this replica left RUNNING or held; return how many."""
        interrupted = await self._store.list_claimed_tasks()
        return await recover_tasks(
            self._store, self._bus, interrupted, logger, "interrupted task recovered on start-up"
        )

    def start(self) -> None:
        """Start claiming queued tasks, and sweeping the control states of running ones."""
        if self._claim_loop_task is None:
            self._claim_loop_task = asyncio.create_task(self._claim_loop(), name="worker-pool-claims")
        if self._sweep_task is None:
            self._sweep_task = asyncio.create_task(self._controls.sweep_forever(), name="control-sweep")

    def wake(self) -> None:
        """Claim now instead of at the next poll (a task was just queued)."""
        self._wakeup.set()

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming, wait up to ``grace_seconds`` for working tasks, then cancel the rest."""
        for loop_task in (self._claim_loop_task, self._sweep_task):
            if loop_task is not None:
                loop_task.cancel()
                await asyncio.gather(loop_task, return_exceptions=True)
        self._claim_loop_task = self._sweep_task = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        # A task held at a pause does no work, so it is not waited for (nor one that pauses meanwhile).
        while (working := self._working()) and (left := deadline - loop.time()) > 0:
            await asyncio.wait(working, timeout=min(left, STOP_CHECK_SECONDS))
        unfinished = {running for running in self._running if not running.done()}
        if unfinished:
            logger.warning(
                "tasks still running at shutdown are left for recovery", extra={"task_count": len(unfinished)}
            )
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    def _working(self) -> set[asyncio.Task[None]]:
        """Return the runs that are not finished and not held at a pause."""
        return {
            running
            for task_id, running in self._running_by_id.items()
            if not running.done() and not self._controls.is_held(task_id)
        }

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
        self._running_by_id[task.task_id] = running
        running.add_done_callback(lambda _: self._running_by_id.pop(task.task_id, None))
        running.add_done_callback(self._finished)

    def _finished(self, running: asyncio.Task[None]) -> None:
        self._running.discard(running)
        self._slots.release()

    async def _run(self, task: TaskRecord) -> None:
        try:
            recorder = await EventRecorder.resume(self._store, self._bus, task.task_id)
            timeout_seconds = timeout_budget(task.options, self._default_timeout_seconds)
            control = RunControl(task, self._store, recorder, self._worker_id, timeout_seconds)
            self._controls.add(control)
            try:
                await self._record_start(task, recorder)
                run_task = await self._run_task(task)
                if run_task.requires_approval:
                    approving = TaskRunContext(run_task, recorder, self._store, control)
                    run_task = await approve_task(approving)
                result = await self._runner.run(TaskRunContext(run_task, recorder, self._store, control))
                # A cancel or pause asked during the last step still counts: the end is a checkpoint too.
                await control.checkpoint()
            except RunStopped as stopped:
                await self._stop_run(task, recorder, stopped)
                return
            except ApprovalNeeded as needed:
                await self._park(task, recorder, control, needed)
                return
            except RunLost:
                logger.error(
                    "task taken over by another worker; stopping it here", extra={"workflow_id": task.task_id}
                )
                return
            except asyncio.CancelledError:
                raise
            except OrchestratorError as ex:
                # A refusal written for clients (the session's budget is spent) is the task's error.
                await self._fail(task, recorder, ex.public_message)
                return
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
        finally:
            self._controls.remove(task.task_id)

    async def _park(
        self, task: TaskRecord, recorder: EventRecorder, control: RunControl, needed: ApprovalNeeded
    ) -> None:
        """Park the task to wait for the approval its run asked for; no coroutine waits with it."""
        parked = await park_for_approval(
            self._store,
            self._bus,
            task,
            control.used_seconds(),
            needed,
            self._approval_timeout_seconds,
        )
        if parked:
            return
        # A cancel came first (the checkpoint ends the run with it), or the task changed hands.
        try:
            control.notice_change()
            await control.checkpoint()
        except RunStopped as stopped:
            await self._stop_run(task, recorder, stopped)
            return
        except RunLost:
            pass
        logger.error(
            "task taken over by another worker; stopping it here", extra={"workflow_id": task.task_id}
        )

    async def _record_start(self, task: TaskRecord, recorder: EventRecorder) -> None:
        """Emit WORKFLOW_STARTED, saying so when the run starts over (resumed after a restart)."""
        again = recorder.last_seq > 0 and (
            await self._store.last_event_seq(task.task_id, events.WORKFLOW_STARTED) > 0
        )
        message = "Workflow started again from its first step" if again else "Workflow started"
        await recorder.emit(events.WORKFLOW_STARTED, message, {"task_id": task.task_id, "restarted": again})

    async def _run_task(self, task: TaskRecord) -> RunTask:
        await require_session_budget(self._store, task)
        return RunTask(
            workflow_id=task.task_id,
            query=task.query,
            mode=task.mode,
            model_tier=str(task.options.get("model_tier", "")),
            context=task.context,
            options=task.options,
            history=await session_history(self._store, task),
        )

    async def _complete(self, task: TaskRecord, recorder: EventRecorder, result: RunResult) -> None:
        usage = TokenUsage(result.prompt_tokens, result.completion_tokens, result.cost_usd)
        outcome = TaskOutcome(
            TaskStatus.COMPLETED, result.result_text, "", usage, result.model_used, result.provider
        )
        completed = NewEvent(
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
        await self._finish(task, recorder, outcome, completed)

    async def _stop_run(self, task: TaskRecord, recorder: EventRecorder, stopped: RunStopped) -> None:
        await self._finish(task, recorder, TaskOutcome(stopped.status, error=stopped.error), stopped.event)

    async def _fail(self, task: TaskRecord, recorder: EventRecorder, message: str = FAILED_MESSAGE) -> None:
        failed = NewEvent(events.WORKFLOW_FAILED, message, {"error": message})
        await self._finish(task, recorder, TaskOutcome(TaskStatus.FAILED, error=message), failed)

    async def _finish(
        self, task: TaskRecord, recorder: EventRecorder, outcome: TaskOutcome, terminal: NewEvent
    ) -> None:
        """End the task with its terminal event and STREAM_END, if this worker's claim still holds."""
        if not await recorder.record_finish(task.claim, outcome, (terminal, stream_end_event())):
            logger.warning(
                "task ended elsewhere after its lease was taken over; this outcome is dropped",
                extra={"workflow_id": task.task_id, "status": str(outcome.status)},
            )
