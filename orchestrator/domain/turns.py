"""A session's turns: which of them are active, and what a new turn does to those (``multitask_strategy``).

The strategies are LangGraph's, with its names and meanings. ``enqueue`` (the default): the new turn
waits behind the session's active turns and runs after them, seeing their answers. ``reject``: the
new turn is refused (SessionBusyError) while one is active. ``interrupt``: every active turn is
cancelled, keeping its events, and the new turn runs once they have ended. ``rollback``: the same,
and the cancelled turns are also left out of the session's history from then on.

The cancellation is the owner's cancel (``task_control.decide_cancel``), asked by the newer turn's
submitter: a turn no runner holds ends CANCELLED at once, a running one is asked to stop.
"""

import dataclasses
import datetime

from orchestrator.domain.task_control import ControlDecision
from orchestrator.domain.task_control import ControlRequest
from orchestrator.domain.task_control import decide_cancel
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.events import Event

ENQUEUE = "enqueue"
REJECT = "reject"
INTERRUPT = "interrupt"
ROLLBACK = "rollback"
MULTITASK_STRATEGIES = (ENQUEUE, REJECT, INTERRUPT, ROLLBACK)
DEFAULT_MULTITASK_STRATEGY = ENQUEUE
#: The task option a submission's checked strategy is kept under (absent: the default).
MULTITASK_OPTION = "multitask_strategy"

#: A turn in one of these is active: it waits to run, runs, waits for an approval, or is paused.
ACTIVE_STATUSES = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.PAUSED)

INTERRUPTED_REASON = "Interrupted by a newer turn of the session"
ROLLED_BACK_REASON = "Rolled back by a newer turn of the session"


@dataclasses.dataclass(frozen=True)
class SubmittedTask:
    """A stored task, and what storing it did to the session's active turns.

    ``ended_events`` were stored for the turns it ended at once (each turn's WORKFLOW_CANCELLED and
    STREAM_END) and are published after the commit; ``interrupted_runs`` are the turns whose runner
    was asked to stop and must be told (``ControlSignals.notify``).
    """

    task: TaskRecord
    ended_events: tuple[Event, ...] = ()
    interrupted_runs: tuple[str, ...] = ()


def check_strategy(strategy: str) -> str:
    """Return a strategy named in ``MULTITASK_STRATEGIES``; raise ValueError for any other."""
    if strategy not in MULTITASK_STRATEGIES:
        raise ValueError(f"unknown multitask strategy {strategy!r}")
    return strategy


def interruption(turn: TaskRecord, strategy: str, user_id: str, at: datetime.datetime) -> ControlDecision:
    """Return how a new ``interrupt`` or ``rollback`` turn cancels one active turn of its session.

    The decision of the owner's own cancel: a transition that ends a turn no runner holds, or one
    that asks the runner to stop (``notify_runner``); none when a cancel is already under way.
    """
    reason = ROLLED_BACK_REASON if strategy == ROLLBACK else INTERRUPTED_REASON
    return decide_cancel(turn, ControlRequest(user_id, reason, at))
