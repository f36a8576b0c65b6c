"""The orchestrator process: read the settings, set up logging and signals, run the composition root.

Everything the process is made of is wired in ``orchestrator.app``; ``taskgate/cli.py`` calls
``run_serve``.
"""

import asyncio
import logging
import signal
import sys

from orchestrator.app import build_orchestrator
from orchestrator.backends import StartupError
from orchestrator.settings import OrchestratorSettings
from orchestrator.settings import SettingsError
from taskgate.garbage_collection import settle_after_start_up
from taskgate.json_logging import configure_logging

logger = logging.getLogger("orchestrator")


async def serve(settings: OrchestratorSettings, stop: asyncio.Event | None = None) -> None:
    """Run the orchestrator until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = (signal.SIGINT, signal.SIGTERM)
    for signum in handled:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with await build_orchestrator(settings):
            settle_after_start_up()
            await stop.wait()
            logger.info("orchestrator stopping")
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
    logger.info("orchestrator stopped")


def run_serve() -> int:
    """Read the settings and serve; return the exit status (2 for bad settings, 1 if it cannot start)."""
    try:
        settings = OrchestratorSettings.from_env()
    except SettingsError as ex:
        print(f"taskgate orchestrator: {ex}", file=sys.stderr)
        return 2
    # uvicorn logs request lines and start-up chatter at INFO; the orchestrator logs its own.
    configure_logging(settings.log_level, quiet_loggers=("uvicorn", "uvicorn.error", "uvicorn.access"))
    try:
        asyncio.run(serve(settings))
    except StartupError as ex:
        print(f"taskgate orchestrator: {ex}", file=sys.stderr)
        return 1
    return 0
