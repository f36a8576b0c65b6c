"""The body of an SSE response: retry hint, event frames, idle pings, and a prompt end on disconnect."""

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable

from orchestrator.events import Event
from orchestrator.events import overflow_frame
from orchestrator.streaming import StreamOverflowError

RETRY_FRAME = b"retry: 3000\n\n"
PING_FRAME = b": ping\n\n"


async def event_frames(
    events: AsyncIterator[Event], on_overflow: Callable[[], None] = lambda: None
) -> AsyncIterator[bytes]:
    """Yield each event's cached frame; a watcher cut off for falling behind gets a final error frame."""
    async with contextlib.aclosing(events):
        try:
            async for event in events:
                yield event.sse_frame()
        except StreamOverflowError as ex:
            on_overflow()
            yield overflow_frame(ex.last_seq)


async def sse_body(
    frames: AsyncGenerator[bytes, None],
    wait_for_disconnect: Callable[[], Awaitable[None]],
    ping_seconds: float,
) -> AsyncIterator[bytes]:
    """Yield the retry hint, then the frames, with a ping whenever the stream idles for ``ping_seconds``.

    The next frame is awaited in its own task, raced against the client disconnecting: a client
    that leaves ends the stream at once (closing its bus subscription), not at the next event.
    """
    yield RETRY_FRAME
    disconnect = asyncio.ensure_future(wait_for_disconnect())
    next_frame: asyncio.Task[bytes] | None = None
    try:
        while True:
            if next_frame is None:
                next_frame = asyncio.create_task(_next(frames))
            done, _ = await asyncio.wait(
                {next_frame, disconnect}, timeout=ping_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if disconnect in done:
                return
            if next_frame not in done:
                yield PING_FRAME
                continue
            try:
                frame = next_frame.result()
            except StopAsyncIteration:
                return
            next_frame = None
            yield frame
    finally:
        disconnect.cancel()
        if next_frame is not None:
            next_frame.cancel()
            await asyncio.gather(next_frame, return_exceptions=True)
        await frames.aclose()


async def _next(frames: AsyncGenerator[bytes, None]) -> bytes:
    return await anext(frames)
