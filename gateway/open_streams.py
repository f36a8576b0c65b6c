"""The event streams a worker relays (SSE and WebSocket), so that a stopping worker can end them all.

A relay registers itself when it opens and leaves when it closes; ``end_open_streams`` asks each to
end (``end()``: shut its upstream socket down, so the relay sees the end at once). Their clients see
the stream end and reconnect with Last-Event-ID to another worker or gateway, losing nothing.
"""

import weakref
from typing import Protocol


class EndableStream(Protocol):
    """A relay that can be ended from outside."""

    def end(self) -> None:
        """End the stream: the relay's wait on upstream returns at once, and its response finishes."""


_open: "weakref.WeakSet[EndableStream]" = weakref.WeakSet()


def opened(stream: EndableStream) -> None:
    """Note a stream as open."""
    _open.add(stream)


def closed(stream: EndableStream) -> None:
    """Note a stream as closed."""
    _open.discard(stream)


def end_open_streams() -> int:
    """End every stream this process relays; return how many."""
    streams = list(_open)
    for stream in streams:
        stream.end()
    return len(streams)
