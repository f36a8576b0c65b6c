"""A log line is one JSON object: time (RFC 3339, UTC, milliseconds), level, logger, message, fields."""

import datetime
import json
import logging

import pytest

from taskgate.json_logging import JsonFormatter
from taskgate.rfc3339 import format_datetime


def record(created: float, **fields: object) -> logging.LogRecord:
    entry = logging.LogRecord("orchestrator.rpc", logging.INFO, __file__, 0, "rpc %s", ("done",), None)
    entry.created = created
    entry.__dict__.update(fields)
    return entry


@pytest.mark.parametrize(
    "created", [1_796_357_000.0, 1_796_357_000.5084, 1_796_357_000.9999996, 1_796_357_059.0004]
)
def test_the_time_is_the_records_in_rfc3339_with_milliseconds(created: float) -> None:
    line = JsonFormatter().format(record(created))
    assert json.loads(line)["time"] == format_datetime(datetime.datetime.fromtimestamp(created, datetime.UTC))


def test_one_formatter_formats_every_second_of_its_records() -> None:
    formatter = JsonFormatter()
    times = [json.loads(formatter.format(record(1_796_357_000 + step * 0.6)))["time"] for step in range(4)]
    assert times == [
        "2026-12-04T04:03:20.000Z",
        "2026-12-04T04:03:20.600Z",
        "2026-12-04T04:03:21.200Z",
        "2026-12-04T04:03:21.800Z",
    ]


def test_fields_given_as_extra_follow_the_standard_ones_and_nothing_else_shows() -> None:
    when = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC)
    line = JsonFormatter().format(record(1_796_357_000.25, rpc="/x.Y/Z", code="OK", at=when, note="é"))
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2026-12-04T04:03:20.250Z",
        "level": "INFO",
        "logger": "orchestrator.rpc",
        "message": "rpc done",
        "rpc": "/x.Y/Z",
        "code": "OK",
        "at": str(when),
        "note": "é",
    }
    assert '"code": "OK"' in line and "é" in line
