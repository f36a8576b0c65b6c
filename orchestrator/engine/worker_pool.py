"""The worker pool: claims queued tasks from the store and runs them, a bounded number at once.

Each run has a ``RunControl`` (``orchestrator.engine.run_control``) watching beside the runner:
a cancel or the end of the task's time stops the runner at once, wherever it is; the owner's pause
parks the task at the runner's next checkpoint, freeing its slot, as a wait for an approval does.

Durable execution: a runner saves checkpoints with its steps' events, and a task that loses its
runner continues from its last checkpoint as its next attempt, on any replica
(``task_control.recovery_transition``). Shutdown (``stop``) stops claiming and hands every running
task back to the queue at once at its last checkpoint (WORKFLOW_RESUMED), so another replica, or
this one when it starts again, continues it without waiting for its lease to expire. The SQLite
store serves one replica, so every task still claimed when the orchestrator starts was interrupted
by a crash of that replica: ``recover_interrupted()`` queues each again (or ends it as its control
state says) before any new claim. Replicas on a shared database recover the tasks whose lease has
expired (``leases.py``).
"""

import asyncio
import contextlib
import dataclasses
import logging

from orchestrator import events
from orchestrator.bus import EventBus
from orchestrator.control_signals import ControlSignals
from orchestrator.domain.task_control import DEFAULT_MAX_ATTEMPTS
from orchestrator.domain.task_control import Interruption
from orchestrator.domain.task_control import stream_end_event
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import SavedCheckpoint
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
from orchestrator.engine.recorder import ClaimLost
from orchestrator.engine.recorder import EventRecorder
from orchestrator.engine.recorder import apply_transition
from orchestrator.engine.recorder import recover_tasks
from orchestrator.engine.recorder import recovery_for
from orchestrator.engine.run_context import TaskRunContext
from orchestrator.engine.run_control import RunControl
from orchestrator.engine.run_control import RunningControls
from orchestrator.engine.run_control import RunParked
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
HAND_OVER_ATTEMPTS = 3
#: The most tasks one claim (one transaction) takes for the pool's free slots.
MAX_CLAIMS_AT_ONCE = 32


