"""The task feed: each caller's task changes, replayed from the store then live, without gap or duplicate.

The store records every change a dashboard shows (``store/task_changes.py``, written by triggers).
Whoever serves streams - the orchestrator's admin server or a stream process - runs one
``TaskFeed``: while anyone watches, one poller reads the changes numbered since its last read,
every ``POLL_SECONDS``, and hands each to its caller's watchers. However many watchers and callers
there are, that is one query a poll (two on PostgreSQL, which numbers committed changes first). A
watcher registers with the poller, then replays the changes it missed from the store, then takes
the live ones it has not seen: the hand-over loses nothing, because the poller's starting point is
read before any replay starts, and every change numbered later reaches every registered watcher.

A watcher that falls ``buffer`` changes behind drops what it holds and reads again from the store,
so a slow client costs its own reads, never a lost change.
"""

import asyncio
import collections
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import AsyncIterator

from orchestrator.domain.task_changes import TaskChange
from orchestrator.store.base import Store
from taskgate.rfc3339 import utc_now

logger = logging.getLogger(__name__)

#: How often the poller looks for new changes while anyone watches: a change reaches a dashboard
#: within this (plus a database read), and an idle feed costs one cheap indexed read this often.
POLL_SECONDS = 0.25
#: Changes one read takes; a poll that fills it reads again at once.
PAGE_SIZE = 500
#: How long changes are kept for a watcher to resume after (the contract promises 24 hours).
RETENTION = datetime.timedelta(hours=25)
PRUNE_EVERY_SECONDS = 600.0
_RETRY_MAX_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class FeedStart:
    """Where a feed opened without a resume point starts: the changes after ``change_id`` follow."""

    change_id: int


class _Watcher:
    """One watcher's live changes: a deque and one waiter, as bus subscriptions are."""

    def __init__(self, buffer: int) -> None:
        self.changes: collections.deque[TaskChange] = collections.deque()
        self.behind = False
        self.ended = False
        self._buffer = buffer
        self._waiter: asyncio.Future[None] | None = None

    def put(self, change: TaskChange) -> None:
        if self.behind:
            return
        if len(self.changes) >= self._buffer:
            self.changes.clear()
            self.behind = True
        else:
            self.changes.append(change)
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def end(self) -> None:
        """End the watch: a pending wait returns, and the follower stops."""
        self.ended = True
        self.wake()

    async def wait(self, seconds: float) -> None:
        """Return when a change arrives, the watch ends, or ``seconds`` pass."""
        if self.changes or self.behind or self.ended:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(seconds):
                await self._waiter
        except TimeoutError:
            pass
        finally:
            self._waiter = None


