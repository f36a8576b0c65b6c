"""Structured logging for both services: one JSON object per line on stderr."""

import json
import logging
import sys
import time

# Attributes every LogRecord has; anything else on a record came in through ``extra=`` and is a field.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
# One encoder for every line: ``json.dumps`` with arguments builds a new one each call (4x the cost).
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """Format a record as ``{"time", "level", "logger", "message", ...fields}`` on one line."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON."""
        entry = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)

    def _time(self, created: float) -> str:
        """Return a record's time as ``2026-01-02T03:04:05.678Z``, reusing the text of its second."""
        second = int(created)
        microseconds = round((created - second) * 1_000_000)  # as datetime.fromtimestamp rounds
        if microseconds == 1_000_000:
            second, microseconds = second + 1, 0
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{microseconds // 1000:03d}Z"


def configure_logging(level: str, quiet_loggers: tuple[str, ...] = ()) -> None:
    """Send every logger's records to stderr as JSON lines at ``level``.

    ``quiet_loggers`` are libraries' loggers held at WARNING or above (their INFO lines repeat ours).
    The records keep their process and thread fields: no JSON line shows them, but gunicorn's own
    log lines do (``[%(process)d]``), and a record without them fails to format there.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in quiet_loggers:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
