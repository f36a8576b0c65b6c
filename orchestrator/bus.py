"""The event bus: fans published events out to the watchers of a workflow.

``EventBus`` is the interface; ``InProcessEventBus`` serves one orchestrator process. A bus over
Redis Streams replaces it when several replicas must see each other's events.
"""

import abc
import asyncio
import collections
import logging

from orchestrator.events import Event

logger = logging.getLogger(__name__)


class SubscriptionOverflowError(Exception):
    """The watcher fell further behind than its buffer allows and was cut off."""


class SubscriptionClosedError(Exception):
    """The subscription was closed (its watcher left) while or before waiting for an event."""


class Subscription(abc.ABC):
    """The live events of one workflow, in publication order, for one watcher."""

    __slots__ = ()

    @abc.abstractmethod
    async def next_event(self, timeout: float | None = None) -> Event | None:
        """Wait for the next event, or return None after ``timeout`` seconds without one.

        Raises SubscriptionOverflowError once the watcher has been cut off, and
        SubscriptionClosedError once the subscription is closed (also when that happens while
        waiting).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Stop receiving events, waking a pending ``next_event``; safe to call more than once."""


class EventBus(abc.ABC):
    """Delivers each published event to every current subscriber of its workflow."""

    @abc.abstractmethod
    def subscribe(self, workflow_id: str, maxsize: int) -> Subscription:
        """Start receiving the workflow's events from now on, buffering at most ``maxsize``."""

    @abc.abstractmethod
    async def publish(self, event: Event) -> None:
        """Deliver an event without waiting for any watcher to consume it."""

    @abc.abstractmethod
    def watcher_count(self) -> int:
        """Return how many subscriptions are open on this process, over every workflow."""

    async def close(self) -> None:  # noqa: B027 - optional: most buses hold nothing to release
        """Release what the bus holds (connections, background tasks); nothing for an in-process bus."""


class _QueueSubscription(Subscription):
    """A subscription backed by a bounded in-process queue.

    A deque and, while a watcher waits, one future: with thousands of streams open, an
    ``asyncio.Queue`` (three deques and an event of its own) per watcher cost some kilobytes each.
    """

    __slots__ = ("workflow_id", "overflowed", "_bus", "_events", "_maxsize", "_closed", "_waiter")

    def __init__(self, bus: "InProcessEventBus", workflow_id: str, maxsize: int) -> None:
        self.workflow_id = workflow_id
        self.overflowed = False
        self._bus = bus
        self._events: collections.deque[Event] = collections.deque()
        self._maxsize = maxsize
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, event: Event) -> bool:
        """Queue an event; on a full queue mark the subscription overflowed and return False."""
        if len(self._events) >= self._maxsize:
            self.overflowed = True
            self._wake()
            return False
        self._events.append(event)
        self._wake()
        return True

    async def next_event(self, timeout: float | None = None) -> Event | None:
        """Wait for the next event, or None after ``timeout`` seconds (see Subscription)."""
        if not self._events and not self._closed and not self.overflowed:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                if timeout is None:
                    await waiter
                else:
                    async with asyncio.timeout(timeout):
                        await waiter
            except TimeoutError:
                return None
            finally:
                self._waiter = None
        if self._closed:
            raise SubscriptionClosedError(self.workflow_id)
        if self.overflowed:
            raise SubscriptionOverflowError(self.workflow_id)
        return self._events.popleft()

    def close(self) -> None:
        """Stop receiving events, waking a pending ``next_event``; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._events.clear()
            self._wake()
            self._bus.discard(self)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class InProcessEventBus(EventBus):
    """An event bus for one process: one bounded queue per watcher, no network hop."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[_QueueSubscription]] = collections.defaultdict(set)

    def subscribe(self, workflow_id: str, maxsize: int) -> Subscription:
        """Start receiving the workflow's events from now on, buffering at most ``maxsize``."""
        subscription = _QueueSubscription(self, workflow_id, maxsize)
        self._subscribers[workflow_id].add(subscription)
        return subscription

    async def publish(self, event: Event) -> None:
        """Queue the event for every watcher of its workflow; cut off any watcher whose queue is full."""
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        """``publish`` without awaiting: for callers that are not coroutines (a socket's protocol)."""
        subscribers = self._subscribers.get(event.workflow_id)
        if not subscribers:
            return
        for subscription in list(subscribers):
            if not subscription.offer(event):
                logger.warning(
                    "watcher cut off: buffer full",
                    extra={"workflow_id": event.workflow_id, "seq": event.seq},
                )
                self.discard(subscription)

    def watcher_count(self) -> int:
        """Return how many subscriptions are open on this process, over every workflow."""
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    def subscriber_count(self, workflow_id: str) -> int:
        """Return how many watchers follow a workflow right now."""
        return len(self._subscribers.get(workflow_id, ()))

    def discard(self, subscription: _QueueSubscription) -> None:
        """Forget a subscription (closed or cut off)."""
        subscribers = self._subscribers.get(subscription.workflow_id)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.workflow_id]
