"""Opening what the orchestrator keeps its state and messages in: the store, the event bus, control signals.

Each opener names the setting to look at when it cannot reach its server (``StartupError``), and
never repeats a URL, which can carry a password.
"""

import sqlite3
from typing import Protocol
from typing import TypeVar

from orchestrator.bus import EventBus
from orchestrator.bus import InProcessEventBus
from orchestrator.control_signals import ControlSignals
from orchestrator.control_signals import InProcessControlSignals
from orchestrator.settings import OrchestratorSettings
from orchestrator.store import open_store
from orchestrator.store.base import Store


class StartupError(RuntimeError):
    """The orchestrator could not start; the message says which setting to look at."""


async def open_migrated_store(settings: OrchestratorSettings) -> Store:
    """Open the store TASKGATE_DATABASE_URL names and apply its pending migrations."""
    try:
        store = await open_store(settings.database_url, settings.max_running_per_user)
    except (OSError, sqlite3.Error) as ex:
        # The URL itself is not repeated: a database URL can carry a password.
        reason = str(ex).strip().splitlines()[0] if str(ex).strip() else type(ex).__name__
        raise StartupError(f"cannot open the database named by TASKGATE_DATABASE_URL: {reason}") from ex
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store


class _RedisService(Protocol):
    """A Redis-backed part that connects on ``start`` and lets go on ``close``."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


_Service = TypeVar("_Service", bound=_RedisService)


async def _started_on_redis(service: _Service) -> _Service:
    """Start a Redis-backed service; when Redis cannot be reached, close it and name the setting."""
    try:
        await service.start()
    except OSError as ex:
        await service.close()
        # The URL itself is not repeated: it can carry a password.
        raise StartupError(f"cannot reach Redis named by TASKGATE_REDIS_URL: {ex}") from ex
    return service


async def open_event_bus(settings: OrchestratorSettings, origin: str) -> EventBus:
    """Return the in-process bus, or with TASKGATE_REDIS_URL the Redis Streams bus, started."""
    if settings.redis_url is None:
        return InProcessEventBus()
    # Imported only when configured: the embedded default starts without loading a Redis client.
    from orchestrator.redis_bus import RedisStreamsEventBus
    from orchestrator.redis_client import connect

    return await _started_on_redis(RedisStreamsEventBus(connect(settings.redis_url), origin))


async def open_control_signals(settings: OrchestratorSettings, origin: str) -> ControlSignals:
    """Return in-process control signals, or with TASKGATE_REDIS_URL the Redis pub/sub ones, started."""
    if settings.redis_url is None:
        return InProcessControlSignals()
    from orchestrator.redis_client import connect
    from orchestrator.redis_control_signals import RedisControlSignals

    return await _started_on_redis(RedisControlSignals(connect(settings.redis_url), origin))
