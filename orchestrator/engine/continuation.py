"""Continuing a session: the earlier turns a runner is given, and the session's token budget.

The budget is set by the task that starts the session (its ``token_budget``, or for clients written
for Shannon ``context.token_budget``) and is ignored on a task that continues one. It is checked
twice. At submission the store refuses a task for a session whose tokens_used has reached it; and
just before a queued task runs it is checked again, because the tasks ahead of it may have spent it
meanwhile: such a task ends FAILED, without running, with the same message. A run that has started
is never cut short, so tokens_used can end above the budget by what the tasks running at that time
used; the session then takes no more tasks.
"""

from collections.abc import Mapping
from typing import Any

from orchestrator.domain.sessions import SessionRecord
from orchestrator.domain.tasks import TaskRecord
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import SessionBudgetExhaustedError
from orchestrator.runners.base import SessionTurn
from orchestrator.store.base import Store
from taskgate.session_rules import BUDGET_RULE
from taskgate.session_rules import CONTEXT_BUDGET_KEY
from taskgate.session_rules import MAX_TOKEN_BUDGET

# Earlier turns a runner gets: the latest completed ones, enough for a conversation's thread
# without letting a long session's prompt grow without bound.
HISTORY_TURNS = 10


def session_token_budget(token_budget: int | None, context: Mapping[str, Any]) -> int | None:
    """Return the budget a session started by this submission gets: the field's, else the context's."""
    if token_budget is not None:
        return _checked("token_budget", token_budget)
    in_context = context.get(CONTEXT_BUDGET_KEY)
    if in_context is None:
        return None
    return _checked(f"context.{CONTEXT_BUDGET_KEY}", in_context)


def _checked(field: str, value: object) -> int:
    if type(value) is not int or not 1 <= value <= MAX_TOKEN_BUDGET:
        raise InvalidArgumentError(field, f"{field} {BUDGET_RULE}")
    return value


async def require_session_budget(store: Store, task: TaskRecord) -> SessionRecord | None:
    """Raise SessionBudgetExhaustedError when the task's session has spent its token budget.

    Return the session as read (None if it is gone), for ``session_history``.
    """
    session = await store.get_session(task.session_id, task.user_id, include_deleted=True)
    if session is not None and session.budget_exhausted:
        raise SessionBudgetExhaustedError()
    return session


async def session_history(
    store: Store, task: TaskRecord, session: SessionRecord | None = None
) -> tuple[SessionTurn, ...]:
    """Return the session's completed turns submitted before this task, oldest first (the latest 10).

    ``session``: the session read since the task was stored. A session counting one turn has
    nothing before the task, which is that turn (a session counts every turn stored in it but
    those rolled back, in the transaction that stores or rolls back the turn), so it is not read.
    """
    if session is not None and session.task_count <= 1:
        return ()
    earlier = await store.session_history(task.session_id, task.user_id, task.created_at, HISTORY_TURNS)
    return tuple(SessionTurn(turn.query, turn.result) for turn in earlier)
