"""What the admin server's streams are doing, served as Prometheus text on ``GET /metrics``.

The orchestrator is one process, so it keeps its own registry (no multiprocess directory). The
counts let an operator (and the tests) see that a client who leaves frees its stream and its bus
subscription within seconds, and how often watchers are cut off for falling behind.
"""

import contextlib
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import generate_latest

# Why a watcher was cut off: its buffer of live events filled (it read too slowly), or a write to
# it made no progress for the write timeout (it stopped reading altogether).
FELL_BEHIND = "fell_behind"
WRITE_STALLED = "write_stalled"


class StreamMetrics:
    """Open streams by transport (``sse``, ``ws``, ``feed``), cut-offs by reason, live bus subscriptions."""

    def __init__(self, watcher_count: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self._open = Gauge(
            "taskgate_admin_open_streams",
            "Event streams the admin server is serving right now, by transport.",
            ["transport"],
            registry=self.registry,
        )
        self._cutoffs = Counter(
            "taskgate_admin_stream_cutoffs_total",
            "Watchers disconnected by the server: fell_behind (buffer full) or write_stalled.",
            ["reason"],
            registry=self.registry,
        )
        watchers = Gauge(
            "taskgate_bus_subscriptions",
            "Live event subscriptions open on this orchestrator.",
            registry=self.registry,
        )
        watchers.set_function(watcher_count)
        for transport in ("sse", "ws", "feed"):
            self._open.labels(transport)
        for reason in (FELL_BEHIND, WRITE_STALLED):
            self._cutoffs.labels(reason)

    @contextlib.contextmanager
    def stream_open(self, transport: str) -> Iterator[None]:
        """Count a stream as open for as long as the block runs."""
        gauge = self._open.labels(transport)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def cut_off(self, reason: str) -> None:
        """Count a watcher the server disconnected, by reason (FELL_BEHIND or WRITE_STALLED)."""
        self._cutoffs.labels(reason).inc()

    def exposition(self) -> bytes:
        """Return the Prometheus text exposition of these metrics."""
        return generate_latest(self.registry)


async def counted(body: AsyncIterator[bytes], metrics: StreamMetrics, transport: str) -> AsyncIterator[bytes]:
    """Yield a stream's body while counting it as open."""
    with metrics.stream_open(transport):
        async with contextlib.aclosing(body):
            async for chunk in body:
                yield chunk
