"""The store: every query written once, grouped by area, over one database and its dialect.

``SQLStore`` holds one object per area and answers each ``Store`` method by handing it to the area
that owns it (``answered_by``): a newcomer finds a method's SQL in the module of its area. Only
full-text search has one implementation per database (FTS5, tsvector). What a method does is
written once, in ``Store`` (``base.py``); an area's method says, where there is more to it than
one statement, how it does it.
"""

from collections.abc import Callable
from typing import Any

from orchestrator.store.approvals import ApprovalQueries
from orchestrator.store.base import Store
from orchestrator.store.checkpoints import CheckpointLog
from orchestrator.store.claims import TaskClaims
from orchestrator.store.database import Database
from orchestrator.store.events import EventLog
from orchestrator.store.group_commit import EventWriter
from orchestrator.store.identity import IdentityQueries
from orchestrator.store.login_failures import LoginFailureQueries
from orchestrator.store.schedules import ScheduleQueries
from orchestrator.store.search import TaskSearch
from orchestrator.store.sessions import SessionQueries
from orchestrator.store.submissions import TaskSubmissions
from orchestrator.store.task_changes import TaskChangeLog
from orchestrator.store.task_control import TaskControlQueries
from orchestrator.store.tasks import TaskQueue
from orchestrator.store.usage import UsageQueries

#: The channel migration 0013's trigger notifies (on PostgreSQL) when a task becomes QUEUED.
WORK_QUEUED_CHANNEL = "taskgate_work_queued"


class answered_by:  # noqa: N801 (read as a declaration: ``get_task = answered_by("tasks")``)
    """A ``Store`` method answered by the method of the same name of one of the store's areas."""

    def __init__(self, area: str) -> None:
        self.area = area
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, store: Any, owner: type | None = None) -> Any:
        if store is None:
            return self
        return getattr(getattr(store, self.area), self.name)


class SQLStore(Store):
    """Users, API keys, sessions, tasks, events, approvals and schedules in one SQL database."""

    def __init__(self, database: Database, search: TaskSearch, max_running_per_user: int = 0) -> None:
        """``max_running_per_user``: running tasks one user may hold at once (0: no cap), ``claims.py``."""
        self.database = database
        self.single_replica = database.single_replica
        self.identity = IdentityQueries(database)
        self.login_failures = LoginFailureQueries(database)
        self.sessions = SessionQueries(database)
        self.search = search
        self.submissions = TaskSubmissions(database)
        self.claims = TaskClaims(database, max_running_per_user)
        self.tasks = TaskQueue(database)
        self.control = TaskControlQueries(database)
        self.events = EventLog(database)
        self.task_changes = TaskChangeLog(database)
        self.writer = EventWriter(database)
        self.checkpoints = CheckpointLog(database)
        self.schedules = ScheduleQueries(database)
        self.approvals = ApprovalQueries(database)
        self.usage = UsageQueries(database)

    async def migrate(self) -> list[int]:
        return await self.database.migrate()

    async def close(self) -> None:
        await self.writer.close()
        await self.database.close()

    def on_work_queued(self, callback: Callable[[], None]) -> None:
        self.database.listen(WORK_QUEUED_CHANNEL, callback)

    # Users, API keys, accounts and refresh tokens.
    create_user = answered_by("identity")
    get_user = answered_by("identity")
    find_user_by_email = answered_by("identity")
    create_api_key = answered_by("identity")
    find_api_keys = answered_by("identity")
    touch_api_key = answered_by("identity")
    create_account = answered_by("identity")
    ensure_user = answered_by("identity")
    find_user_credentials = answered_by("identity")
    set_user_role = answered_by("identity")
    create_refresh_token = answered_by("identity")
    rotate_refresh_token = answered_by("identity")
    list_api_keys = answered_by("identity")
    revoke_api_key = answered_by("identity")
    get_tenant_api_key = answered_by("identity")
    set_api_key_rate_limits = answered_by("identity")
    login_refusal_seconds = answered_by("login_failures")
    record_login_failure = answered_by("login_failures")
    clear_login_failures = answered_by("login_failures")
    forget_login_failures = answered_by("login_failures")

    # The usage ledger of the budgets.
    budget_usage = answered_by("usage")
    key_usage = answered_by("usage")

    # Sessions, their tasks and usage.
    get_session = answered_by("sessions")
    list_sessions = answered_by("sessions")
    get_session_summary = answered_by("sessions")
    rename_session = answered_by("sessions")
    delete_session = answered_by("sessions")
    list_session_tasks = answered_by("sessions")
    session_history = answered_by("sessions")
    usage_stats = answered_by("sessions")
    session_export_size = answered_by("sessions")
    session_export_tasks = answered_by("sessions")
    task_events_page = answered_by("sessions")
    search_tasks = answered_by("search")

    # The task queue.
    create_task = answered_by("submissions")
    get_task = answered_by("tasks")
    list_tasks = answered_by("tasks")
    claim_next = answered_by("claims")
    claim_tasks = answered_by("claims")
    renew_leases = answered_by("tasks")
    take_over_expired_leases = answered_by("tasks")
    update_task_progress = answered_by("writer")
    finish_task = answered_by("control")

    # Events.
    record_step = answered_by("writer")
    last_checkpoint = answered_by("checkpoints")
    append_event = answered_by("writer")
    list_events = answered_by("events")
    count_events = answered_by("events")
    last_event_seq = answered_by("events")
    workflow_owner = answered_by("events")
    list_workflow_events = answered_by("events")
    number_pending_task_changes = answered_by("task_changes")
    list_task_changes = answered_by("task_changes")
    list_user_task_changes = answered_by("task_changes")
    last_task_change_id = answered_by("task_changes")
    prune_task_changes = answered_by("task_changes")

    # Task control.
    transition_task = answered_by("control")
    get_control_states = answered_by("control")
    list_claimed_tasks = answered_by("control")

    # Schedules.
    create_schedule = answered_by("schedules")
    get_schedule = answered_by("schedules")
    list_schedules = answered_by("schedules")
    save_schedule = answered_by("schedules")
    delete_schedule = answered_by("schedules")
    due_schedules = answered_by("schedules")
    claim_schedule_run = answered_by("schedules")
    add_manual_run = answered_by("schedules")
    list_schedule_runs = answered_by("schedules")
    unconfirmed_schedule_runs = answered_by("schedules")
    confirm_schedule_run = answered_by("schedules")

    # Approvals.
    park_for_approval = answered_by("approvals")
    resolve_approval = answered_by("approvals")
    get_approval = answered_by("approvals")
    list_task_approvals = answered_by("approvals")
    list_approvals = answered_by("approvals")
    list_expired_approvals = answered_by("approvals")
