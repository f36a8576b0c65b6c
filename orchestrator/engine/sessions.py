"""The session engine: the caller's sessions, their turns, search over their tasks and usage stats.

Every call is scoped to the caller: another user's session is reported exactly like a missing or
deleted one (SessionNotFoundError), and search and stats only ever read the caller's rows.
"""

import dataclasses
import datetime
import re
from collections.abc import AsyncIterator

from orchestrator.caller import Caller
from orchestrator.domain.sessions import DayUsage
from orchestrator.domain.sessions import SearchHit
from orchestrator.domain.sessions import SessionSummary
from orchestrator.domain.sessions import UsageStats
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.engine.session_export import TASK_END
from orchestrator.engine.session_export import ExportDocument
from orchestrator.engine.session_export import ExportLimits
from orchestrator.engine.session_export import document_end
from orchestrator.engine.session_export import document_head
from orchestrator.engine.session_export import event_piece
from orchestrator.engine.session_export import task_head
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import SessionNotFoundError
from orchestrator.errors import SessionTooLargeError
from orchestrator.events import LLM_PARTIAL
from orchestrator.events import Event
from orchestrator.store.base import Store
from taskgate.rfc3339 import utc_now
from taskgate.session_rules import DEFAULT_STATS_DAYS
from taskgate.session_rules import MAX_SEARCH_CHARACTERS
from taskgate.session_rules import MAX_STATS_DAYS
from taskgate.session_titles import TITLE_RULE
from taskgate.session_titles import valid_title

# A session is active while one of its tasks was submitted or changed status within this time.
ACTIVE_WINDOW = datetime.timedelta(hours=24)
# The events of one page of turns; a page with more is refused rather than cut (ask for fewer turns).
MAX_TURN_EVENTS = 5_000
# Event types left out of the turns and the export: the deltas add up to the LLM_OUTPUT after them.
TURN_EXCLUDED_TYPES = (LLM_PARTIAL,)
# An export reads this many tasks, and of a task this many events, at a time.
EXPORT_TASK_PAGE = 50
EXPORT_EVENT_PAGE = 200
# Words as the full-text index sees them: letters and digits (the underscore separates, as there).
_WORD = re.compile(r"[^\W_]+")


@dataclasses.dataclass(frozen=True)
class Turn:
    """One task of a session seen as a turn of the conversation: its number and its events."""

    number: int
    task: TaskRecord
    events: list[Event]

    @property
    def execution_time_ms(self) -> int:
        """How long the task ran: until it ended, or until now while it runs; 0 before it starts."""
        if self.task.started_at is None:
            return 0
        end = self.task.completed_at or utc_now()
        return max(0, round((end - self.task.started_at).total_seconds() * 1000))

    @property
    def agents_involved(self) -> list[str]:
        """The distinct agents that emitted the turn's events, sorted."""
        return sorted({event.agent_id for event in self.events if event.agent_id})


def is_active(session: SessionSummary, now: datetime.datetime) -> bool:
    """Whether the session saw activity within ``ACTIVE_WINDOW`` of ``now``."""
    last = session.session.last_activity_at
    return last is not None and now - last < ACTIVE_WINDOW


def search_terms(text: str) -> list[str]:
    """Return the distinct words of a search, lower-cased, in order; raise when there are none."""
    if not text.strip() or len(text) > MAX_SEARCH_CHARACTERS:
        raise InvalidArgumentError("query", f"query must be 1..{MAX_SEARCH_CHARACTERS} characters")
    terms = list(dict.fromkeys(word.lower() for word in _WORD.findall(text)))
    if not terms:
        raise InvalidArgumentError("query", "query must contain a letter or a digit")
    return terms


