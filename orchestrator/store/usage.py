"""The usage ledger the token and cost budgets are checked against (migration 0016).

``usage_minutes`` and ``usage_days`` hold the tokens and cost recorded per user, API key ('' for a
task submitted without one) and UTC minute or day. ``UsageLedger.record`` adds a finished
task's usage in ``finish_task``'s transaction, with an upsert that adds to the row (so tasks
finishing at once on any replica all count); at a user's first finish of each minute it also drops
the user's rows no budget reads any more (minutes older than an hour, days older than a month), an
index range of a few rows. ``budget_usage`` reads what a
submission is checked against in one statement: primary-key reads of the user's current minute and
day, with the user's tier and the key's own budgets.
"""

import datetime

from orchestrator.domain.budgets import BudgetUsage
from orchestrator.domain.budgets import UsageWindows
from orchestrator.domain.tasks import TokenUsage
from orchestrator.store.database import Database
from orchestrator.store.database import Transaction
from orchestrator.store.dialect import Dialect

# How long rows are kept: longer than any budget's window, so nothing a budget reads is dropped.
MINUTES_KEPT = datetime.timedelta(hours=1)
DAYS_KEPT = datetime.timedelta(days=31)

# Users whose last prune a process remembers before it forgets them all (and prunes each once more).
_PRUNED_USERS_KEPT = 10_000

_LEDGERS = (("usage_minutes", "minute_start", MINUTES_KEPT), ("usage_days", "day_start", DAYS_KEPT))

_BUDGET_USAGE = (
    "SELECT u.tier AS tier, k.tokens_per_minute AS key_tokens_per_minute, k.usd_per_day AS key_usd_per_day,"
    " (SELECT COALESCE(SUM(tokens), 0) FROM usage_minutes"
    " WHERE user_id = :user AND minute_start = :minute) AS user_tokens,"
    " (SELECT COALESCE(SUM(cost_usd), 0) FROM usage_days"
    " WHERE user_id = :user AND day_start = :day) AS user_cost,"
    " (SELECT COALESCE(SUM(tokens), 0) FROM usage_minutes"
    " WHERE user_id = :user AND minute_start = :minute AND api_key_id = :key) AS key_tokens,"
    " (SELECT COALESCE(SUM(cost_usd), 0) FROM usage_days"
    " WHERE user_id = :user AND day_start = :day AND api_key_id = :key) AS key_cost"
    # One row whether or not the user has an account row (a forwarded caller may not).
    " FROM (SELECT 1 AS one) base LEFT JOIN users u ON u.id = :user"
    " LEFT JOIN api_keys k ON k.id = :key AND k.user_id = :user"
)


class UsageLedger:
    """Adds finished tasks' usage to the ledger, and drops each user's old rows now and then."""

    def __init__(self) -> None:
        # The minute each user's old rows were last dropped by this process (bounded: cleared when full).
        self._pruned: dict[str, datetime.datetime] = {}

    async def record(
        self,
        transaction: Transaction,
        dialect: Dialect,
        user_id: str,
        api_key_id: str,
        usage: TokenUsage,
        now: datetime.datetime,
    ) -> None:
        """Add a task's usage to its user's and key's current minute and day (``finish_task``'s transaction).

        Nothing for no usage. The user's rows no budget reads any more are dropped at the first
        finish of each minute (per process), not at every one: they only take room.
        """
        if not has_usage(usage):
            return
        windows = UsageWindows.at(now)
        prune = self.due_for_pruning(user_id, now)
        starts = {"minute_start": windows.minute_start, "day_start": windows.day_start}
        for table, column, kept in _LEDGERS:
            start = starts[column]
            if prune:
                # Older rows first, then the current one: every finishing task of a user locks them in
                # this order, so two at once on PostgreSQL wait for each other instead of deadlocking.
                await transaction.execute(*_prune_statement(dialect, table, column, kept, user_id, start))
            await transaction.execute(
                f"INSERT INTO {table} (user_id, api_key_id, {column}, tokens, cost_usd)"
                f" VALUES (?, ?, ?, ?, ?){_ADD_ON_CONFLICT[table]}",
                (user_id, api_key_id, dialect.encode_time(start), usage.total_tokens, usage.cost_usd),
            )

    def due_for_pruning(self, user_id: str, now: datetime.datetime) -> bool:
        """Whether this is the user's first finish of the minute here; it is noted as pruned."""
        minute_start = UsageWindows.at(now).minute_start
        if self._pruned.get(user_id) == minute_start:
            return False
        if len(self._pruned) >= _PRUNED_USERS_KEPT:
            self._pruned.clear()
        self._pruned[user_id] = minute_start
        return True

    async def prune(self, database: Database, user_id: str, now: datetime.datetime) -> None:
        """Drop the user's rows no budget reads any more, in a transaction of their own."""
        windows = UsageWindows.at(now)
        starts = {"minute_start": windows.minute_start, "day_start": windows.day_start}
        async with database.transaction() as transaction:
            for table, column, kept in _LEDGERS:
                await transaction.execute(
                    *_prune_statement(database.dialect, table, column, kept, user_id, starts[column])
                )


