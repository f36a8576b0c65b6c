"""What relaying events to stream processes costs the orchestrator's loop, per event and per process.

Runs the orchestrator's side (``RelayingEventBus`` over an ``InProcessEventBus``, with an
``EventRelay`` on a Unix socket) in this process, and 0, 1, 2 or 4 stream-process readers
(``RelayedEventBus``, each following every workflow, so each line is decoded and delivered to one
local watcher) in child processes. Each round publishes ``--events`` events of ``--workflows``
workflows, ``--batch`` per loop iteration (as a group commit publishes them), and reads the CPU
time (``/proc``) the publishing process and the readers spent per event. The reader counts
alternate within every round; the baseline of the ratios is 0 readers (the orchestrator with no
stream process). Bounded: at most 200,000 events a round, 5 rounds, 8 readers.

    .venv/bin/python -m bench.stream_relay --rounds 3
"""

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

from bench.proc_readings import cpu_seconds
from orchestrator.bus import InProcessEventBus
from orchestrator.event_relay import EventRelay
from orchestrator.event_relay import RelayedEventBus
from orchestrator.event_relay import RelayingEventBus
from orchestrator.events import LLM_PARTIAL
from orchestrator.events import Event

TOKEN = "bench-relay-token-0123456789"  # noqa: S105 - a throwaway token for a local socket


def _reader(path: str, workflows: int, events: int, ready, done) -> None:
    """A stream process's bus: follow every workflow, count what arrives, report when all did."""

    async def read() -> None:
        bus = RelayedEventBus(path, TOKEN)
        await bus.start()
        per_workflow = events // workflows
        subscriptions = [bus.subscribe(f"wf-{n}", per_workflow + 1) for n in range(workflows)]

        async def drain(subscription) -> None:
            for _ in range(per_workflow):
                await subscription.next_event()

        ready.set()
        await asyncio.gather(*(drain(subscription) for subscription in subscriptions))
        done.set()
        await bus.close()

    asyncio.run(read())


async def _round(path: str, readers: int, args) -> tuple[float, float]:
    """Publish the events with ``readers`` readers connected; return (publisher, readers) µs/event."""
    relay = EventRelay(path, TOKEN)
    await relay.start()
    bus = RelayingEventBus(InProcessEventBus(), relay)
    context = multiprocessing.get_context("spawn")
    children = []
    for _ in range(readers):
        ready, done = context.Event(), context.Event()
        child = context.Process(target=_reader, args=(path, args.workflows, args.events, ready, done))
        child.start()
        children.append((child, ready, done))
    try:
        for _, ready, _ in children:
            while not ready.wait(0):
                await asyncio.sleep(0.05)
        reader_pids = [child.pid for child, _, _ in children]
        workflows = args.workflows
        payload = {"delta": "x" * 40}
        events = [
            Event(f"wf-{n % workflows}", n // workflows + 1, LLM_PARTIAL, "delta", payload)
            for n in range(args.events)
        ]
        mine, theirs = os.getpid(), cpu_seconds(reader_pids)
        before = cpu_seconds([mine])
        for start in range(0, len(events), args.batch):
            for event in events[start : start + args.batch]:
                await bus.publish(event)
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        publisher = cpu_seconds([mine]) - before
        for _, _, done in children:
            while not done.wait(0):
                await asyncio.sleep(0.01)
        reading = cpu_seconds(reader_pids) - theirs
    finally:
        await bus.close()
        for child, _, _ in children:
            child.join(30)
            if child.is_alive():
                child.kill()
    per_event = 1e6 / args.events
    return publisher * per_event, reading * per_event / max(readers, 1)


def main(argv: list[str] | None = None) -> int:
    """Alternate the reader counts for some rounds and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--workflows", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20, help="events published per loop iteration")
    parser.add_argument("--readers", nargs="+", type=int, default=[0, 1, 2, 4])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    args.workflows = max(1, min(args.workflows, 1000))
    args.events = max(1000, min(args.events, 200_000)) // args.workflows * args.workflows
    args.rounds = max(1, min(args.rounds, 5))
    readers = [max(0, min(count, 8)) for count in args.readers]
    results: dict[int, list[tuple[float, float]]] = {count: [] for count in readers}
    with tempfile.TemporaryDirectory(prefix="taskgate-relay-") as work:
        path = os.path.join(work, "relay.sock")
        for round_number in range(args.rounds):
            for count in readers:
                results[count].append(asyncio.run(_round(path, count, args)))
                publisher, reading = results[count][-1]
                print(
                    f"round {round_number + 1}, {count} readers: publisher {publisher:.1f} µs/event, "
                    f"each reader {reading:.1f} µs/event",
                    file=sys.stderr,
                    flush=True,
                )
    base = statistics.median(publisher for publisher, _ in results[readers[0]])
    print(
        f"{args.events:,} events of {args.workflows} workflows, {args.batch} per loop iteration, "
        f"{args.rounds} rounds; {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}\n"
    )
    print(
        "| stream processes | publisher (orchestrator) µs/event, every round | median | vs 0 | "
        "each stream process µs/event, median |"
    )
    print("|---|---|---|---|---|")
    for count in readers:
        publishers = [publisher for publisher, _ in results[count]]
        median = statistics.median(publishers)
        reading = statistics.median(reading for _, reading in results[count]) if count else None
        print(
            f"| {count} | {' / '.join(f'{value:.1f}' for value in publishers)} | {median:.1f} "
            f"| +{median - base:.1f} | {'–' if reading is None else f'{reading:.1f}'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