@dataclasses.dataclass
class _Run:
    """A task this pool runs: its record as claimed, the asyncio task running it, and its control."""

    task: TaskRecord
    running: asyncio.Task[None]
    control: RunControl | None = None
    recorder: EventRecorder | None = None


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
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
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
        self._max_attempts = max_attempts
        self._slots = asyncio.Semaphore(concurrency)
        self._wakeup = asyncio.Event()
        self._runs: dict[str, _Run] = {}
        self._claim_loop_task: asyncio.Task[None] | None = None

    @property
    def running_count(self) -> int:
        """How many tasks run right now."""
        return len(self._runs)

    @property
    def max_attempts(self) -> int:
        """How many attempts of a task may end with their replica dying before it ends FAILED."""
        return self._max_attempts

    def held_task_ids(self) -> list[str]:
        """Return the ids of the tasks this pool runs now: the leases to renew."""
        return list(self._runs)

    def abandon(self, task_id: str) -> None:
        """Stop running a task at once, recording nothing more: another replica has taken it over."""
        run = self._runs.get(task_id)
        if run is not None:
            run.running.cancel()

    async def recover_interrupted(self) -> int:
        """Recover every task an earlier life of this replica left claimed; return how many.

        Each is queued again to continue from its checkpoint (or ended, or parked, as its control
        state says); the replica died while running it, so the attempt counts as lost.
        """
        interrupted = await self._store.list_claimed_tasks()
        return await recover_tasks(
            self._store, self._bus, interrupted, Interruption.LOST, self._max_attempts, logger
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

    async def stop(self) -> int:
        """Stop claiming, interrupt every run and hand its task back to the queue; return how many.

        A task handed over continues from its last checkpoint on whichever replica claims it next.
        One that cannot be handed over (the database is away) is recovered after its lease expires.
        """
        for loop_task in (self._claim_loop_task, self._sweep_task):
            if loop_task is not None:
                loop_task.cancel()
                await asyncio.gather(loop_task, return_exceptions=True)
        self._claim_loop_task = self._sweep_task = None
        runs = list(self._runs.values())
        for run in runs:
            run.running.cancel()
        await asyncio.gather(*(run.running for run in runs), return_exceptions=True)
        handed_over = 0
        for run in runs:
            if run.running.cancelled():
                try:
                    handed_over += await self._hand_over(run)
                except Exception:
                    logger.exception(
                        "handing a task over failed; it is recovered when its lease expires",
                        extra={"workflow_id": run.task.task_id},
                    )
        if runs:
            logger.info("running tasks handed over at shutdown", extra={"task_count": handed_over})
        return handed_over

    async def _hand_over(self, run: _Run) -> bool:
        """Queue an interrupted run's task again at its last checkpoint, if this worker still holds it."""
        if run.recorder is not None:
            await run.recorder.settled()
        for _ in range(HAND_OVER_ATTEMPTS):
            task = await self._store.get_task(run.task.task_id, run.task.user_id)
            if task is None or task.status != TaskStatus.RUNNING or task.claim != run.task.claim:
                return False
            transition = await recovery_for(self._store, task, Interruption.HANDED_OVER, self._max_attempts)
            if run.control is not None:
                transition = dataclasses.replace(transition, run_seconds=run.control.used_seconds())
            if await apply_transition(self._store, self._bus, task.task_id, transition):
                return True
        return False

    async def _claim_loop(self) -> None:
        while True:
            await self._slots.acquire()
            slots = 1
            # Every slot free now is claimed for in the same transaction (one turn at the writer).
            while slots < MAX_CLAIMS_AT_ONCE and not self._slots.locked():
                await self._slots.acquire()
                slots += 1
            self._wakeup.clear()
            try:
                tasks = await self._claim(slots)
            except Exception:
                logger.exception("claiming a task failed")
                tasks = []
            self._release(slots - len(tasks))
            for task in tasks:
                self._start(task)
            if len(tasks) < slots:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds)

    def _release(self, slots: int) -> None:
        for _ in range(slots):
            self._slots.release()

    async def _claim(self, slots: int) -> list[TaskRecord]:
        """Claim up to ``slots`` tasks with the slots already acquired; on cancellation settle them first."""
        claim = asyncio.ensure_future(self._store.claim_tasks(self._worker_id, self._lease_seconds, slots))
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            # Stopping mid-claim: a claim that went through must still be run (on the slot acquired
            # for it) so that stopping hands it over, or it would sit RUNNING until its lease expires.
            try:
                tasks = await claim
            except Exception:
                tasks = []
            self._release(slots - len(tasks))
            for task in tasks:
                self._start(task)
            raise

    def _start(self, task: TaskRecord) -> None:
        # A run of an earlier claim of the same task may still be here (this replica stalled past its
        # lease and claimed the task again): it is stopped, and the new run waits until it has.
        earlier = self._runs.get(task.task_id)
        if earlier is not None:
            logger.error(
                "a run of an earlier claim of the task is still here; stopping it here",
                extra={"workflow_id": task.task_id},
            )
            earlier.running.cancel()
        running = asyncio.create_task(self._run(task, earlier), name=f"task {task.task_id}")
        run = _Run(task, running)
        self._runs[task.task_id] = run
        running.add_done_callback(lambda _: self._finished(run))

    def _finished(self, run: _Run) -> None:
        if self._runs.get(run.task.task_id) is run:
            del self._runs[run.task.task_id]
        self._slots.release()

    async def _run(self, task: TaskRecord, earlier: _Run | None = None) -> None:
        if earlier is not None:
            await asyncio.gather(earlier.running, return_exceptions=True)
        run = self._runs[task.task_id]
        try:
            if earlier is None and task.last_event_seq is not None:
                # The claim read the last seq; no earlier run of this replica can have written since.
                last_seq = task.last_event_seq
                recorder = EventRecorder(self._store, self._bus, task.task_id, last_seq, task.claim)
            else:
                recorder = await EventRecorder.resume(self._store, self._bus, task.task_id, task.claim)
            # A task with no event yet has no checkpoint either: its first run does not look for one.
            saved = await self._store.last_checkpoint(task.task_id) if recorder.last_seq else None
            if saved is not None and saved.run_seconds > task.run_seconds:
                # The time an interrupted run used up to its checkpoint counts towards the timeout.
                task = dataclasses.replace(task, run_seconds=saved.run_seconds)
            timeout_seconds = timeout_budget(task.options, self._default_timeout_seconds)
            control = RunControl(task, self._store, recorder, self._worker_id, timeout_seconds)
            run.recorder, run.control = recorder, control
            self._controls.add(control)
            try:
                ending = await self._run_watched(task, recorder, control, saved)
                await self._end(task, recorder, control, ending)
            finally:
                self._controls.remove(task.task_id)
        except asyncio.CancelledError:
            logger.info("task run interrupted", extra={"workflow_id": task.task_id})
            raise
        except Exception:
            logger.exception("recording a task's end failed", extra={"workflow_id": task.task_id})

    async def _run_watched(
        self, task: TaskRecord, recorder: EventRecorder, control: RunControl, saved: SavedCheckpoint | None
    ) -> RunResult | BaseException:
        """Run the task beside its control's watch; return the result, or what ended the run.

        When the watch answers first (a cancel, or the end of the task's time), the runner is
        interrupted wherever it is, even in a call that never returns.
        """
        work = asyncio.create_task(self._work(task, recorder, control, saved), name=f"work {task.task_id}")
        watch = asyncio.create_task(control.watch(), name=f"watch {task.task_id}")
        try:
            await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Interrupted (shutdown, or the task was taken over): stop both before going on.
            work.cancel()
            watch.cancel()
            await asyncio.gather(work, watch, return_exceptions=True)
            raise
        if work.done():
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            return work.exception() or work.result()
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        return watch.result()

    async def _work(
        self, task: TaskRecord, recorder: EventRecorder, control: RunControl, saved: SavedCheckpoint | None
    ) -> RunResult:
        """Do the task's run: from its start, or from its last checkpoint when it resumes."""
        fresh = await self._record_start(task, recorder)
        run_task = await self._run_task(task, fresh, saved)
        if run_task.requires_approval:
            run_task = await approve_task(TaskRunContext(run_task, recorder, self._store, control))
        result = await self._runner.run(TaskRunContext(run_task, recorder, self._store, control))
        await control.finishing()
        return result

    async def _end(
        self,
        task: TaskRecord,
        recorder: EventRecorder,
        control: RunControl,
        ending: RunResult | BaseException,
    ) -> None:
        """Record how the run ended: its outcome, a wait for approval, a park, or nothing (task lost)."""
        match ending:
            case RunResult():
                await self._complete(task, recorder, ending)
            case RunStopped():
                await self._stop_run(task, recorder, ending)
            case ApprovalNeeded():
                await self._park_for_approval(task, recorder, control, ending)
            case RunParked():
                logger.info("task paused; its slot is free", extra={"workflow_id": task.task_id})
            case ClaimLost():
                logger.error(
                    "task taken over by another worker; stopping it here", extra={"workflow_id": task.task_id}
                )
            case OrchestratorError():
                # A refusal written for clients (the session's budget is spent) is the task's error.
                await self._fail(task, recorder, ending.public_message)
            case asyncio.CancelledError():
                raise ending
            case Exception():
                logger.error("task failed", extra={"workflow_id": task.task_id}, exc_info=ending)
                await self._fail(task, recorder)
            case _:
                raise ending

    async def _park_for_approval(
        self, task: TaskRecord, recorder: EventRecorder, control: RunControl, needed: ApprovalNeeded
    ) -> None:
        """Park the task to wait for the approval its run asked for; no coroutine waits with it."""
        timeout_seconds = task.options.get("approval_timeout_seconds") or self._approval_timeout_seconds
        parked = await park_for_approval(
            self._store, self._bus, task, control.used_seconds(), needed, float(timeout_seconds)
        )
        if parked:
            return
        # A cancel came first (the checkpoint ends the run with it), or the task changed hands.
        try:
            control.notice_change()
            await control.finishing()
        except RunStopped as stopped:
            await self._stop_run(task, recorder, stopped)
            return
        logger.error(
            "task taken over by another worker; stopping it here", extra={"workflow_id": task.task_id}
        )

    async def _record_start(self, task: TaskRecord, recorder: EventRecorder) -> bool:
        """Emit WORKFLOW_STARTED unless an earlier run did; return whether this run is the first."""
        if (
            recorder.last_seq > 0
            and await self._store.last_event_seq(task.task_id, events.WORKFLOW_STARTED) > 0
        ):
            return False
        await recorder.emit(
            events.WORKFLOW_STARTED, "Workflow started", {"task_id": task.task_id, "attempt": task.attempt}
        )
        return True

    async def _run_task(self, task: TaskRecord, fresh: bool, saved: SavedCheckpoint | None) -> RunTask:
        session = None
        if fresh:
            # A run that has started is never cut short by its session's budget (continuation.py).
            session = await require_session_budget(self._store, task)
        return RunTask(
            workflow_id=task.task_id,
            query=task.query,
            mode=task.mode,
            model_tier=str(task.options.get("model_tier", "")),
            context=task.context,
            options=task.options,
            history=await session_history(self._store, task, session),
            attempt=task.attempt,
            checkpoint=saved.state if saved is not None else None,
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
