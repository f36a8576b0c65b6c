"""What differs between SQLite and PostgreSQL, in one place; every query is written once, for both.

Queries are written with ``?`` (positional) or ``:name`` (named) parameters, which SQLite reads
as they are; for PostgreSQL each statement is translated once to psycopg's ``%s`` and
``%(name)s`` and cached. Beyond that the two differ only in what a ``Dialect`` answers: how a time
is stored, which error a duplicate key raises, the column that keeps insertion order, row locks,
advisory locks, the clock leases are measured by, and how emails are compared.
"""

import datetime
import functools
import re
import sqlite3
from typing import Any

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# A quoted string or identifier, a cast (``::``), a named parameter, ``?`` or a literal ``%``.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|:([A-Za-z_]\w*)|\?|%")

_PYFORMAT = {"?": "%s", "%": "%%"}

#: The SQLite function that reads the clock leases are measured by (registered on each connection).
SQLITE_CLOCK_FUNCTION = "taskgate_now"


def encode_text_time(value: datetime.datetime | None) -> str | None:
    """Return the stored form of a time in SQLite: fixed-width UTC text, so text order is time order."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use aware UTC times")
    return _fixed_width_utc(value.astimezone(datetime.UTC))


def _fixed_width_utc(value: datetime.datetime) -> str:
    """Return a UTC time as ``TIME_FORMAT`` text (isoformat writes it several times faster than strftime)."""
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def sqlite_clock(seconds_from_now: float = 0.0) -> str:
    """Return the stored form of now plus some seconds: the clock of SQLite's leases."""
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds_from_now)
    return _fixed_width_utc(later)


class Dialect:
    """The small differences between the databases; the base class is the SQLite answer."""

    name = "sqlite"
    #: The column that numbers rows in insertion order, for stable tie-breaks.
    insertion_order = "rowid"
    #: Appended to a SELECT that must lock its rows for the rest of the transaction.
    for_update = ""
    #: Appended to a SELECT that picks rows to claim: locks them and skips rows others hold.
    for_update_skip_locked = ""
    #: Appended to a SELECT of rows about to be updated (no key changed): locks them, skipping rows
    #: others hold.
    for_no_key_update_skip_locked = ""
    #: Appended to a SELECT whose rows must not be deleted or re-keyed, nor picked ``FOR UPDATE``,
    #: until its transaction ends, while plain updates of them go on.
    for_key_share = ""
    #: An expression of ``INSERT … ON CONFLICT DO UPDATE … RETURNING``, true for a row it inserted
    #: rather than updated; None where there is none (SQLite's one writer reads the rest cheaply).
    inserted_by_upsert: str | None = None
    #: Whether a WITH clause may hold INSERT, UPDATE and DELETE (PostgreSQL): a change of several
    #: tables can then be one statement, atomic on its own, one round trip.
    writes_in_with = False
    #: Appended to an ORDER BY term so text sorts by code point on both databases.
    binary_collation = ""
    #: The exception a duplicate primary or unique key raises.
    unique_violation: type[Exception] = sqlite3.IntegrityError
    #: The literal false in a condition that must match a partial index on a boolean column
    #: (SQLite's are written ``= 0``; PostgreSQL reads ``= false`` as the ``NOT column`` of its own).
    false = "0"

    def translate(self, sql: str) -> str:
        """Return a statement in the driver's parameter style."""
        return sql

    def encode_time(self, value: datetime.datetime | None) -> Any:
        """Return a time as the database stores it."""
        return encode_text_time(value)

    def now(self) -> str:
        """SQL for the current time of the clock leases use (every replica shares it)."""
        return f"{SQLITE_CLOCK_FUNCTION}(0)"

    def seconds_from_now(self, parameter: str) -> str:
        """SQL for the time a number of seconds (the parameter named) after ``now()``."""
        return f"{SQLITE_CLOCK_FUNCTION}(:{parameter})"

    def for_update_skip_locked_of(self, table: str) -> str:
        """Appended to a SELECT of joined rows that picks rows of one table (its alias) to claim."""
        return ""

    def email_equals(self, parameter: str) -> str:
        """SQL comparing ``email`` with a parameter, case-insensitively (the column is NOCASE)."""
        return f"email = :{parameter}"

    def advisory_lock(self) -> str | None:
        """SQL locking a name (one text parameter) until the transaction ends; None: writes are serial."""
        return None

    def lock_table_writes(self, table: str) -> str | None:
        """SQL making other writers of a table wait until the transaction ends; None: writes are serial."""
        return None

    def byte_length(self, expression: str) -> str:
        """SQL for the length in UTF-8 bytes of a text (or JSON) expression."""
        return f"length(CAST(({expression}) AS BLOB))"

    def utc_date(self, column: str) -> str:
        """SQL for the UTC date (``YYYY-MM-DD`` text) of a stored time: its text's first ten characters."""
        return f"substr({column}, 1, 10)"

    def later_of(self, first: str, second: str) -> str:
        """SQL for the later of two times (SQLite's text times sort as times)."""
        return f"max({first}, {second})"


