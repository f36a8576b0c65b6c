"""Control signals: telling the replica that runs a task that the task's control state changed.

A pause, resume or cancel is written to the store first; the signal only says "look again", and
carries nothing but the task id. So a signal may be lost, duplicated or arrive late without harm:
the replica re-reads the store when it gets one, and also re-reads the control state of all its
running tasks every few seconds, which catches any signal that never came.

``ControlSignals`` is the interface; ``InProcessControlSignals`` serves one orchestrator process.
An implementation shared by replicas (Redis pub/sub, say: ``notify`` publishes the task id on one
channel, and a reader task calls the listeners with each id received) replaces it when several
replicas share a database.
"""

import abc
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

ControlListener = Callable[[str], None]


class ControlSignals(abc.ABC):
    """Delivers "the control state of task X changed" to every replica, best effort."""

    @abc.abstractmethod
    async def notify(self, task_id: str) -> None:
        """Tell every replica (this one included) that the task's control state changed in the store."""

    @abc.abstractmethod
    def listen(self, listener: ControlListener) -> None:
        """Call ``listener(task_id)`` on this process's event loop for each notification from now on.

        The listener must return quickly and not raise; it is called for tasks of every replica.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop delivering notifications and release any connection."""


class InProcessControlSignals(ControlSignals):
    """Control signals within one process: a notification calls the listeners directly."""

    def __init__(self) -> None:
        self._listeners: list[ControlListener] = []

    async def notify(self, task_id: str) -> None:
        """Call every listener with the task id."""
        for listener in list(self._listeners):
            try:
                listener(task_id)
            except Exception:
                logger.exception("control listener failed", extra={"workflow_id": task_id})

    def listen(self, listener: ControlListener) -> None:
        """Call ``listener(task_id)`` for each notification from now on."""
        self._listeners.append(listener)

    async def close(self) -> None:
        """Forget the listeners."""
        self._listeners.clear()