class TaskFeed:
    """Every caller's task changes, read by one poller while anyone watches."""

    def __init__(self, store: Store, buffer: int = 1000, poll_seconds: float = POLL_SECONDS) -> None:
        self._store = store
        self._buffer = buffer
        self._poll_seconds = poll_seconds
        self._watchers: dict[str, set[_Watcher]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None

    @property
    def watcher_count(self) -> int:
        """How many watchers are registered."""
        return sum(len(watchers) for watchers in self._watchers.values())

    def follow(self, user_id: str, after_id: int | None, idle_seconds: float) -> "FeedFollower":
        """Follow the caller's changes numbered above ``after_id`` (None: from now); see FeedFollower."""
        return FeedFollower(self, user_id, after_id, idle_seconds)

    def end_all(self) -> None:
        """End every watch (the server is stopping): each stream ends at once, its client resumes later."""
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.end()

    async def _follow(
        self, watcher: _Watcher, user_id: str, after_id: int | None, idle_seconds: float
    ) -> AsyncIterator[TaskChange | FeedStart | None]:
        self._watchers.setdefault(user_id, set()).add(watcher)
        try:
            started = self._start_poller()
            while not started.done():
                # The store may be away: the stream stays open, with pings, until the poller starts.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(idle_seconds):
                        await asyncio.shield(started)
                if watcher.ended:
                    return
                if not started.done():
                    yield None
            if after_id is None:
                # Read after registering: every change numbered later reaches this watcher live.
                # Changes committed before now are numbered first, so none of them counts as new.
                await self._store.number_pending_task_changes()
                after_id = await self._store.last_task_change_id()
                yield FeedStart(after_id)
            last_id = after_id
            while not watcher.ended:
                watcher.behind = False
                async for change in self._stored(user_id, last_id):
                    last_id = change.change_id
                    yield change
                while not watcher.behind:
                    await watcher.wait(idle_seconds)
                    if watcher.ended:
                        return
                    if not watcher.changes and not watcher.behind:
                        yield None
                        continue
                    while watcher.changes:
                        change = watcher.changes.popleft()
                        if change.change_id > last_id:
                            last_id = change.change_id
                            yield change
        finally:
            watchers = self._watchers.get(user_id)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[user_id]

    async def _stored(self, user_id: str, after_id: int) -> AsyncIterator[TaskChange]:
        while True:
            page = await self._store.list_user_task_changes(user_id, after_id, PAGE_SIZE)
            for change in page:
                after_id = change.change_id
                yield change
            if len(page) < PAGE_SIZE:
                return

    def _start_poller(self) -> asyncio.Future[None]:
        """Start the poller unless it runs; return what is done once it has read its starting point."""
        if self._poller is None or self._poller.done():
            loop = asyncio.get_running_loop()
            self._started = loop.create_future()
            self._poller = loop.create_task(self._poll(self._started), name="task-feed")
        assert self._started is not None
        return self._started

    async def _poll(self, started: asyncio.Future[None]) -> None:
        """Read the changes numbered since the last read and hand them out, until nobody watches."""
        delay = self._poll_seconds
        last_id: int | None = None
        while True:
            try:
                if last_id is None:
                    # Read before any watcher replays: whatever is numbered later comes live.
                    last_id = await self._store.last_task_change_id()
                    started.set_result(None)
                await self._store.number_pending_task_changes()
                while True:
                    page = await self._store.list_task_changes(last_id, PAGE_SIZE)
                    for change in page:
                        last_id = change.change_id
                        for watcher in self._watchers.get(change.user_id, ()):
                            watcher.put(change)
                    if len(page) < PAGE_SIZE:
                        break
                delay = self._poll_seconds
            except asyncio.CancelledError:
                raise
            except Exception as ex:
                # The store is away: watchers wait (with pings) and get every change once it is back.
                logger.warning(
                    "reading the task feed failed; retrying", extra={"error_type": type(ex).__name__}
                )
                delay = min(delay * 2, _RETRY_MAX_SECONDS)
            if not self._watchers:
                if not started.done():
                    started.cancel()
                return
            await asyncio.sleep(delay)

    async def close(self) -> None:
        """Stop the poller (watchers still open end with their connections)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None


class FeedFollower:
    """One watcher of a caller's feed: ``changes()`` yields them, ``stop()`` ends it from outside.

    ``changes()`` yields the changes numbered above ``after_id``, stored then live, and None
    whenever none came for ``idle_seconds`` (a stream's cue for a ping). Without ``after_id`` the
    feed starts now: the first item is the ``FeedStart`` position, then the changes after it.
    It ends when ``stop()`` is called (the client left) or the feed ends every watch.
    """

    def __init__(self, feed: TaskFeed, user_id: str, after_id: int | None, idle_seconds: float) -> None:
        self._feed = feed
        self._watcher = _Watcher(feed._buffer)
        self._user_id = user_id
        self._after_id = after_id
        self._idle_seconds = idle_seconds

    def stop(self) -> None:
        """End the follow at once, even while it waits for the next change."""
        self._watcher.end()

    def changes(self) -> AsyncIterator[TaskChange | FeedStart | None]:
        """Return the changes; see the class docstring."""
        return self._feed._follow(self._watcher, self._user_id, self._after_id, self._idle_seconds)


async def prune_task_changes_forever(store: Store, every_seconds: float = PRUNE_EVERY_SECONDS) -> None:
    """Delete changes older than ``RETENTION`` every ``every_seconds``, until cancelled."""
    while True:
        try:
            removed = await store.prune_task_changes(utc_now() - RETENTION)
            if removed:
                logger.info("task feed pruned", extra={"removed": removed})
        except Exception as ex:
            logger.warning("pruning the task feed failed", extra={"error_type": type(ex).__name__})
        await asyncio.sleep(every_seconds)
