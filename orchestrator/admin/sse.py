"""The body of an SSE response: retry hint, event frames, idle pings, and a prompt end on disconnect."""

import asyncio
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable

from orchestrator.events import overflow_frame
from orchestrator.streaming import EventFollower
from orchestrator.streaming import StreamOverflowError

RETRY_FRAME = b"retry: 3000\n\n"
PING_FRAME = b": ping\n\n"


async def sse_body(
    follower: EventFollower,
    wait_for_disconnect: Callable[[], Awaitable[None]],
    on_overflow: Callable[[], None] = lambda: None,
) -> AsyncIterator[bytes]:
    """Yield the retry hint, then each event's cached frame, with a ping whenever the stream idles.

    One task per stream waits for the client to leave and stops the follower, which ends the
    stream at once (closing its bus subscription) rather than at the next event or ping. A watcher
    cut off for falling behind gets a final error frame with its resume point.
    """
    yield RETRY_FRAME
    watcher = asyncio.ensure_future(wait_for_disconnect())
    watcher.add_done_callback(lambda _: follower.stop())
    events = follower.events()
    try:
        async for event in events:
            yield PING_FRAME if event is None else event.sse_frame()
    except StreamOverflowError as ex:
        on_overflow()
        yield overflow_frame(ex.last_seq)
    finally:
        watcher.cancel()
        await events.aclose()
