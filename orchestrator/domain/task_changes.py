"""A change of a caller's task, as the live feed (``GET /api/v1/stream/tasks``) carries it."""

import dataclasses
import datetime

#: The feed's event names, in the order a task usually goes through them.
TASK_CREATED = "task.created"
TASK_STATUS = "task.status"
TASK_PROGRESS = "task.progress"
APPROVAL_REQUESTED = "approval.requested"
APPROVAL_DECIDED = "approval.decided"
KINDS = (TASK_CREATED, TASK_STATUS, TASK_PROGRESS, APPROVAL_REQUESTED, APPROVAL_DECIDED)


@dataclasses.dataclass(frozen=True)
class TaskChange:
    """One row of the feed: ``change_id`` increases in the order the changes committed.

    ``decision`` is the approval's outcome (``approved``, ``rejected``, ``expired``, ``cancelled``)
    on ``approval.decided``; ``status`` is always the task's status when the change was made.
    """

    change_id: int
    user_id: str
    task_id: str
    session_id: str
    kind: str
    status: str
    progress: float | None
    approval_id: str | None
    decision: str | None
    created_at: datetime.datetime
