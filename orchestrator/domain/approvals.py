"""The records of approvals: a request for a human decision, and how it was resolved."""

import dataclasses
import datetime
import enum
from collections.abc import Mapping
from typing import Any

from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskStatus

#: An action an approval carries out: a JSON object, or (as an approver may write a modified one) a string.
Action = Mapping[str, Any] | str


def plain_action(action: Action) -> dict[str, Any] | str:
    """Return an action as a plain JSON value: a dict, or the string as it is."""
    return action if isinstance(action, str) else dict(action)


class ApprovalStatus(enum.StrEnum):
    """Where an approval stands; every status but PENDING is final."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    #: The task ended (cancelled) while it waited; nobody decided.
    CANCELLED = "cancelled"


class ApprovalFilter(enum.StrEnum):
    """Which approvals a list shows."""

    PENDING = "pending"
    DECIDED = "decided"
    ALL = "all"


@dataclasses.dataclass(frozen=True)
class NewApproval:
    """An approval a running task asks for."""

    approval_id: str
    task_id: str
    user_id: str
    tenant_id: str
    step: str
    proposed_action: Mapping[str, Any]
    reason: str
    requested_at: datetime.datetime
    expires_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class ApprovalRecord(NewApproval):
    """A stored approval: the one asked for, with its status, its decision and its task's query."""

    status: ApprovalStatus
    query: str = ""
    decided_by: str = ""
    # The API key the decider used; empty for an access token, the clock or a cancel.
    decided_by_api_key_id: str = ""
    decided_at: datetime.datetime | None = None
    feedback: str = ""
    modified_action: Action | None = None

    @property
    def action_to_run(self) -> Action:
        """The action an approval lets the task carry out: the modified one if given, else the proposed."""
        return self.modified_action if self.modified_action is not None else self.proposed_action


@dataclasses.dataclass(frozen=True)
class ApprovalResolution:
    """How a pending approval is resolved, and what becomes of its waiting task, with the events."""

    status: ApprovalStatus
    decided_by: str
    decided_at: datetime.datetime
    feedback: str
    modified_action: Action | None
    task_status: TaskStatus
    task_error: str
    events: tuple[NewEvent, ...]
    decided_by_api_key_id: str = ""
