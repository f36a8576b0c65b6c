"""Control signals between replicas over Redis pub/sub: a pause or cancel reaches the task's replica.

``notify`` calls this replica's listeners at once (no Redis hop, and no dependence on Redis for
its own tasks), then publishes ``<origin> <task id>`` on one channel; every replica's listener task
receives it and calls its listeners, skipping its own messages. Pub/sub delivers only to whoever
listens at that moment, so a signal sent while Redis or a replica's connection is down is lost:
that is allowed, because the control state is in the store and each replica re-reads the state of
its running tasks every few seconds (``orchestrator.engine.run_control``).
"""

import asyncio
import logging

import redis.asyncio
import redis.exceptions

from orchestrator.control_signals import ControlListener
from orchestrator.control_signals import ControlSignals
from orchestrator.redis_client import Backoff
from orchestrator.redis_client import stop_loops

logger = logging.getLogger(__name__)

CHANNEL = "taskgate:{taskgate:control}"
RECEIVE_TIMEOUT_SECONDS = 1.0
SUBSCRIBE_TIMEOUT_SECONDS = 2.0


class RedisControlSignals(ControlSignals):
    """Delivers "the control state of task X changed" to every replica through one pub/sub channel."""

    def __init__(self, client: redis.asyncio.Redis, origin: str) -> None:
        self._client = client
        self._origin = origin
        self._listeners: list[ControlListener] = []
        self._listen_task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        """Check that Redis answers (ConnectionError if not), then subscribe and start receiving."""
        try:
            await self._client.ping()
        except redis.exceptions.RedisError as ex:
            raise ConnectionError(f"Redis did not answer ({type(ex).__name__})") from ex
        self._listen_task = asyncio.create_task(self._receive_loop(), name="redis-control-signals")
        try:
            await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning("control signal channel not subscribed yet; retrying in the background")

    async def notify(self, task_id: str) -> None:
        """Tell this replica's listeners now, and every other replica through Redis (best effort)."""
        self._deliver(task_id)
        try:
            await self._client.publish(CHANNEL, f"{self._origin} {task_id}")
        except (redis.exceptions.RedisError, OSError) as ex:
            logger.warning(
                "control signal not sent to other replicas; they find the change at their next sweep",
                extra={"workflow_id": task_id, "error": type(ex).__name__},
            )

    def listen(self, listener: ControlListener) -> None:
        """Call ``listener(task_id)`` for each notification from now on."""
        self._listeners.append(listener)

    async def close(self) -> None:
        """Stop receiving, forget the listeners and close the client."""
        self._stopping = True
        if self._listen_task is not None:
            await stop_loops([self._listen_task], RECEIVE_TIMEOUT_SECONDS + 0.5)
            self._listen_task = None
        self._listeners.clear()
        await self._client.aclose()

    def _deliver(self, task_id: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(task_id)
            except Exception:
                logger.exception("control listener failed", extra={"workflow_id": task_id})

    async def _receive_loop(self) -> None:
        backoff = Backoff("receiving control signals")
        while not self._stopping:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self._subscribed.set()
                backoff.succeeded()
                while not self._stopping:
                    message = await pubsub.get_message(timeout=RECEIVE_TIMEOUT_SECONDS)
                    if message is not None:
                        self._receive(message.get("data"))
            except (redis.exceptions.RedisError, OSError) as ex:
                self._subscribed.clear()
                await backoff.failed(ex)
            finally:
                await pubsub.aclose()

    def _receive(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        origin, _, task_id = data.decode("utf-8", errors="replace").partition(" ")
        if origin != self._origin and task_id:
            self._deliver(task_id)