def has_usage(usage: TokenUsage) -> bool:
    """Whether a finished task used anything the ledger adds up."""
    return usage.total_tokens > 0 or usage.cost_usd > 0


def ledger_upserts(rows: str) -> str:
    """Return WITH-clause upserts (PostgreSQL) adding ``:total_tokens`` and ``:cost_usd`` to the ledger.

    ``rows`` is a query of the ``user_id`` and ``api_key_id`` to add to; the windows are the
    parameters ``:minute_start`` and ``:day_start`` (``UsageWindows``).
    """
    return ", ".join(
        f"{table}_added AS (INSERT INTO {table} (user_id, api_key_id, {column}, tokens, cost_usd)"
        f" SELECT user_id, api_key_id, :{column}, :total_tokens, :cost_usd FROM {rows}"
        f"{_ADD_ON_CONFLICT[table]})"
        for table, column, _ in _LEDGERS
    )


_ADD_ON_CONFLICT = {
    table: f" ON CONFLICT (user_id, {column}, api_key_id) DO UPDATE SET tokens = {table}.tokens"
    f" + excluded.tokens, cost_usd = {table}.cost_usd + excluded.cost_usd"
    for table, column, _ in _LEDGERS
}


def _prune_statement(
    dialect: Dialect,
    table: str,
    column: str,
    kept: datetime.timedelta,
    user_id: str,
    start: datetime.datetime,
) -> tuple[str, tuple[object, ...]]:
    return (
        f"DELETE FROM {table} WHERE user_id = ? AND {column} < ?",
        (user_id, dialect.encode_time(start - kept)),
    )


class UsageQueries:
    """Reads of the usage ledger for the budgets."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def budget_usage(self, user_id: str, api_key_id: str, now: datetime.datetime) -> BudgetUsage:
        """Return the user's tier, the key's budgets and the usage of both in the windows of ``now``."""
        windows = UsageWindows.at(now)
        dialect = self._db.dialect
        row = await self._db.fetch_one(
            _BUDGET_USAGE,
            {
                "user": user_id,
                "key": api_key_id,
                "minute": dialect.encode_time(windows.minute_start),
                "day": dialect.encode_time(windows.day_start),
            },
        )
        return BudgetUsage(
            tier=row["tier"],
            # PostgreSQL sums bigints as numeric.
            user_tokens=int(row["user_tokens"]),
            user_cost=float(row["user_cost"]),
            key_tokens=int(row["key_tokens"]),
            key_cost=float(row["key_cost"]),
            key_tokens_per_minute=row["key_tokens_per_minute"],
            key_usd_per_day=row["key_usd_per_day"],
        )

    async def key_usage(self, user_id: str, now: datetime.datetime) -> dict[str, tuple[int, float]]:
        """Return each of the user's keys' tokens this minute and cost today ('' for no key)."""
        windows = UsageWindows.at(now)
        dialect = self._db.dialect
        rows = await self._db.fetch_all(
            "SELECT 'minute' AS span, api_key_id, tokens, cost_usd FROM usage_minutes"
            " WHERE user_id = :user AND minute_start = :minute"
            " UNION ALL SELECT 'day' AS span, api_key_id, tokens, cost_usd FROM usage_days"
            " WHERE user_id = :user AND day_start = :day",
            {
                "user": user_id,
                "minute": dialect.encode_time(windows.minute_start),
                "day": dialect.encode_time(windows.day_start),
            },
        )
        usage: dict[str, tuple[int, float]] = {}
        for row in rows:
            tokens, cost = usage.get(row["api_key_id"], (0, 0.0))
            if row["span"] == "minute":
                tokens = int(row["tokens"])
            else:
                cost = float(row["cost_usd"])
            usage[row["api_key_id"]] = (tokens, cost)
        return usage
