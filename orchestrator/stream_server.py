"""A stream process: the admin app's stream routes served apart from the orchestrator's core loop.

``taskgate streams`` runs one; ``taskgate run`` starts ``TASKGATE_STREAM_PROCESSES`` of them and
points the gateway's ``TASKGATE_ADMIN_URL`` at them. Each serves ``/stream/sse``, ``/stream/ws``,
``/health`` and ``/metrics`` (the admin app of ``orchestrator.admin.app``, with the same checks,
pings, cut-offs and metrics) on ``TASKGATE_STREAM_ADDR``; every process binds that address with
SO_REUSEPORT, so N of them share one port and the kernel spreads new connections over them.

A stream process holds no task and writes nothing. It reads the store (ownership, replay) on its
own connections, and learns of live events from Redis Streams when ``TASKGATE_REDIS_URL`` is set
(one more reader, like a replica's), else from the orchestrator's relay socket
(``TASKGATE_STREAM_RELAY_PATH``, ``orchestrator.event_relay``). So the orchestrator's loop, which
runs tasks and answers gRPC, does no per-watcher work: with the relay it writes each event once per
stream process; with Redis, nothing more than before.

SIGTERM or SIGINT stops it: it stops accepting, lets open streams end within the admin server's
grace period, then cuts them; clients reconnect with ``Last-Event-ID`` to another process (or to
this one started again) and lose nothing, since every event is in the store.
"""

import asyncio
import contextlib
import logging
import os
import sqlite3

from orchestrator.admin.app import admin_server
from orchestrator.backends import StartupError
from orchestrator.bus import EventBus
from orchestrator.lifecycle import run_process
from orchestrator.lifecycle import serve_until_stopped
from orchestrator.settings import OrchestratorSettings
from orchestrator.store import open_store
from orchestrator.streaming import WorkflowStreams

logger = logging.getLogger("orchestrator.streams")


async def open_stream_bus(settings: OrchestratorSettings) -> EventBus:
    """Return the started bus a stream process reads: Redis Streams, else the orchestrator's relay."""
    origin = f"streams-{settings.replica_id}-{os.getpid()}"
    if settings.redis_url is not None:
        from orchestrator.redis_bus import RedisStreamsEventBus
        from orchestrator.redis_client import connect

        bus = RedisStreamsEventBus(connect(settings.redis_url), origin)
        try:
            await bus.start()
        except OSError as ex:
            await bus.close()
            raise StartupError(f"cannot reach Redis named by TASKGATE_REDIS_URL: {ex}") from ex
        return bus
    if not settings.stream_relay_path:
        raise StartupError(
            "a stream process needs TASKGATE_REDIS_URL or TASKGATE_STREAM_RELAY_PATH "
            "(the orchestrator's relay)"
        )
    from orchestrator.event_relay import RelayedEventBus

    relayed = RelayedEventBus(settings.stream_relay_path, settings.service_token)
    try:
        await relayed.start()
    except ConnectionError as ex:
        raise StartupError(f"{ex}: is the orchestrator running with TASKGATE_STREAM_RELAY_PATH?") from ex
    return relayed


class StreamProcess:
    """The parts of one stream process: store, bus and the admin server on the shared port."""

    def __init__(self, settings: OrchestratorSettings) -> None:
        self.settings = settings
        self.port = 0
        self._resources = contextlib.AsyncExitStack()

    async def start(self) -> None:
        """Open the store and the bus, then listen; raise StartupError naming the setting at fault."""
        settings = self.settings
        resources = self._resources
        try:
            try:
                # Not migrated here: the orchestrator migrates; a stream process only reads.
                store = await open_store(settings.database_url)
            except (OSError, sqlite3.Error) as ex:
                raise StartupError(f"cannot open the database named by TASKGATE_DATABASE_URL: {ex}") from ex
            resources.push_async_callback(store.close)
            bus = await open_stream_bus(settings)
            resources.push_async_callback(bus.close)
            streams = WorkflowStreams(store, bus, settings.stream_buffer)
            server = admin_server(
                streams,
                settings,
                bus.watcher_count,
                settings.stream_host,
                settings.stream_port,
                reuse_port=True,
            )
            try:
                self.port = await server.start()
            except OSError as ex:
                address = settings.stream_addr
                raise StartupError(f"cannot listen on TASKGATE_STREAM_ADDR={address}: {ex}") from ex
            resources.push_async_callback(server.stop)
        except BaseException:
            await resources.aclose()
            raise
        logger.info(
            f"stream process ready on {settings.stream_host}:{self.port}",
            extra={"stream_port": self.port, "bus": type(bus).__name__},
        )

    async def stop(self) -> None:
        """Stop listening (open streams end within the grace period), then close the bus and the store."""
        await self._resources.aclose()

    async def __aenter__(self) -> "StreamProcess":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def open_stream_process(settings: OrchestratorSettings) -> "StreamProcess":
    """Return a started stream process; leaving it as a context manager stops it."""
    process = StreamProcess(settings)
    await process.start()
    return process


async def serve_streams(settings: OrchestratorSettings, stop: asyncio.Event | None = None) -> None:
    """Run a stream process until SIGINT/SIGTERM (or ``stop`` is set), then stop gracefully."""
    await serve_until_stopped(open_stream_process, settings, "stream process", logger, stop)


def run_streams() -> int:
    """Read the settings and serve streams; return the exit status (2: bad settings, 1: cannot start)."""
    return run_process("streams", serve_streams)
