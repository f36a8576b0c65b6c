"""The task feed's hand-over, catch-up and outage rules, against an in-memory list of changes."""

import asyncio
import contextlib
import datetime

from orchestrator.domain.task_changes import TaskChange
from orchestrator.task_feed import FeedStart
from orchestrator.task_feed import TaskFeed

AT = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


def change(change_id: int, user_id: str = "u-1") -> TaskChange:
    return TaskChange(
        change_id, user_id, f"task-{change_id}", "s1", "task.status", "RUNNING", 0.0, None, None, AT
    )


class ChangeList:
    """The four reads the feed makes, answered from a list; ``away`` makes them fail."""

    def __init__(self, *changes: TaskChange) -> None:
        self.changes = list(changes)
        self.away = False

    def add(self, *changes: TaskChange) -> None:
        self.changes.extend(changes)

    def _check(self) -> None:
        if self.away:
            raise OSError("database away")

    async def number_pending_task_changes(self) -> int:
        self._check()
        return 0

    async def last_task_change_id(self) -> int:
        self._check()
        return self.changes[-1].change_id if self.changes else 0

    async def list_task_changes(self, after_id: int, limit: int) -> list[TaskChange]:
        self._check()
        return [c for c in self.changes if c.change_id > after_id][:limit]

    async def list_user_task_changes(self, user_id: str, after_id: int, limit: int) -> list[TaskChange]:
        self._check()
        return [c for c in self.changes if c.user_id == user_id and c.change_id > after_id][:limit]


async def take(changes, count: int) -> list:
    """Read ``count`` items (changes or None pings) from a follow, with a generous bound."""
    taken = []
    async with asyncio.timeout(30):
        async for item in changes:
            taken.append(item)
            if len(taken) == count:
                return taken
    return taken


def ids(items) -> list[int]:
    return [item.change_id for item in items if item is not None]


def test_stored_changes_then_live_ones_each_once_in_order_and_only_the_callers():
    async def scenario():
        store = ChangeList(change(1), change(2, "u-2"), change(3))
        feed = TaskFeed(store, poll_seconds=0.01)
        follow = feed.follow("u-1", 1, idle_seconds=30).changes()
        first = await take(follow, 1)
        store.add(change(4), change(5, "u-2"), change(6))
        rest = await take(follow, 2)
        await follow.aclose()
        assert ids(first + rest) == [3, 4, 6]
        await feed.close()

    asyncio.run(scenario())


def test_a_watcher_that_falls_behind_catches_up_from_the_store_without_losing_any():
    async def scenario():
        store = ChangeList()
        feed = TaskFeed(store, buffer=2, poll_seconds=0.01)
        follow = feed.follow("u-1", 0, idle_seconds=0.05).changes()
        assert await take(follow, 1) == [None]  # Registered, nothing yet: a ping.
        store.add(*(change(n) for n in range(1, 11)))
        await asyncio.sleep(0.2)  # The poller hands out ten changes to a buffer of two.
        got = await take(follow, 10)
        await follow.aclose()
        assert ids(got) == list(range(1, 11))
        await feed.close()

    asyncio.run(scenario())


def test_while_the_store_is_away_the_feed_pings_then_delivers_once_it_is_back():
    async def scenario():
        store = ChangeList(change(1))
        store.away = True
        feed = TaskFeed(store, poll_seconds=0.01)
        follow = feed.follow("u-1", 0, idle_seconds=0.05).changes()
        assert await take(follow, 2) == [None, None]
        store.away = False
        got = [item for item in await take(follow, 3) if item is not None]
        await follow.aclose()
        assert ids(got)[:1] == [1]
        await feed.close()

    asyncio.run(scenario())


def test_the_poller_stops_when_the_last_watcher_leaves():
    async def scenario():
        feed = TaskFeed(ChangeList(change(1)), poll_seconds=0.01)
        follow = feed.follow("u-1", 0, idle_seconds=30).changes()
        assert ids(await take(follow, 1)) == [1]
        await follow.aclose()
        assert feed.watcher_count == 0
        poller = feed._poller
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while not poller.done():
                    await asyncio.sleep(0.01)
        assert poller.done()

    asyncio.run(scenario())


def test_without_a_resume_point_the_feed_starts_at_the_newest_change_then_follows():
    async def scenario():
        store = ChangeList(change(1), change(2))
        feed = TaskFeed(store, poll_seconds=0.01)
        follow = feed.follow("u-1", None, idle_seconds=30).changes()
        assert await take(follow, 1) == [FeedStart(2)]
        store.add(change(3))
        assert ids(await take(follow, 1)) == [3]
        await follow.aclose()
        await feed.close()

    asyncio.run(scenario())


def test_stop_and_end_all_end_a_follow_at_once_even_while_it_waits():
    async def scenario():
        feed = TaskFeed(ChangeList(change(1)), poll_seconds=0.01)
        stopped, ended = feed.follow("u-1", 0, idle_seconds=3600), feed.follow("u-2", 0, idle_seconds=3600)
        first, second = stopped.changes(), ended.changes()
        assert ids(await take(first, 1)) == [1]
        waiting = [asyncio.ensure_future(take(changes, 1)) for changes in (first, second)]
        await asyncio.sleep(0.05)
        stopped.stop()
        feed.end_all()
        assert await asyncio.gather(*waiting) == [[], []]  # Both ended with nothing more.
        assert feed.watcher_count == 0
        await feed.close()

    asyncio.run(scenario())
