"""The store interface: every durable read and write the orchestrator makes goes through it.

One implementation (``SQLStore``) serves SQLite and PostgreSQL; the engine and the servicers only
see this interface. Reads that take a ``user_id`` are scoped to that user: a
row of someone else is reported exactly like a missing one.
"""

import abc
import datetime
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Sequence

from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.domain.accounts import NewAccount
from orchestrator.domain.accounts import NewApiKey
from orchestrator.domain.accounts import NewRefreshToken
from orchestrator.domain.accounts import RateLimitOverrides
from orchestrator.domain.accounts import RefreshRotation
from orchestrator.domain.accounts import UserCredentials
from orchestrator.domain.accounts import UserRecord
from orchestrator.domain.approvals import ApprovalFilter
from orchestrator.domain.approvals import ApprovalRecord
from orchestrator.domain.approvals import ApprovalResolution
from orchestrator.domain.approvals import NewApproval
from orchestrator.domain.budgets import BudgetUsage
from orchestrator.domain.login_throttle import LoginBackoff
from orchestrator.domain.login_throttle import LoginFailure
from orchestrator.domain.schedules import RunClaim
from orchestrator.domain.schedules import ScheduleRecord
from orchestrator.domain.schedules import ScheduleRun
from orchestrator.domain.schedules import UnconfirmedRun
from orchestrator.domain.sessions import SearchHit
from orchestrator.domain.sessions import SessionRecord
from orchestrator.domain.sessions import SessionSummary
from orchestrator.domain.sessions import UsageStats
from orchestrator.domain.task_changes import TaskChange
from orchestrator.domain.tasks import Checkpoint
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import SavedCheckpoint
from orchestrator.domain.tasks import TaskFilter
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskTransition
from orchestrator.domain.turns import SubmittedTask
from orchestrator.events import Event
from orchestrator.store.sessions import ExportPosition


