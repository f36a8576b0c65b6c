"""The rules of schedules: cron expressions, time zones, the shortest interval and the next tick.

Pure functions of their arguments (no clock, no store), so each rule is tested on its own. Cron
expressions have five fields, or six with seconds last (croniter's form); ticks are computed in
the schedule's IANA time zone and returned as aware UTC times.

croniter's random (``R``) and hashed (``H``) tokens are refused: croniter picks their value anew
each time it reads the expression, so the ticks the interval check sees are not the ones that
fire (``R * * * *`` passes as hourly and then fires at random minutes, about every 31 seconds on
average). An expression croniter accepts but for which it finds no date (``0 0 30 2 *``) is an
InvalidArgumentError too, wherever a tick is computed.
"""

import datetime
import itertools
import re
import zoneinfo

from croniter import croniter

from orchestrator.errors import InvalidArgumentError

MAX_CRON_CHARACTERS = 256
MAX_NAME_CHARACTERS = 200
MAX_DESCRIPTION_CHARACTERS = 2000
# How many consecutive gaps between ticks are checked against the shortest interval allowed: enough
# to see every wrap of a field's list or step (``*/7`` minutes gives 4 minutes at each hour).
INTERVAL_SAMPLES = 64
FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week", "second")
# Month and weekday names may hold an R or an H (mar, apr, fri, thu): they are removed before the
# random and hashed tokens are looked for.
_NAMES = re.compile(
    r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat", re.IGNORECASE
)
_RANDOM_OR_HASHED = re.compile(r"[RH]", re.IGNORECASE)
# What croniter raises for an expression it cannot compute a tick of (CroniterBadDateError is a
# ValueError); KeyError and OverflowError come from its date arithmetic on unusual fields.
_CRONITER_ERRORS = (ValueError, KeyError, OverflowError)
NO_DATE_MESSAGE = "cron_expression matches no date (such as day 30 of February)"


def check_timezone(name: str) -> zoneinfo.ZoneInfo:
    """Return the IANA zone of this name; raise InvalidArgumentError for anything else."""
    message = "timezone must be an IANA time zone name such as UTC or Europe/Paris"
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise InvalidArgumentError("timezone", message)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidArgumentError("timezone", message) from None


def check_cron(expression: str) -> str:
    """Return the expression trimmed when croniter accepts it; raise InvalidArgumentError otherwise."""
    value = " ".join(expression.split())
    fields = value.split(" ") if value else []
    if not value or len(value) > MAX_CRON_CHARACTERS or len(fields) not in (5, 6):
        raise InvalidArgumentError(
            "cron_expression", "cron_expression must be a cron expression of 5 fields (6 with seconds)"
        )
    check_fixed_times(fields)
    if not croniter.is_valid(value):
        raise InvalidArgumentError(
            "cron_expression", "cron_expression must be a cron expression of 5 fields (6 with seconds)"
        )
    return value


def check_fixed_times(fields: list[str]) -> None:
    """Raise InvalidArgumentError naming the first random (R) or hashed (H) token of the fields."""
    for name, field in zip(FIELD_NAMES, fields, strict=False):
        for token in field.split(","):
            if _RANDOM_OR_HASHED.search(_NAMES.sub("", token)):
                raise InvalidArgumentError(
                    "cron_expression",
                    f"cron_expression must not use a random (R) or hashed (H) token: {token!r} in the"
                    f" {name} field picks its time anew at every run",
                )


def next_tick(expression: str, zone: zoneinfo.ZoneInfo, after: datetime.datetime) -> datetime.datetime:
    """Return the first tick strictly after ``after``, computed in ``zone``, as a UTC time.

    InvalidArgumentError when croniter finds no such tick.
    """
    start = after.astimezone(zone)
    try:
        tick = croniter(expression, start).get_next(datetime.datetime)
    except _CRONITER_ERRORS:
        raise InvalidArgumentError("cron_expression", NO_DATE_MESSAGE) from None
    return tick.astimezone(datetime.UTC)


def shortest_interval(expression: str, zone: zoneinfo.ZoneInfo, after: datetime.datetime) -> float:
    """Return the shortest gap, in seconds, between consecutive ticks over the next ones.

    InvalidArgumentError when croniter finds no tick (or not enough of them).
    """
    try:
        iterator = croniter(expression, after.astimezone(zone))
        ticks = [iterator.get_next(datetime.datetime) for _ in range(INTERVAL_SAMPLES + 1)]
    except _CRONITER_ERRORS:
        raise InvalidArgumentError("cron_expression", NO_DATE_MESSAGE) from None
    return min((later - earlier).total_seconds() for earlier, later in itertools.pairwise(ticks))


def check_interval(
    expression: str, zone: zoneinfo.ZoneInfo, after: datetime.datetime, min_seconds: int
) -> None:
    """Raise InvalidArgumentError when two ticks come closer than ``min_seconds`` apart."""
    if shortest_interval(expression, zone, after) < min_seconds:
        raise InvalidArgumentError(
            "cron_expression", f"cron_expression must not run more often than every {min_seconds} seconds"
        )


def next_after_due(
    expression: str, zone: zoneinfo.ZoneInfo, due: datetime.datetime, now: datetime.datetime
) -> datetime.datetime:
    """Return the tick to wait for once the run due at ``due`` fires at ``now``.

    Ticks missed while nothing ran are skipped: the due run fires once, and the next one is the
    first tick after now, not after ``due``.
    """
    return next_tick(expression, zone, max(due, now))


def check_text(field: str, value: str, max_characters: int, required: bool) -> str:
    """Return a name or description trimmed; raise InvalidArgumentError when empty or too long."""
    text = value.strip()
    if (required and not text) or len(text) > max_characters:
        low = 1 if required else 0
        raise InvalidArgumentError(field, f"{field} must be {low}..{max_characters} characters")
    return text


def check_budget(value: float | None) -> float | None:
    """Return a budget per run in USD when positive and finite (None means no budget)."""
    if value is None:
        return None
    if not 0 < value < 1e9:
        raise InvalidArgumentError("max_budget_per_run_usd", "max_budget_per_run_usd must be greater than 0")
    return value
