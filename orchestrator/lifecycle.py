"""Running a process of the orchestrator's side: settings, logging, signals and a graceful stop.

The orchestrator (``orchestrator.main``) and a stream process (``orchestrator.stream_server``) run
the same way: read the settings (exit 2 when they are wrong), set up JSON logging, open their parts
(exit 1 with one line naming the setting at fault when they cannot start), serve until SIGINT or
SIGTERM, then close their parts.
"""

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from orchestrator.backends import StartupError
from orchestrator.settings import OrchestratorSettings
from orchestrator.settings import SettingsError
from taskgate.garbage_collection import settle_after_start_up
from taskgate.json_logging import configure_logging

# uvicorn logs request lines and start-up chatter at INFO; these processes log their own.
_QUIET_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Opens a process's parts, started, as an async context manager that closes them.
Opener = Callable[[OrchestratorSettings], Awaitable[AbstractAsyncContextManager[object]]]


async def serve_until_stopped(
    open_parts: Opener,
    settings: OrchestratorSettings,
    name: str,
    log: logging.Logger,
    stop: asyncio.Event | None = None,
) -> None:
    """Open the parts and serve until SIGINT/SIGTERM (or ``stop`` is set), then close them."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with await open_parts(settings):
            settle_after_start_up()
            await stop.wait()
            log.info(f"{name} stopping")
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    log.info(f"{name} stopped")


def run_process(command: str, serve: Callable[[OrchestratorSettings], Awaitable[None]]) -> int:
    """Read the settings and ``serve``; return the exit status (2: bad settings, 1: cannot start)."""
    try:
        settings = OrchestratorSettings.from_env()
    except SettingsError as ex:
        print(f"taskgate {command}: {ex}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, quiet_loggers=_QUIET_LOGGERS)
    try:
        asyncio.run(serve(settings))
    except StartupError as ex:
        print(f"taskgate {command}: {ex}", file=sys.stderr)
        return 1
    return 0
