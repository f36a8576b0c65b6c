"""Consecutive failed logins per email, and the refusal they started (migration 0015).

An email is stored only as its SHA-256 (``email_hash``): the table also holds emails that have no
account, typed by whoever tried them, and keeps neither them nor which of them are accounts.
Times come from the database's clock (``dialect.now()``), which every replica shares, so every
replica refuses the same email for the same time. A failure is counted in one transaction that
holds the email's row (the upsert takes it on PostgreSQL; SQLite's single writer serialises it),
so concurrent failures are each counted and the last one sets the longest refusal.
"""

import datetime

from orchestrator.domain.login_throttle import FORGET_AFTER_SECONDS
from orchestrator.domain.login_throttle import LoginBackoff
from orchestrator.domain.login_throttle import LoginFailure
from orchestrator.store.database import Database
from orchestrator.store.rows import stored_time


class LoginFailureQueries:
    """Counts failed logins per email hash, refuses for a while, forgets on success or with time."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def login_refusal_seconds(self, email_hash: str) -> float:
        """Return how long logins for this email are still refused (0.0: not refused)."""
        clock = self._db.dialect.now()
        row = await self._db.fetch_one(
            f"SELECT blocked_until, {clock} AS clock FROM login_failures WHERE email_hash = ?", (email_hash,)
        )
        if row is None or row["blocked_until"] is None:
            return 0.0
        remaining = _seconds_between(stored_time(row["clock"]), stored_time(row["blocked_until"]))
        return max(remaining, 0.0)

    async def record_login_failure(self, email_hash: str, backoff: LoginBackoff) -> LoginFailure:
        """Count one more consecutive failure and refuse the email for the delay it has reached."""
        dialect = self._db.dialect
        async with self._db.transaction() as transaction:
            failures = await transaction.fetch_value(
                "INSERT INTO login_failures (email_hash, failures, last_failure_at)"
                f" VALUES (:key, 1, {dialect.now()}) ON CONFLICT (email_hash) DO UPDATE SET"
                " failures = CASE WHEN login_failures.last_failure_at <"
                f" {dialect.seconds_from_now('forget')} THEN 1 ELSE login_failures.failures + 1 END,"
                f" last_failure_at = {dialect.now()} RETURNING failures",
                {"key": email_hash, "forget": -FORGET_AFTER_SECONDS},
            )
            delay = backoff.delay_after(failures)
            if delay > 0:
                await transaction.execute(
                    f"UPDATE login_failures SET blocked_until = {dialect.seconds_from_now('delay')}"
                    " WHERE email_hash = :key",
                    {"key": email_hash, "delay": delay},
                )
        return LoginFailure(failures=failures, refused_seconds=delay)

    async def clear_login_failures(self, email_hash: str) -> None:
        """Forget an email's failures (its login succeeded)."""
        await self._db.execute("DELETE FROM login_failures WHERE email_hash = ?", (email_hash,))

    async def forget_login_failures(self) -> int:
        """Delete the emails whose last failure is older than the forgetting time; return how many."""
        day_ago = self._db.dialect.seconds_from_now("forget")
        return await self._db.execute(
            f"DELETE FROM login_failures WHERE last_failure_at < {day_ago}", {"forget": -FORGET_AFTER_SECONDS}
        )


def _seconds_between(start: datetime.datetime | None, end: datetime.datetime | None) -> float:
    if start is None or end is None:
        return 0.0
    return (end - start).total_seconds()
