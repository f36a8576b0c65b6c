"""A running task's control on the replica that runs it: pauses hold it, cancels and timeouts stop it.

The runner meets its control between steps (``checkpoint``) and in its waits (``sleep``). The
control state is read from the store only when it may have changed: when a control signal names
the task, and when the sweep, which reads the states of all this replica's running tasks in one
query every few seconds, finds one that differs (a lost signal). Never once per checkpoint.

Timeout: a task's budget is its ``timeout_seconds``, else the server default, and counts running
time only: time queued or paused is not counted. The time used is stored when the task pauses, so
a task resumed after a restart keeps what it had used. A runner that meets a checkpoint or a wait
with the budget spent stops with TIMEOUT; a wait never outlasts the budget.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from orchestrator import events
from orchestrator.control_signals import ControlSignals
from orchestrator.domain.task_control import CANCELLED_ERROR
from orchestrator.domain.task_control import cancelled_event
from orchestrator.domain.task_control import paused_event
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskGuard
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TaskTransition
from orchestrator.engine.recorder import EventRecorder
from orchestrator.store.base import Store

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 3.0


class RunStopped(BaseException):  # noqa: N818 (a signal, like asyncio.CancelledError, not an error)
    """Raised into a runner at a checkpoint or wait to end its run: the task was cancelled or timed out.

    A BaseException, like ``asyncio.CancelledError``, so a runner's ``except Exception`` cannot
    swallow it.
    """

    def __init__(self, status: TaskStatus, error: str, event: NewEvent) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.event = event


class RunLost(BaseException):  # noqa: N818 (a signal, like asyncio.CancelledError, not an error)
    """Raised into a runner whose task is no longer this worker's (another replica took it over).

    The run ends without recording anything: the task's new holder decides what happens to it.
    """


def timeout_budget(options: Mapping[str, Any], default_seconds: float) -> float:
    """Return a task's timeout in seconds: its own ``timeout_seconds`` option, else the default."""
    own = options.get("timeout_seconds")
    return float(own) if own else default_seconds