class SessionEngine:
    """Reads and changes the caller's sessions, searches their tasks and sums up their usage."""

    def __init__(self, store: Store, export_limits: ExportLimits | None = None) -> None:
        self._store = store
        self._export_limits = export_limits or ExportLimits()

    async def list_sessions(
        self, caller: Caller, limit: int, offset: int
    ) -> tuple[list[SessionSummary], int]:
        """Return one page of the caller's sessions, most recently active first, and the total."""
        return await self._store.list_sessions(caller.user_id, limit, offset)

    async def get_session(self, caller: Caller, session_id: str) -> SessionSummary:
        """Return one of the caller's sessions with its aggregates; raise SessionNotFoundError otherwise."""
        summary = await self._store.get_session_summary(session_id, caller.user_id)
        if summary is None:
            raise SessionNotFoundError()
        return summary

    async def rename_session(self, caller: Caller, session_id: str, title: str) -> str:
        """Set a session's title (sanitised, 1..60 characters) and return it as stored."""
        stored = valid_title(title)
        if stored is None:
            raise InvalidArgumentError("title", f"title {TITLE_RULE}")
        if not await self._store.rename_session(session_id, caller.user_id, stored):
            raise SessionNotFoundError()
        return stored

    async def delete_session(self, caller: Caller, session_id: str) -> None:
        """Soft-delete one of the caller's sessions; deleting it again succeeds again."""
        if not await self._store.delete_session(session_id, caller.user_id):
            raise SessionNotFoundError()

    async def history(
        self, caller: Caller, session_id: str, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]:
        """Return one page of a session's tasks, oldest first, and how many it has."""
        if await self._store.get_session(session_id, caller.user_id) is None:
            raise SessionNotFoundError()
        return await self._store.list_session_tasks(session_id, caller.user_id, limit, offset)

    async def turns(self, caller: Caller, session_id: str, limit: int, offset: int) -> tuple[list[Turn], int]:
        """Return one page of a session's turns with their events (LLM_PARTIAL left out), and the total."""
        tasks, total = await self.history(caller, session_id, limit, offset)
        events = await self._store.list_workflow_events(
            [task.task_id for task in tasks], TURN_EXCLUDED_TYPES, MAX_TURN_EVENTS + 1
        )
        if len(events) > MAX_TURN_EVENTS:
            raise InvalidArgumentError(
                "limit", f"these turns have more than {MAX_TURN_EVENTS} events; ask for fewer turns"
            )
        by_task = _events_by_workflow(events)
        turns = [
            Turn(offset + index + 1, task, by_task.get(task.task_id, [])) for index, task in enumerate(tasks)
        ]
        return turns, total

    async def export(self, caller: Caller, session_id: str) -> AsyncIterator[str]:
        """Check the session and its size, then return the pieces of its JSON document, in order.

        A session whose events or stored text are already past the bounds is refused here
        (SessionTooLargeError) before a piece is written; one that passes them only in its JSON
        (escapes, members' names) or grows while it is read ends ``"complete": false``.
        """
        summary = await self.get_session(caller, session_id)
        events, stored_bytes = await self._store.session_export_size(
            session_id, caller.user_id, TURN_EXCLUDED_TYPES
        )
        if events > self._export_limits.max_events or stored_bytes > self._export_limits.max_bytes:
            raise SessionTooLargeError()
        now = utc_now()
        document = ExportDocument(self._export_limits)
        head = document_head(summary, is_active(summary, now), now)
        if not document.fits(head):
            raise SessionTooLargeError()
        document.write(head)
        return self._export_pieces(caller.user_id, session_id, document)

    async def _export_pieces(
        self, user_id: str, session_id: str, document: ExportDocument
    ) -> AsyncIterator[str]:
        """Write the tasks page by page, each with its events, handing chunks on as they fill."""
        position = None
        first_task = True
        while document.complete:
            tasks, position = await self._store.session_export_tasks(
                session_id, user_id, position, EXPORT_TASK_PAGE
            )
            for task in tasks:
                head = task_head(task, first_task)
                if not document.fits(head):
                    document.complete = False
                    break
                document.write(head)
                first_task = False
                chunk = document.ready_chunk()
                if chunk is not None:
                    yield chunk
                async for chunk in self._export_events(task, document):
                    yield chunk
                document.write(TASK_END)
                if not document.complete:
                    break
            if len(tasks) < EXPORT_TASK_PAGE:
                break
        document.write(document_end(document.complete))
        yield document.rest()

    async def _export_events(self, task: TaskRecord, document: ExportDocument) -> AsyncIterator[str]:
        """Write a task's events page by page; one past the bounds is left out, and the document cut."""
        after_seq = 0
        first = True
        while True:
            events = await self._store.task_events_page(
                task.task_id, after_seq, TURN_EXCLUDED_TYPES, EXPORT_EVENT_PAGE
            )
            for event in events:
                piece = event_piece(event, first)
                if not document.fits(piece, events=1):
                    document.complete = False
                    return
                document.write(piece, events=1)
                first = False
                chunk = document.ready_chunk()
                if chunk is not None:
                    yield chunk
            if len(events) < EXPORT_EVENT_PAGE:
                return
            after_seq = events[-1].seq

    async def search(self, caller: Caller, text: str, limit: int, offset: int) -> tuple[list[SearchHit], int]:
        """Return one page of the caller's tasks whose query or result holds every word, and the total."""
        return await self._store.search_tasks(caller.user_id, search_terms(text), limit, offset)

    async def stats(self, caller: Caller, days: int) -> tuple[int, UsageStats]:
        """Return the window in days (0 means 30) and the caller's usage over it; every status counted."""
        days = days or DEFAULT_STATS_DAYS
        if not 1 <= days <= MAX_STATS_DAYS:
            raise InvalidArgumentError("days", f"days must be 1..{MAX_STATS_DAYS}")
        now = utc_now()
        stats = await self._store.usage_stats(
            caller.user_id, now - datetime.timedelta(days=days), now - ACTIVE_WINDOW
        )
        by_status = {status: stats.tasks_by_status.get(status, 0) for status in TaskStatus}
        return days, dataclasses.replace(
            stats, tasks_by_status=by_status, by_day=_every_day(stats.by_day, now, days)
        )


def _every_day(by_day: tuple[DayUsage, ...], now: datetime.datetime, days: int) -> tuple[DayUsage, ...]:
    """Return a day for each UTC date the window touches, oldest first; a day without tasks is zero.

    The window is the last ``days`` × 24 hours, so it touches ``days + 1`` dates unless it starts at
    midnight UTC.
    """
    known = {day.date: day for day in by_day}
    first = (now - datetime.timedelta(days=days)).date()
    dates = [(first + datetime.timedelta(days=n)).isoformat() for n in range((now.date() - first).days + 1)]
    return tuple(known.get(date, DayUsage(date, 0, TokenUsage())) for date in dates)


def _events_by_workflow(events: list[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = {}
    for event in events:
        grouped.setdefault(event.workflow_id, []).append(event)
    return grouped
