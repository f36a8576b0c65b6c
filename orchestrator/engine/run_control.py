"""A running task's control on the replica that runs it: a pause parks it, a cancel or timeout stops it.

The runner meets its control between steps (``checkpoint``), where a pause takes effect: the task
is parked PAUSED, its claim and worker slot released, to continue from its last saved checkpoint
when resumed (``RunParked`` ends the run). A cancel, or the end of the task's time, stops the run at
once wherever it is, even inside a model call that never returns: ``watch`` runs beside the runner
and the worker pool interrupts the runner when it answers (``RunStopped``).

The control state is read from the store only when it may have changed: when a control signal
names the task, and when the sweep, which reads the states of all this replica's running tasks in
one query every few seconds, finds one that differs (a lost signal). Never once per checkpoint.

Timeout: a task's budget is its ``timeout_seconds``, else the server default, and counts running
time only: time queued or paused is not counted. The time used is stored with each checkpoint and
when the task pauses, so a task resumed after a restart or elsewhere keeps what it had used.
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
from orchestrator.engine.recorder import ClaimLost
from orchestrator.engine.recorder import EventRecorder
from orchestrator.store.base import Store

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 3.0


class RunStopped(BaseException):  # noqa: N818 (a signal, like asyncio.CancelledError, not an error)
    """The run ends here: the task was cancelled or timed out; ``event`` records which.

    A BaseException, like ``asyncio.CancelledError``, so a runner's ``except Exception`` cannot
    swallow it.
    """

    def __init__(self, status: TaskStatus, error: str, event: NewEvent) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.event = event


class RunParked(BaseException):  # noqa: N818 (a signal, like asyncio.CancelledError, not an error)
    """The run ends here because the task was paused: it is parked, and resumes from its checkpoint."""


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
        self._store = store
        self._recorder = recorder
        self._claim = Claim(worker_id, task.claim_epoch)
        self._timeout_seconds = timeout_seconds
        self._clock = clock
        self._state = task.control
        # Read once first: a request may have come before this run was listening.
        self._stale = True
        self._changed = asyncio.Event()
        self._used_seconds = task.run_seconds
        self._run_started = clock()

    @property
    def task_id(self) -> str:
        """The task controlled."""
        return self._task_id

    @property
    def state(self) -> ControlState:
        """The control state as last read."""
        return self._state

    def used_seconds(self) -> float:
        """Return the running time the task has used so far, this run included."""
        return self._used_seconds + self._clock() - self._run_started

    def notice_change(self) -> None:
        """Note that the control state may have changed; it is read again before it is next acted on."""
        self._stale = True
        self._changed.set()

    async def checkpoint(self) -> None:
        """Raise RunStopped if the task was cancelled or is out of time; park it (RunParked) if paused."""
        while True:
            await self._refresh()
            self._raise_if_stopped()
            if not self._state.pause_requested:
                return
            if await self._park():
                raise RunParked()
            # The task changed since its control state was read: a resume or a cancel came first,
            # and the loop acts on it; if the control state is unchanged, the task changed hands.
            asked = self._state
            self._stale = True
            await self._refresh()
            if self._state == asked:
                raise ClaimLost()

    async def finishing(self) -> None:
        """Raise RunStopped if a cancel came during the last step: the end of a run is a checkpoint too.

        A pause asked then does not park a run whose work is done: it completes.
        """
        await self._refresh()
        self._raise_if_stopped()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` between steps, never past the end of the budget (then RunStopped)."""
        await asyncio.sleep(max(0.0, min(seconds, self._deadline() - self._clock())))
        self._raise_if_stopped()

    async def watch(self) -> RunStopped:
        """Return, as soon as it happens, the reason the run must stop: a cancel or the end of its time.

        Runs beside the runner; the worker pool then interrupts the runner wherever it is.
        """
        while True:
            await self._refresh()
            if self._must_stop():
                return self._stop_reason()
            self._changed.clear()
            if self._stale:
                continue  # a change came while the state was read
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, self._deadline() - self._clock()))

    async def _refresh(self) -> None:
        if not self._stale:
            return
        self._stale = False
        states = await self._store.get_control_states([self._task_id])
        self._state = states.get(self._task_id, self._state)

    def _must_stop(self) -> bool:
        return self._state.cancel_requested or self._clock() >= self._deadline()

    def _raise_if_stopped(self) -> None:
        if self._must_stop():
            raise self._stop_reason()

    def _stop_reason(self) -> RunStopped:
        if self._state.cancel_requested:
            return RunStopped(TaskStatus.CANCELLED, CANCELLED_ERROR, cancelled_event(self._state))
        error = f"The task ran longer than its timeout of {self._timeout_seconds:g} seconds"
        event = NewEvent(
            events.WORKFLOW_TIMEOUT,
            "Workflow timed out",
            {"error": error, "timeout_seconds": self._timeout_seconds},
        )
        return RunStopped(TaskStatus.TIMEOUT, error, event)

    def _deadline(self) -> float:
        return self._run_started + self._timeout_seconds - self._used_seconds

    async def _park(self) -> bool:
        """Move the task from RUNNING to parked PAUSED with its event; False if its state changed first."""
        transition = TaskTransition(
            TaskGuard(
                TaskStatus.RUNNING,
                self._claim.worker_id,
                pause_requested=True,
                cancel_requested=False,
                claim_epoch=self._claim.epoch,
            ),
            self._state,
            status=TaskStatus.PAUSED,
            release=True,
            run_seconds=self.used_seconds(),
            events=(paused_event(self._state),),
        )
        return await self._recorder.record_transition(transition)


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
