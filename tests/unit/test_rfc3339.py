"""The one time format of the API."""

import datetime

from taskgate.rfc3339 import format_datetime
from taskgate.rfc3339 import parse_datetime


def test_formats_utc_with_milliseconds_and_z():
    value = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)

    assert format_datetime(value) == "2026-01-02T03:04:05.678Z"


def test_converts_other_zones_to_utc_and_round_trips():
    value = datetime.datetime(2026, 1, 2, 5, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))

    text = format_datetime(value)

    assert text == "2026-01-02T03:04:05.000Z"
    assert parse_datetime(text) == value


def test_none_stays_none():
    assert format_datetime(None) is None
