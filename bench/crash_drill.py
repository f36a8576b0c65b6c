"""Crash drill: kill one of several orchestrator replicas with SIGKILL mid-run and count what it cost.

Starts its own throwaway processes on 127.0.0.1 (as the integration tests do): a PostgreSQL
cluster and a redis-server, ``--replicas`` orchestrator replicas on them (``r1``, ``r2``, …) and a
gateway in front of ``r1``. Client threads submit ``--tasks`` tasks through the gateway, which the
replicas' simulated runners run with ``--step-seconds`` per step (about 7 steps a task), at most
``--concurrency`` at once each. ``--kill-after`` seconds after the last submission it opens
``--streams`` SSE streams through the gateway (``/api/v1/stream/sse``, served by ``r1``) on tasks
then running, the killed replica's first, waits until each has its first frame, and SIGKILLs the
last replica. Then it waits until every task has settled (COMPLETED, FAILED, CANCELLED or
TIMEOUT) and reads the store:

- **running on the killed replica**: tasks RUNNING and claimed by it when it died;
- **lost**: tasks that ended FAILED or never finished within ``--timeout`` seconds of the kill;
- **resumed**: tasks with a ``WORKFLOW_RESUMED`` event;
- **run twice**: tasks whose log records a runner step, a partial's index or an end twice
  (``tests/integration/event_log.py``);
- **streams without done**: streams that had not received ``done`` ``--stream-grace`` seconds after
  every task settled (or the timeout);
- **settled after**: seconds from the kill until every task had settled.

    .venv/bin/python -m bench.crash_drill --tasks 300 --streams 50 --lease-seconds 5

Side by side: ``--trees HEAD_CHECKOUT OTHER_CHECKOUT --rounds 2`` runs the drill on the code of
each checkout in turn (``git worktree add ../before <commit>`` makes one), round after round.
Bounded: at most 2,000 tasks, 200 streams, 8 replicas and ``--timeout`` seconds after the kill; it
stops by itself and removes everything it started.
"""

import argparse
import collections
import contextlib
import dataclasses
import json
import pathlib
import signal
import sys
import tempfile
import threading
import time

import httpx
import psycopg

from bench.task_throughput import tree_label
from tests.integration.event_log import RESUMED
from tests.integration.event_log import repeated_steps
from tests.integration.processes import REPO
from tests.integration.processes import wait_until
from tests.integration.replicas import Replicas
from tests.integration.replicas import start_replicas
from tests.integration.servers import start_postgres
from tests.integration.servers import start_redis
from tests.integration.sse import StreamFollower

MAX_TASKS = 2000
MAX_STREAMS = 200
MAX_REPLICAS = 8
SUBMIT_CLIENTS = 8
POLL_SECONDS = 0.2
FIRST_FRAME_TIMEOUT = 30.0
# Each read of a stream; the orchestrator pings an idle stream every ten seconds.
STREAM_READ_TIMEOUT = 60.0
SETTLED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")


@dataclasses.dataclass(frozen=True)
class Drill:
    """The drill's shape: how many tasks, replicas and streams, and the timings."""

    tasks: int
    replicas: int
    streams: int
    concurrency: int
    step_seconds: float
    lease_seconds: float
    kill_after: float
    timeout: float
    stream_grace: float


@dataclasses.dataclass
class Outcome:
    """What one drill counted."""

    label: str
    tasks: int
    running_on_killed: int
    statuses: dict[str, int]
    lost: int
    resumed: int
    run_twice: int
    streams: int
    streams_without_done: int
    settled_seconds: float | None
    # What to look at: logs run twice, failures' reasons, streams without done.
    notes: list[str]

    def line(self) -> str:
        """Return the outcome as one table row."""
        settled = f"{self.settled_seconds:.1f}" if self.settled_seconds is not None else "not settled"
        failed, completed = self.statuses.get("FAILED", 0), self.statuses.get("COMPLETED", 0)
        return (
            f"| {self.label} | {self.tasks} | {self.running_on_killed} | {completed} |"
            f" {self.lost} ({failed} failed, {self.lost - failed} unfinished) | {self.resumed} |"
            f" {self.run_twice} | {self.streams_without_done} of {self.streams} | {settled} |"
        )


def _submit(url: str, key: str, queries: list[str], task_ids: list[str], errors: list[str]) -> None:
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as client:
        for query in queries:
            response = client.post("/api/v1/tasks", json={"query": query})
            if response.status_code == 200:
                task_ids.append(response.json()["task_id"])
            else:
                errors.append(f"{response.status_code} {response.text[:200]}")


