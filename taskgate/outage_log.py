"""Logging that a shared backend is unreachable without a line per request, for both services."""

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

OUTAGE_LOG_INTERVAL_SECONDS = 60.0


class OutageLog:
    """Log that a shared backend is unreachable at most once per interval, counting what was skipped."""

    def __init__(
        self,
        message: str,
        interval_seconds: float = OUTAGE_LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._message = message
        self._interval = interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._suppressed = 0

    def record(self, ex: Exception) -> None:
        """Note one failure; write a warning if none was written in the last interval."""
        with self._lock:
            now = self._clock()
            if now < self._next_at:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
            self._next_at = now + self._interval
        logger.warning(self._message, extra={"error": str(ex), "suppressed": suppressed})
