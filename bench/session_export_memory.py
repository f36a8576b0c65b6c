"""Memory of a streamed session export: what the orchestrator holds while it writes a large session.

A session of ``--tasks`` tasks with ``--events`` events each is stored in a throwaway SQLite file,
then exported through ``SessionEngine.export`` with the chunks dropped as they come (as the gRPC
stream hands them on). ``tracemalloc`` reports the peak of Python allocations during the export,
beside the document's size, for the session at 1×, 2× and 4× the size: a bounded export shows a
peak that does not grow with the document.

    .venv/bin/python -m bench.session_export_memory
    .venv/bin/python -m bench.session_export_memory --tasks 100 --events 500

Bounded: the default (up to 4 × 50 tasks × 250 events, 50,000 events) takes about a minute.
It starts nothing else; the 32 MiB / 50,000-event bounds are lifted for the largest session.
"""

import argparse
import asyncio
import pathlib
import tempfile
import tracemalloc

from orchestrator.caller import Caller
from orchestrator.domain.tasks import NewTask
from orchestrator.engine.session_export import ExportLimits
from orchestrator.engine.sessions import SessionEngine
from orchestrator.events import Event
from orchestrator.store import open_store

USER = Caller("bench-user", "bench-tenant")
SESSION = "bench-session"
MESSAGE = "a step of the agent's work " * 8


async def fill(store, tasks: int, events: int) -> None:
    """Store the session: ``tasks`` tasks of ``events`` events, each event about half a KiB of JSON."""
    for number in range(tasks):
        task_id = f"task-{number:05d}"
        await store.create_task(
            NewTask(
                task_id=task_id,
                user_id=USER.user_id,
                tenant_id=USER.tenant_id,
                session_id=SESSION,
                query=f"Question {number}",
                mode="simple",
                context={},
                options={},
            )
        )
        for seq in range(1, events + 1):
            await store.append_event(
                Event(
                    workflow_id=task_id,
                    seq=seq,
                    type="AGENT_THINKING",
                    message=MESSAGE,
                    payload={"seq": seq, "note": MESSAGE},
                    agent_id="bench",
                )
            )


async def measure(tasks: int, events: int) -> tuple[int, int]:
    """Return the document's bytes and the peak of Python allocations while exporting it."""
    with tempfile.TemporaryDirectory() as directory:
        store = await open_store(f"sqlite:///{pathlib.Path(directory) / 'bench.db'}")
        try:
            await store.migrate()
            await fill(store, tasks, events)
            engine = SessionEngine(store, ExportLimits(max_bytes=1 << 40, max_events=1 << 40))
            tracemalloc.start()
            tracemalloc.reset_peak()
            size = 0
            pieces = await engine.export(USER, SESSION)
            async for piece in pieces:
                size += len(piece.encode("utf-8"))
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            return size, peak
        finally:
            await store.close()


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--events", type=int, default=250)
    arguments = parser.parse_args()
    print(f"{'session':>22} {'document':>12} {'peak traced':>12}")
    for factor in (1, 2, 4):
        tasks = arguments.tasks * factor
        size, peak = asyncio.run(measure(tasks, arguments.events))
        label = f"{tasks} tasks × {arguments.events} ev"
        print(f"{label:>22} {size / 2**20:>9.1f} MiB {peak / 2**20:>9.2f} MiB")


if __name__ == "__main__":
    main()