class PostgresDialect(Dialect):
    """PostgreSQL: native times, identity columns, row locks and the database's own clock."""

    name = "postgres"
    insertion_order = "position"
    for_update = " FOR UPDATE"
    for_update_skip_locked = " FOR UPDATE SKIP LOCKED"
    for_no_key_update_skip_locked = " FOR NO KEY UPDATE SKIP LOCKED"
    for_key_share = " FOR KEY SHARE"
    inserted_by_upsert = "(xmax = 0)"
    writes_in_with = True
    binary_collation = ' COLLATE "C"'
    false = "false"

    def __init__(self) -> None:
        import psycopg  # Imported here: the embedded default starts without loading libpq.

        self.unique_violation = psycopg.errors.UniqueViolation

    def translate(self, sql: str) -> str:
        """Return a statement with psycopg's ``%s`` / ``%(name)s`` parameters (cached per statement)."""
        return _to_pyformat(sql)

    def encode_time(self, value: datetime.datetime | None) -> Any:
        """Return a time as the database stores it: a ``timestamptz`` takes the datetime itself."""
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use aware UTC times")
        return value

    def now(self) -> str:
        """SQL for the database's clock, which every replica shares."""
        return "now()"

    def seconds_from_now(self, parameter: str) -> str:
        """SQL for the time a number of seconds (the parameter named) after ``now()``."""
        return f"now() + make_interval(secs => :{parameter})"

    def for_update_skip_locked_of(self, table: str) -> str:
        """Lock the picked rows of one table of a join (the others are read only), skipping held rows."""
        return f" FOR UPDATE OF {table} SKIP LOCKED"

    def email_equals(self, parameter: str) -> str:
        """SQL comparing ``email`` with a parameter, case-insensitively (as its unique index does)."""
        return f"lower(email) = lower(:{parameter})"

    def later_of(self, first: str, second: str) -> str:
        """SQL for the later of two times."""
        return f"greatest({first}, {second})"

    def utc_date(self, column: str) -> str:
        """SQL for the UTC date (``YYYY-MM-DD`` text) of a ``timestamptz``."""
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def advisory_lock(self) -> str | None:
        """SQL taking a transaction-scoped advisory lock named by one text parameter."""
        return "SELECT pg_advisory_xact_lock(hashtext(?))"

    def lock_table_writes(self, table: str) -> str | None:
        """SQL making other writers of a table, and other such locks of it, wait; reads go on."""
        return f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"

    def byte_length(self, expression: str) -> str:
        """SQL for the length in UTF-8 bytes of a text (or JSON) expression."""
        return f"octet_length(({expression})::text)"


@functools.lru_cache(maxsize=1024)
def _to_pyformat(sql: str) -> str:
    def replace(match: re.Match) -> str:
        if match.group(1):
            return f"%({match.group(1)})s"
        return _PYFORMAT.get(match.group(0), match.group(0))

    return _TOKEN.sub(replace, sql)
