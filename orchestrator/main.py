"""The orchestrator process: read the settings, set up logging and signals, run the composition root.

Everything the process is made of is wired in ``orchestrator.app``; ``taskgate/cli.py`` calls
``run_serve``; how the process starts and stops is ``orchestrator.lifecycle``'s.
"""

import asyncio
import logging

from orchestrator.app import build_orchestrator
from orchestrator.lifecycle import run_process
from orchestrator.lifecycle import serve_until_stopped
from orchestrator.settings import OrchestratorSettings

logger = logging.getLogger("orchestrator")


async def serve(settings: OrchestratorSettings, stop: asyncio.Event | None = None) -> None:
    """Run the orchestrator until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully."""
    await serve_until_stopped(build_orchestrator, settings, "orchestrator", logger, stop)


def run_serve() -> int:
    """Read the settings and serve; return the exit status (2 for bad settings, 1 if it cannot start)."""
    return run_process("orchestrator", serve)
