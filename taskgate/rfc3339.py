"""RFC 3339 UTC time strings, the one format the API uses for times."""

import datetime


def format_datetime(value: datetime.datetime | None) -> str | None:
    """Return ``2026-01-02T03:04:05.678Z`` for an aware or UTC-naive datetime, None for None."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def parse_datetime(text: str) -> datetime.datetime:
    """Parse an RFC 3339 string into an aware UTC datetime."""
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def utc_now() -> datetime.datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.datetime.now(datetime.UTC)