def submit_tasks(replicas: Replicas, count: int) -> list[str]:
    """Submit ``count`` tasks through the gateway from a few client threads; return their ids."""
    task_ids: list[str] = []
    errors: list[str] = []
    queries = [f"What is {n}+1?" for n in range(count)]
    clients = [
        threading.Thread(
            target=_submit,
            args=(replicas.gateway.url, replicas.api_key, queries[first::SUBMIT_CLIENTS], task_ids, errors),
        )
        for first in range(min(SUBMIT_CLIENTS, count))
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    if errors:
        raise RuntimeError(f"{len(errors)} submissions failed, e.g. {errors[0]}")
    return task_ids


def running_tasks(database_url: str) -> list[tuple[str, str]]:
    """Return (task id, replica name) of every task RUNNING now."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT task_id, split_part(claimed_by, ':', 1) FROM tasks"
            " WHERE status = 'RUNNING' ORDER BY created_at"
        ).fetchall()
    return [(task_id, replica) for task_id, replica in rows]


def stream_sample(running: list[tuple[str, str]], victim: str, count: int) -> list[str]:
    """Pick ``count`` running tasks to watch, the victim's first."""
    ordered = [task_id for task_id, replica in running if replica == victim]
    ordered += [task_id for task_id, replica in running if replica != victim]
    return ordered[:count]


def unsettled_count(database_url: str, task_ids: list[str]) -> int:
    """Return how many of the tasks have not settled yet."""
    with psycopg.connect(database_url) as connection:
        return connection.execute(
            "SELECT COUNT(*) FROM tasks WHERE task_id = ANY(%s) AND status <> ALL(%s)",
            (task_ids, list(SETTLED)),
        ).fetchone()[0]


@dataclasses.dataclass
class StoredTask:
    """A task as the store holds it after the drill: its row and its events in seq order."""

    status: str
    claimed_by: str | None
    error: str | None
    events: list[dict]


def read_tasks(database_url: str, task_ids: list[str]) -> dict[str, StoredTask]:
    """Return every task's status, claim, error and events (seq, type, payload, epoch seconds)."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT task_id, status, claimed_by, error FROM tasks WHERE task_id = ANY(%s)", (task_ids,)
        ).fetchall()
        events = connection.execute(
            "SELECT workflow_id, seq, type, payload_json, timestamp FROM events WHERE workflow_id = ANY(%s)"
            " ORDER BY workflow_id, seq",
            (task_ids,),
        ).fetchall()
    tasks = {
        task_id: StoredTask(status, claimed_by, error, []) for task_id, status, claimed_by, error in rows
    }
    for workflow_id, seq, kind, payload, stamp in events:
        payload = json.loads(payload) if isinstance(payload, str) else payload
        tasks[workflow_id].events.append(
            {"seq": seq, "type": kind, "payload": payload, "epoch": stamp.timestamp()}
        )
    return tasks


@contextlib.contextmanager
def running_replicas(drill: Drill, work: pathlib.Path, tree: pathlib.Path):
    """Start PostgreSQL, Redis, the replicas (running the code of ``tree``) and a gateway on the first."""
    with contextlib.ExitStack() as cleanup:
        postgres = start_postgres()
        cleanup.callback(postgres.stop)
        redis = start_redis()
        cleanup.callback(redis.stop)
        shared = {
            "TASKGATE_LOG_LEVEL": "WARNING",
            "TASKGATE_SIM_STEP_SECONDS": str(drill.step_seconds),
            "TASKGATE_LEASE_SECONDS": str(drill.lease_seconds),
            "TASKGATE_WORKER_CONCURRENCY": str(drill.concurrency),
            "TASKGATE_TASK_TIMEOUT_SECONDS": str(int(drill.timeout) + 600),
        }
        names = tuple(f"r{number}" for number in range(1, drill.replicas + 1))
        replicas = start_replicas(
            work, postgres.create_database(), redis.url, names=names, shared=shared, cwd=tree
        )
        cleanup.callback(replicas.stop)
        yield replicas


def run_drill(label: str, drill: Drill, replicas: Replicas) -> Outcome:
    """Submit, watch, kill the last replica, wait for every task to settle, and count."""
    victim = list(replicas.orchestrators)[-1]
    task_ids = submit_tasks(replicas, drill.tasks)
    time.sleep(drill.kill_after)
    sample = stream_sample(running_tasks(replicas.database_url), victim, drill.streams)
    watches = [
        StreamFollower(
            replicas.gateway.url + "/api/v1/stream/sse",
            replicas.headers,
            {"workflow_id": task_id},
            timeout=STREAM_READ_TIMEOUT,
        )
        for task_id in sample
    ]
    for watch in watches:
        watch.start()
    deadline = time.monotonic() + FIRST_FRAME_TIMEOUT
    for watch in watches:
        watch.first_frame.wait(max(0.0, deadline - time.monotonic()))

    replicas.orchestrators[victim].stop(signal.SIGKILL)
    killed_at, killed_epoch = time.monotonic(), time.time()
    running_on_killed = sum(replica == victim for _, replica in running_tasks(replicas.database_url))
    settled_seconds = None
    with contextlib.suppress(AssertionError):
        wait_until(
            lambda: unsettled_count(replicas.database_url, task_ids) == 0,
            timeout=drill.timeout,
            interval=POLL_SECONDS,
            what="every task to settle",
        )
        settled_seconds = time.monotonic() - killed_at
    streams_deadline = time.monotonic() + drill.stream_grace
    for watch in watches:
        watch.ended.wait(max(0.0, streams_deadline - time.monotonic()))

    stored = read_tasks(replicas.database_url, task_ids)
    statuses = {task_id: task.status for task_id, task in stored.items()}
    twice = {task_id: repeated_steps(task.events) for task_id, task in stored.items()}
    notes = [f"{task_id}: {'; '.join(found)}" for task_id, found in twice.items() if found][:3]
    errors = collections.Counter(task.error for task in stored.values() if task.status == "FAILED")
    notes += [f"FAILED {count} times: {error}" for error, count in errors.most_common(3)]
    notes += [_stream_note(watch, stored, killed_epoch) for watch in watches if not watch.done][:5]
    return Outcome(
        label=label,
        tasks=len(task_ids),
        running_on_killed=running_on_killed,
        statuses=dict(collections.Counter(statuses.values())),
        lost=sum(statuses.get(task_id) not in ("COMPLETED", "CANCELLED", "TIMEOUT") for task_id in task_ids),
        resumed=sum(any(event["type"] == RESUMED for event in task.events) for task in stored.values()),
        run_twice=sum(bool(found) for found in twice.values()),
        streams=len(watches),
        streams_without_done=sum(not watch.done for watch in watches),
        settled_seconds=settled_seconds,
        notes=notes,
    )


def _stream_note(watch: StreamFollower, stored: dict[str, StoredTask], killed_epoch: float) -> str:
    """Describe a stream that did not end with ``done``: how far it got against what was stored, and when."""
    task = stored[watch.params["workflow_id"]]
    last = watch.frames[-1] if watch.frames else None
    state = f"failed ({watch.error})" if watch.error else "closed" if watch.ended.is_set() else "still open"
    tail = ", ".join(
        f"{event['seq']} {event['type']} at {event['epoch'] - killed_epoch:+.3f} s"
        for event in task.events[-3:]
    )
    return (
        f"stream of {watch.params['workflow_id']} {state} after {len(watch.frames)} frames"
        f" (last id {last.id if last else '-'}, {last.event if last else '-'}); claimed by {task.claimed_by};"
        f" stored, from the kill: {tail}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the drill (on each checkout, round after round) and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--replicas", type=int, default=2, help="orchestrator replicas; the last is killed")
    parser.add_argument("--streams", type=int, default=50, help="SSE streams opened on running tasks")
    parser.add_argument("--concurrency", type=int, default=100, help="tasks each replica runs at once")
    parser.add_argument("--step-seconds", type=float, default=1.0, help="simulated runner's pause per step")
    parser.add_argument("--lease-seconds", type=float, default=5.0, help="TASKGATE_LEASE_SECONDS")
    parser.add_argument("--kill-after", type=float, default=2.0, help="seconds after the last submission")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds after the kill to settle")
    parser.add_argument("--stream-grace", type=float, default=30.0, help="seconds for streams to end after")
    parser.add_argument(
        "--trees", nargs="+", type=pathlib.Path, default=[REPO], help="checkouts whose code to run, in turn"
    )
    parser.add_argument("--rounds", type=int, default=1, help="times to run the drill on every checkout")
    args = parser.parse_args(argv)
    drill = Drill(
        tasks=max(1, min(args.tasks, MAX_TASKS)),
        replicas=max(2, min(args.replicas, MAX_REPLICAS)),
        streams=max(0, min(args.streams, MAX_STREAMS)),
        concurrency=max(1, args.concurrency),
        step_seconds=max(0.0, args.step_seconds),
        lease_seconds=max(1.0, args.lease_seconds),
        kill_after=max(0.0, args.kill_after),
        timeout=max(10.0, min(args.timeout, 1800.0)),
        stream_grace=max(0.0, args.stream_grace),
    )
    trees = [tree.resolve() for tree in args.trees]

    print(
        "| checkout | tasks | running on the killed replica | completed | lost | resumed | run twice"
        " | streams without `done` | settled after the kill, s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for _ in range(max(1, args.rounds)):
        for tree in trees:
            label = f"{tree_label(tree)}, {drill.replicas} replicas"
            with (
                tempfile.TemporaryDirectory(prefix="taskgate-drill-") as work,
                running_replicas(drill, pathlib.Path(work), tree) as replicas,
            ):
                outcome = run_drill(label, drill, replicas)
            print(outcome.line(), flush=True)
            for note in outcome.notes:
                print(f"    {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