class Store(abc.ABC):
    """Durable state: users, API keys, sessions, tasks and their events."""

    #: True when one orchestrator process owns the database (SQLite): a task still RUNNING when it
    #: starts was interrupted by its previous life. False when replicas share it (PostgreSQL): such
    #: a task may be running on another replica, and is recovered only once its lease expires.
    single_replica: bool = False

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply the schema migrations not applied yet; return the versions applied now."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the database connections."""

    @abc.abstractmethod
    def on_work_queued(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on this loop soon after any process commits a task becoming QUEUED.

        Best effort, and several such commits may be announced once: it says "look for queued work
        now", so the caller still looks now and then. A database that one process owns (SQLite)
        announces nothing; that process wakes its worker pool itself when it queues work.
        """

    # Users and API keys.

    @abc.abstractmethod
    async def create_user(
        self, email: str, username: str, role: str = "user", tier: str = "free"
    ) -> UserRecord:
        """Create a user in a new tenant; raise AlreadyExistsError when the email is taken."""

    @abc.abstractmethod
    async def get_user(self, user_id: str) -> UserRecord | None:
        """Return a user by id."""

    @abc.abstractmethod
    async def find_user_by_email(self, email: str) -> UserRecord | None:
        """Return a user by email (compared case-insensitively)."""

    @abc.abstractmethod
    async def create_api_key(self, user: UserRecord, key: NewApiKey, max_active: int = 0) -> ApiKeyRecord:
        """Store a new key's prefix and hash for a user.

        With ``max_active`` > 0, a user who already holds that many active (unrevoked, unexpired)
        keys gets ApiKeyLimitError and nothing is stored, exactly even when keys are created at once.
        """

    @abc.abstractmethod
    async def find_api_keys(self, key_prefix: str) -> list[tuple[ApiKeyRecord, UserRecord]]:
        """Return the keys with this lookup prefix, each with its owner (usually zero or one)."""

    @abc.abstractmethod
    async def touch_api_key(self, key_id: str, used_at: datetime.datetime) -> None:
        """Record that a key was used."""

    # Accounts: registration, passwords, refresh tokens, managing keys (orchestrator/engine/accounts.py).

    @abc.abstractmethod
    async def create_account(self, account: NewAccount) -> UserRecord:
        """Create a user with a password in a new tenant, with its first key and refresh token, at once.

        An email taken already (compared case-insensitively) is AlreadyExistsError, and nothing is stored.
        """

    @abc.abstractmethod
    async def ensure_user(self, user: UserRecord) -> None:
        """Create this user (and its tenant) under its own ids unless a user with its id or email exists."""

    @abc.abstractmethod
    async def find_user_credentials(self, email: str) -> UserCredentials | None:
        """Return a user by email (compared case-insensitively) with its password hash."""

    @abc.abstractmethod
    async def set_user_role(self, email: str, role: str) -> UserRecord | None:
        """Give the user with this email a role; None when there is no such user."""

    @abc.abstractmethod
    async def create_refresh_token(self, user_id: str, token: NewRefreshToken) -> None:
        """Store the first token of a new family for a user, and delete the user's expired tokens."""

    @abc.abstractmethod
    async def rotate_refresh_token(
        self, token_hash: str, replacement: NewRefreshToken, now: datetime.datetime
    ) -> RefreshRotation:
        """Use a refresh token once: store its replacement in its family and return its user.

        An unknown, expired or revoked token changes nothing. A token used before (a copy is in
        someone else's hands) revokes every token of its family, the current one included. Two
        rotations of one token at once are one use and one reuse, never two uses.
        """

    # The usage ledger of the budgets (store/usage.py); finish_task records a task's usage in it.

    @abc.abstractmethod
    async def budget_usage(self, user_id: str, api_key_id: str, now: datetime.datetime) -> BudgetUsage:
        """Return the user's tier and the key's budgets, with what each used now: one indexed read.

        Used means the tokens recorded in the UTC minute of ``now`` and the cost in its UTC day.
        ``tier`` is None for a user without an account row; ``api_key_id`` '' (or another user's
        key) reads no key.
        """

    @abc.abstractmethod
    async def key_usage(self, user_id: str, now: datetime.datetime) -> dict[str, tuple[int, float]]:
        """Return the tokens this UTC minute and the cost this UTC day of each of the user's keys."""

    @abc.abstractmethod
    async def list_api_keys(self, user_id: str) -> list[ApiKeyRecord]:
        """Return every key of a user, revoked and expired ones included, newest first."""

    @abc.abstractmethod
    async def revoke_api_key(self, key_id: str, user_id: str, now: datetime.datetime) -> bool:
        """Revoke one of the user's keys (a revoked one stays as it was); return whether the user has it."""

    @abc.abstractmethod
    async def get_tenant_api_key(self, key_id: str, tenant_id: str) -> ApiKeyRecord | None:
        """Return a key of any user of a tenant."""

    @abc.abstractmethod
    async def set_api_key_rate_limits(
        self, key_id: str, tenant_id: str, overrides: RateLimitOverrides
    ) -> ApiKeyRecord | None:
        """Set the rate-limit overrides of a key of the tenant; return the key, None when there is none."""

    # Failed logins per email (orchestrator/store/login_failures.py), by the email's SHA-256.

    @abc.abstractmethod
    async def login_refusal_seconds(self, email_hash: str) -> float:
        """Return how long logins for this email are still refused (0.0: not refused)."""

    @abc.abstractmethod
    async def record_login_failure(self, email_hash: str, backoff: LoginBackoff) -> LoginFailure:
        """Count one more consecutive failed login and refuse the email for the delay it reached."""

    @abc.abstractmethod
    async def clear_login_failures(self, email_hash: str) -> None:
        """Forget an email's failed logins (its login succeeded)."""

    @abc.abstractmethod
    async def forget_login_failures(self) -> int:
        """Delete the failures no login has added to for a day; return how many emails were forgotten."""

    # Sessions.

    @abc.abstractmethod
    async def get_session(
        self, session_id: str, user_id: str, include_deleted: bool = False
    ) -> SessionRecord | None:
        """Return one of the user's sessions that is not deleted (or deleted too, if asked)."""

    # Sessions: lists, changes, history, search and stats.

    @abc.abstractmethod
    async def list_sessions(self, user_id: str, limit: int, offset: int) -> tuple[list[SessionSummary], int]:
        """Return one page of the user's sessions not deleted, most recently active first, and the total."""

    @abc.abstractmethod
    async def get_session_summary(self, session_id: str, user_id: str) -> SessionSummary | None:
        """Return one of the user's sessions that is not deleted, with the aggregates of its tasks.

        Turns rolled back by a later turn (``multitask_strategy`` rollback) count in no aggregate.
        """

    @abc.abstractmethod
    async def rename_session(self, session_id: str, user_id: str, title: str) -> bool:
        """Set the title of one of the user's sessions that is not deleted; return whether it exists."""

    @abc.abstractmethod
    async def delete_session(self, session_id: str, user_id: str) -> bool:
        """Soft-delete one of the user's sessions; return whether the user has it, deleted or not.

        Deleting a deleted session leaves it as it is.
        """

    @abc.abstractmethod
    async def list_session_tasks(
        self, session_id: str, user_id: str, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]:
        """Return one page of the user's tasks in a session, oldest first, and how many there are.

        Turns rolled back by a later turn are left out (each stays readable by its id).
        """

    @abc.abstractmethod
    async def session_history(
        self, session_id: str, user_id: str, before: datetime.datetime, limit: int
    ) -> list[TaskRecord]:
        """Return the session's latest ``limit`` COMPLETED tasks created before ``before``, oldest first.

        Turns rolled back by a later turn are left out.
        """

    @abc.abstractmethod
    async def session_export_size(
        self, session_id: str, user_id: str, exclude_types: Collection[str]
    ) -> tuple[int, int]:
        """Return the events an export of the session holds and the UTF-8 bytes of its stored text."""

    @abc.abstractmethod
    async def session_export_tasks(
        self, session_id: str, user_id: str, after: ExportPosition | None, limit: int
    ) -> tuple[list[TaskRecord], ExportPosition | None]:
        """Return the session's next tasks after a position (None: from the first), and the last's position.

        Turns rolled back by a later turn are left out.
        """

    @abc.abstractmethod
    async def task_events_page(
        self, task_id: str, after_seq: int, exclude_types: Collection[str], limit: int
    ) -> list[Event]:
        """Return a task's next ``limit`` events after ``after_seq``, the types named left out, in order."""

    @abc.abstractmethod
    async def list_workflow_events(
        self, workflow_ids: Sequence[str], exclude_types: Collection[str], limit: int
    ) -> list[Event]:
        """Return at most ``limit`` events of several workflows, by workflow id then seq, types excluded."""

    @abc.abstractmethod
    async def search_tasks(
        self, user_id: str, terms: Sequence[str], limit: int, offset: int
    ) -> tuple[list[SearchHit], int]:
        """Return one page of the user's tasks matching every term, best match first, and the total.

        A task matches when its query or result holds each term; tasks of deleted sessions and
        turns rolled back by a later turn are left out. Terms are words (letters and digits only)
        compared as stems, so "migrations" finds "migration"; a hit's snippet is the best passage
        with each match between ``**``.
        """

    @abc.abstractmethod
    async def usage_stats(
        self, user_id: str, since: datetime.datetime, active_since: datetime.datetime
    ) -> UsageStats:
        """Aggregate the user's tasks and sessions of a window of time.

        Tasks created since ``since`` count by status, tokens and cost, whatever became of their
        sessions; sessions not deleted count when active since ``since``, and as active when active
        since ``active_since``.
        """

    # Tasks.

    @abc.abstractmethod
    async def create_task(self, task: NewTask) -> SubmittedTask:
        """Store a QUEUED task, creating the user's session of that id if absent (a deleted one: not found).

        Session ids are per user: another user's session of the same id is another session.

        A new session takes its title from the query (``taskgate.session_titles.title_from_query``),
        its context from the task and its budget from ``session_token_budget``; a session whose
        tokens_used has reached its token_budget takes no more tasks: SessionBudgetExhaustedError.

        The task is the session's next turn, and its ``multitask_strategy`` says what it does to the
        session's active turns (``orchestrator.domain.turns``), in the same transaction: ``reject``
        raises SessionBusyError if there is one (nothing is stored); ``interrupt`` and ``rollback``
        cancel each, ending at once (with its events) a turn no runner holds and asking a running one
        to stop; ``rollback`` also leaves them out of the session's history. The answer carries the
        events to publish and the turns whose runner must be told.
        """

    @abc.abstractmethod
    async def get_task(self, task_id: str, user_id: str) -> TaskRecord | None:
        """Return one of the user's tasks."""

    @abc.abstractmethod
    async def list_tasks(
        self, user_id: str, which: TaskFilter, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]:
        """Return one page of the user's tasks, newest first, and how many match in total."""

    @abc.abstractmethod
    async def claim_next(self, worker_id: str, lease_seconds: float) -> TaskRecord | None:
        """Atomically move the next claimable QUEUED task to RUNNING for this worker and return it.

        Exactly one caller gets each task, however many workers and replicas claim at once. A task
        is claimable once no earlier turn of its session is QUEUED, RUNNING or PAUSED; the next is
        that of the user holding the fewest running tasks, then the oldest; a user already holding
        the store's ``max_running_per_user`` running tasks (0: no cap) gets none (``store/claims.py``).
        """

    @abc.abstractmethod
    async def claim_tasks(self, worker_id: str, lease_seconds: float, limit: int) -> list[TaskRecord]:
        """Claim up to ``limit`` tasks for this worker at once, in the order ``claim_next`` would.

        The same as ``limit`` calls of ``claim_next`` one after the other (stopping at the first that
        finds nothing), in one transaction.
        """

    @abc.abstractmethod
    async def renew_leases(
        self, worker_id: str, task_ids: Collection[str], lease_seconds: float
    ) -> list[str]:
        """Extend this worker's leases on these running or paused tasks by ``lease_seconds`` from now.

        Return the ids among them that another worker has taken over (after the lease expired):
        this worker must stop running those at once.
        """

    @abc.abstractmethod
    async def take_over_expired_leases(
        self, worker_id: str, lease_seconds: float, limit: int
    ) -> list[TaskRecord]:
        """Take over running or paused tasks whose lease has expired, and return them.

        Each such task goes to exactly one caller, however many replicas recover at once; its
        lease becomes this worker's, so the caller can end it without racing anyone. The caller's
        own tasks are included (a renewal that failed, say while the database was away): it must
        leave alone those it still runs.
        """

    @abc.abstractmethod
    async def update_task_progress(self, task_id: str, progress: float) -> None:
        """Record how far a running task is (0..1)."""

    @abc.abstractmethod
    async def finish_task(
        self, task_id: str, claim: Claim, outcome: TaskOutcome, new_events: Sequence[NewEvent]
    ) -> list[Event] | None:
        """End a task ``claim`` holds (RUNNING, or PAUSED at its runner) with its outcome and events.

        The task's status, its usage added to its session and its events (numbered after the last)
        commit in one transaction or not at all. A worker whose claim was taken over changes nothing
        and gets None.
        """

    @abc.abstractmethod
    async def record_step(self, event: Event, claim: Claim, checkpoint: Checkpoint) -> bool:
        """Store a step's event and make ``checkpoint`` the task's, in one transaction.

        Only while ``claim`` holds the task RUNNING: otherwise nothing is written and the answer
        is False (the worker lost the task). A task resumed later continues after this event.
        """

    @abc.abstractmethod
    async def last_checkpoint(self, task_id: str) -> SavedCheckpoint | None:
        """Return the last checkpoint a run of the task saved (None: none), with its event's seq."""

    @abc.abstractmethod
    async def append_event(self, event: Event) -> None:
        """Store an event under the seq it carries; a seq already taken is an error."""

    @abc.abstractmethod
    async def list_events(
        self, workflow_id: str, after_seq: int = 0, limit: int = 500, offset: int = 0
    ) -> list[Event]:
        """Return the workflow's events with seq > after_seq, in seq order, one page at a time."""

    @abc.abstractmethod
    async def count_events(self, workflow_id: str) -> int:
        """Return how many events a workflow has."""

    @abc.abstractmethod
    async def last_event_seq(self, workflow_id: str, event_type: str | None = None) -> int:
        """Return the highest seq of the workflow's events (of one type if given), 0 when none."""

    @abc.abstractmethod
    async def workflow_owner(self, workflow_id: str) -> str | None:
        """Return the user id owning a workflow, None when there is no such workflow."""

    # The task feed: changes of callers' tasks, numbered in commit order (store/task_changes.py).

    @abc.abstractmethod
    async def number_pending_task_changes(self) -> int:
        """Number the committed changes not numbered yet (PostgreSQL); return how many."""

    @abc.abstractmethod
    async def list_task_changes(self, after_id: int, limit: int) -> list[TaskChange]:
        """Return every caller's changes numbered above ``after_id``, in order."""

    @abc.abstractmethod
    async def list_user_task_changes(self, user_id: str, after_id: int, limit: int) -> list[TaskChange]:
        """Return one caller's changes numbered above ``after_id``, in order."""

    @abc.abstractmethod
    async def last_task_change_id(self) -> int:
        """Return the highest change number given so far (0 when none)."""

    @abc.abstractmethod
    async def prune_task_changes(self, before: datetime.datetime) -> int:
        """Delete changes made before ``before`` (the newest numbered one stays); return how many."""

    # Task control: pause, resume, cancel, and recovery of tasks whose runner is gone.

    @abc.abstractmethod
    async def transition_task(self, task_id: str, transition: TaskTransition) -> list[Event] | None:
        """Apply a transition if the task still matches its guard, with its events, in one transaction.

        The guard compares status, claimed_by, pause_requested and cancel_requested. The events get
        the workflow's next seqs and the time now. Return them as stored, or None (nothing written)
        when the guard no longer holds.
        """

    @abc.abstractmethod
    async def get_control_states(self, task_ids: Collection[str]) -> dict[str, ControlState]:
        """Return the control state of each of these tasks that exists, by task id."""

    @abc.abstractmethod
    async def list_claimed_tasks(self) -> list[TaskRecord]:
        """Return every RUNNING task and every PAUSED task a worker still holds, whoever claimed it."""

    # Schedules (orchestrator/engine/schedules.py); a schedule's run counts come from its runs' tasks.

    @abc.abstractmethod
    async def create_schedule(self, schedule: ScheduleRecord, max_per_user: int) -> bool:
        """Store a new schedule unless its user has ``max_per_user`` already; return whether stored."""

    @abc.abstractmethod
    async def get_schedule(self, schedule_id: str, user_id: str) -> ScheduleRecord | None:
        """Return one of the user's schedules, with its run counts."""

    @abc.abstractmethod
    async def list_schedules(
        self, user_id: str, status: str | None, limit: int, offset: int
    ) -> tuple[list[ScheduleRecord], int]:
        """Return one page of the user's schedules (of one status if given), newest first, and the total."""

    @abc.abstractmethod
    async def save_schedule(
        self, schedule: ScheduleRecord, expected_next_run_at: datetime.datetime | None
    ) -> bool:
        """Write a schedule's fields if next_run_at is still ``expected_next_run_at``; return whether written.

        A run claimed meanwhile moved next_run_at: nothing is written, and the caller reads again.
        """

    @abc.abstractmethod
    async def delete_schedule(self, schedule_id: str, user_id: str) -> bool:
        """Delete one of the user's schedules and its run links (not the tasks); return whether it existed."""

    @abc.abstractmethod
    async def due_schedules(self, now: datetime.datetime, limit: int) -> list[ScheduleRecord]:
        """Return ACTIVE schedules whose next run is at or before ``now``, the most overdue first."""

    @abc.abstractmethod
    async def claim_schedule_run(self, claim: RunClaim) -> bool:
        """Claim the run due at ``claim.due`` and move next_run_at on; return whether claimed.

        A compare-and-set on next_run_at: however many replicas claim the same run at once, exactly
        one gets it. The run row and its task (``claim.task``, QUEUED in a new session) are written
        in the same transaction.
        """

    @abc.abstractmethod
    async def add_manual_run(
        self, schedule_id: str, user_id: str, task: NewTask, now: datetime.datetime
    ) -> bool:
        """Record a run started by hand with its task (next_run_at is left alone); return whether it exists.

        The run and its task (QUEUED in a new session) are written in one transaction.
        """

    @abc.abstractmethod
    async def list_schedule_runs(
        self, schedule_id: str, limit: int, offset: int
    ) -> tuple[list[ScheduleRun], int]:
        """Return one page of a schedule's runs, newest first, each with its task, and the total."""

    # Approvals (orchestrator/engine/approvals.py): a task waiting for one is RUNNING with no worker.

    @abc.abstractmethod
    async def park_for_approval(
        self, approval: NewApproval, claim: Claim, run_seconds: float, event: NewEvent
    ) -> list[Event] | None:
        """Store an approval and release its RUNNING task from ``claim``, with its event (the next seq).

        The task keeps RUNNING with ``claimed_by`` and its lease cleared and ``run_seconds`` stored,
        all in one transaction; None (nothing written) unless this claim holds it and no cancel is asked.
        """

    @abc.abstractmethod
    async def resolve_approval(self, approval_id: str, resolution: ApprovalResolution) -> list[Event] | None:
        """Resolve a pending approval and move its waiting task on, with the events, in one transaction.

        None when the approval is not pending any more (whoever resolves it first wins); an empty
        list when it was resolved but its task no longer waited (it was cancelled meanwhile).
        """

    @abc.abstractmethod
    async def get_approval(self, approval_id: str, user_id: str) -> ApprovalRecord | None:
        """Return one of the user's approvals."""

    @abc.abstractmethod
    async def list_task_approvals(self, task_id: str) -> list[ApprovalRecord]:
        """Return every approval of a task, oldest first."""

    @abc.abstractmethod
    async def list_approvals(
        self, user_id: str, which: ApprovalFilter, limit: int, offset: int
    ) -> tuple[list[ApprovalRecord], int]:
        """Return one page of the user's approvals, newest first, and how many match."""

    @abc.abstractmethod
    async def list_expired_approvals(self, now: datetime.datetime, limit: int) -> list[ApprovalRecord]:
        """Return pending approvals whose time ran out, oldest expiry first."""

    @abc.abstractmethod
    async def unconfirmed_schedule_runs(
        self, triggered_before: datetime.datetime, limit: int
    ) -> list[UnconfirmedRun]:
        """Return runs claimed before a time and not yet marked as having their task, oldest first.

        Runs are stored with their task now; a replica of a version before migration 0012 stored the
        task after the claim, and one that stopped between its writes left such a run. Only those are
        read, not every run ever made.
        """

    @abc.abstractmethod
    async def confirm_schedule_run(self, task_id: str) -> None:
        """Mark a run as having its task stored, so the sweep for unstarted runs skips it."""