class RunControl:
    """The control of one task while this replica runs it."""

    def __init__(
        self,
        task: TaskRecord,
        store: Store,
        recorder: EventRecorder,
        worker_id: str,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._task_id = task.task_id
        self._user_id = task.user_id
        self._store = store
        self._recorder = recorder
        self._worker_id = worker_id
        self._claim = Claim(worker_id, task.claim_epoch)
        self._timeout_seconds = timeout_seconds
        self._clock = clock
        self._state = task.control
        # Read once at the first checkpoint: a request may have come before this run was listening.
        self._stale = True
        self._changed = asyncio.Event()
        self._used_seconds = task.run_seconds
        self._run_started = clock()
        self._held = False

    @property
    def task_id(self) -> str:
        """The task controlled."""
        return self._task_id

    @property
    def state(self) -> ControlState:
        """The control state as last read."""
        return self._state

    @property
    def is_held(self) -> bool:
        """Whether the runner waits at a pause right now (it does no work meanwhile)."""
        return self._held

    def used_seconds(self) -> float:
        """Return the running time the task has used so far, this run included."""
        return self._used_seconds + self._clock() - self._run_started

    def notice_change(self) -> None:
        """Note that the control state may have changed; it is read again before it is next acted on."""
        self._stale = True
        self._changed.set()

    async def checkpoint(self) -> None:
        """Raise RunStopped if the task was cancelled or is out of time; hold it while it is paused."""
        while True:
            await self._refresh()
            self._raise_if_stopped()
            if not self._state.pause_requested:
                return
            if await self._pause():
                await self._hold()
                return
            # The task changed since its control state was read: a resume or a cancel came first,
            # and the loop acts on it; if the control state is unchanged, the task changed hands.
            asked = self._state
            self._stale = True
            await self._refresh()
            if self._state == asked:
                raise RunLost()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` between steps; a cancellation or the end of the budget ends it with RunStopped."""
        wake_at = self._clock() + seconds
        while True:
            self._changed.clear()
            await self._refresh()
            self._raise_if_stopped()
            now = self._clock()
            if now >= wake_at:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(wake_at, self._deadline()) - now)

    async def _refresh(self) -> None:
        if not self._stale:
            return
        self._stale = False
        states = await self._store.get_control_states([self._task_id])
        self._state = states.get(self._task_id, self._state)

    def _raise_if_stopped(self) -> None:
        if self._state.cancel_requested:
            raise RunStopped(TaskStatus.CANCELLED, CANCELLED_ERROR, cancelled_event(self._state))
        if self._clock() >= self._deadline():
            error = f"The task ran longer than its timeout of {self._timeout_seconds:g} seconds"
            event = NewEvent(
                events.WORKFLOW_TIMEOUT,
                "Workflow timed out",
                {"error": error, "timeout_seconds": self._timeout_seconds},
            )
            raise RunStopped(TaskStatus.TIMEOUT, error, event)

    def _deadline(self) -> float:
        return self._run_started + self._timeout_seconds - self._used_seconds

    async def _pause(self) -> bool:
        """Move the task from RUNNING to PAUSED with its event; False if its state changed first."""
        used_seconds = self._used_seconds + self._clock() - self._run_started
        transition = TaskTransition(
            TaskGuard(
                TaskStatus.RUNNING,
                self._worker_id,
                pause_requested=True,
                cancel_requested=False,
                claim_epoch=self._claim.epoch,
            ),
            self._state,
            status=TaskStatus.PAUSED,
            run_seconds=used_seconds,
            events=(paused_event(self._state),),
        )
        if not await self._recorder.record_transition(transition):
            return False
        self._used_seconds = used_seconds
        return True

    async def _hold(self) -> None:
        """Wait until the task is resumed (the resume set it RUNNING and recorded its event) or cancelled."""
        self._held = True
        try:
            while True:
                self._changed.clear()
                await self._refresh()
                if self._state.cancel_requested or not self._state.pause_requested:
                    break
                await self._changed.wait()
        finally:
            self._held = False
        if not self._state.cancel_requested:
            # A resume set the task RUNNING for this worker, unless another replica took it over
            # meanwhile (and parked it): then it is not this worker's to run any more.
            task = await self._store.get_task(self._task_id, self._user_id)
            if task is None or task.status != TaskStatus.RUNNING or task.claim != self._claim:
                raise RunLost()
        # A resume recorded its event while the task was held: the next seq follows it.
        await self._recorder.resync()
        self._run_started = self._clock()
        self._raise_if_stopped()


class RunningControls:
    """The controls of the tasks this replica runs, kept current by control signals and a slow sweep."""

    def __init__(self, store: Store, signals: ControlSignals, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self._store = store
        self._sweep_seconds = sweep_seconds
        self._controls: dict[str, RunControl] = {}
        signals.listen(self._on_signal)

    def add(self, control: RunControl) -> None:
        """Start delivering changes to a run's control."""
        self._controls[control.task_id] = control

    def remove(self, task_id: str) -> None:
        """Stop delivering changes to a finished run."""
        self._controls.pop(task_id, None)

    def is_held(self, task_id: str) -> bool:
        """Whether the task runs here and waits at a pause."""
        control = self._controls.get(task_id)
        return control is not None and control.is_held

    async def sweep(self) -> None:
        """Read the control states of every task running here in one query; flag those that changed."""
        if not self._controls:
            return
        states = await self._store.get_control_states(list(self._controls))
        for task_id, state in states.items():
            control = self._controls.get(task_id)
            if control is not None and control.state != state:
                control.notice_change()

    async def sweep_forever(self) -> None:
        """Sweep every ``sweep_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self._sweep_seconds)
            try:
                await self.sweep()
            except Exception:
                logger.exception("reading the control states of running tasks failed")

    def _on_signal(self, task_id: str) -> None:
        control = self._controls.get(task_id)
        if control is not None:
            control.notice_change()
