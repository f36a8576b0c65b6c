"""Structured logging for both services: one JSON object per line on stderr."""

import datetime
import json
import logging
import sys

from taskgate.rfc3339 import format_datetime

# Attributes every LogRecord has; anything else on a record came in through ``extra=`` and is a field.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Format a record as ``{"time", "level", "logger", "message", ...fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON."""
        entry = {
            "time": format_datetime(datetime.datetime.fromtimestamp(record.created, datetime.UTC)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str, quiet_loggers: tuple[str, ...] = ()) -> None:
    """Send every logger's records to stderr as JSON lines at ``level``.

    ``quiet_loggers`` are libraries' loggers held at WARNING or above (their INFO lines repeat ours).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in quiet_loggers:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
