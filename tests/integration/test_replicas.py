"""Several orchestrator replicas on one PostgreSQL database and one Redis: real processes, real servers.

Each test starts two orchestrators (``r1``, ``r2``) sharing a fresh database and the session's
Redis, and one gateway in front of ``r1`` (the ``replicas_of`` fixture, ``replicas.py``).
``TASKGATE_WORKER_CONCURRENCY=0`` makes a replica serve the API and streams without running tasks,
which decides where a task runs.
"""

import signal
import threading
import time

import grpc
import httpx
import psycopg
import pytest

from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from tests.integration.event_log import finished_log_faults
from tests.integration.processes import wait_until
from tests.integration.replicas import Replicas
from tests.integration.sse import read_stream

pytestmark = pytest.mark.integration

TASK_COUNT = 200


def _submit_over_grpc(address: str, api_key: str, count: int, task_ids: list[str]) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        for n in range(count):
            reply = stub.SubmitTask(
                tasks_pb2.SubmitTaskRequest(query=f"What is {n}+1?"),
                metadata=(("x-api-key", api_key),),
                timeout=10,
            )
            task_ids.append(reply.task.task_id)


def test_every_task_runs_exactly_once_across_two_replicas(replicas_of):
    replicas = replicas_of(
        r1={"TASKGATE_SIM_STEP_SECONDS": "0", "TASKGATE_WORKER_CONCURRENCY": "20"},
        r2={"TASKGATE_SIM_STEP_SECONDS": "0", "TASKGATE_WORKER_CONCURRENCY": "20"},
    )
    task_ids: list[str] = []
    # Half the tasks are submitted to each replica, so both wake their workers and claim at once.
    submitters = [
        threading.Thread(
            target=_submit_over_grpc,
            args=(orchestrator.grpc_addr, replicas.api_key, TASK_COUNT // 2, task_ids),
        )
        for orchestrator in replicas.orchestrators.values()
    ]
    for submitter in submitters:
        submitter.start()
    for submitter in submitters:
        submitter.join(timeout=120)
    assert len(set(task_ids)) == TASK_COUNT

    def all_finished():
        with psycopg.connect(replicas.database_url) as connection:
            return connection.execute(
                "SELECT COUNT(*) = %s FROM tasks WHERE status IN ('COMPLETED', 'FAILED')", (TASK_COUNT,)
            ).fetchone()[0]

    wait_until(all_finished, timeout=120, interval=0.2, what=f"{TASK_COUNT} tasks to finish")
    with psycopg.connect(replicas.database_url) as connection:
        statuses = dict(connection.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status").fetchall())
        claimers = dict(
            connection.execute(
                "SELECT split_part(claimed_by, ':', 1), COUNT(*) FROM tasks GROUP BY 1"
            ).fetchall()
        )
        per_task = connection.execute(
            "SELECT workflow_id, array_agg(seq ORDER BY seq),"
            " COUNT(*) FILTER (WHERE type = 'WORKFLOW_STARTED'), COUNT(*) FILTER (WHERE type = 'STREAM_END')"
            " FROM events GROUP BY workflow_id"
        ).fetchall()

    assert statuses == {"COMPLETED": TASK_COUNT}
    assert set(claimers) == {"r1", "r2"}, claimers
    assert len(per_task) == TASK_COUNT
    for workflow_id, seqs, started, ended in per_task:
        assert seqs == list(range(1, len(seqs) + 1)), workflow_id
        assert (started, ended) == (1, 1), workflow_id


def test_a_stream_on_one_replica_shows_live_events_of_a_task_run_by_the_other(replicas_of):
    replicas = replicas_of(
        r1={"TASKGATE_WORKER_CONCURRENCY": "0"},
        r2={"TASKGATE_SIM_STEP_SECONDS": "0.2"},
    )
    response = httpx.post(
        replicas.gateway.url + "/api/v1/tasks", headers=replicas.headers, json={"query": "Explain leases."}
    )
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]

    started = time.monotonic()
    frames = read_stream(
        replicas.gateway.url + "/api/v1/stream/sse", replicas.headers, {"workflow_id": task_id}
    )
    streamed_for = time.monotonic() - started

    assert replicas.claimed_by(task_id).startswith("r2:")
    assert [int(frame.id) for frame in frames] == list(range(1, len(frames) + 1))
    assert frames[-1].event == "done"
    assert sum(frame.event == "WORKFLOW_STARTED" for frame in frames) == 1
    # The task ran for about a second and a half while the stream followed it live.
    assert streamed_for > 0.5
    assert replicas.task(task_id)["status"] == "COMPLETED"


def _events(replicas: Replicas, task_id: str) -> list[dict]:
    return httpx.get(
        f"{replicas.gateway.url}/api/v1/tasks/{task_id}/events",
        headers=replicas.headers,
        params={"limit": 200},
        timeout=60,
    ).json()["events"]


def _task_run_by_r2(replicas_of, step_seconds: float) -> tuple[Replicas, str]:
    """Start r1 (behind the gateway, running nothing) and r2 with 2 s leases; submit a task r2 runs."""
    replicas = replicas_of(
        r1={"TASKGATE_WORKER_CONCURRENCY": "0", "TASKGATE_LEASE_SECONDS": "2"},
        r2={"TASKGATE_SIM_STEP_SECONDS": str(step_seconds), "TASKGATE_LEASE_SECONDS": "2"},
    )
    response = httpx.post(
        replicas.gateway.url + "/api/v1/tasks", headers=replicas.headers, json={"query": "Take your time."}
    )
    return replicas, response.json()["task_id"]


def _wait_finished(replicas: Replicas, task_id: str) -> dict:
    return wait_until(
        lambda: (t := replicas.task(task_id))["status"] not in ("QUEUED", "RUNNING") and t,
        timeout=60,
        what=f"task {task_id} to finish",
    )


def _assert_ran_once_from_checkpoints(events: list[dict], attempts: int) -> None:
    """Ran once (event_log's rule), completed, and resumed once per attempt after the first."""
    assert finished_log_faults(events) == []
    assert events[-2]["type"] == "WORKFLOW_COMPLETED"
    resumed = [event["payload"]["attempt"] for event in events if event["type"] == "WORKFLOW_RESUMED"]
    assert resumed == list(range(2, attempts + 1))


def test_a_killed_replica_s_task_is_resumed_from_its_checkpoint_after_its_lease(replicas_of):
    replicas, task_id = _task_run_by_r2(replicas_of, step_seconds=1.0)
    wait_until(
        lambda: any(event["type"] == "AGENT_THINKING" for event in _events(replicas, task_id)),
        what="the task to do a step on r2",
    )
    assert replicas.claimed_by(task_id).startswith("r2:")
    frames: list = []
    watcher = threading.Thread(
        target=lambda: frames.extend(
            read_stream(
                replicas.gateway.url + "/api/v1/stream/sse",
                replicas.headers,
                {"workflow_id": task_id},
                timeout=60,
            )
        )
    )
    watcher.start()

    replicas.orchestrators["r2"].stop(signal.SIGKILL)
    # r1 (which runs nothing itself) takes the task over once the lease expires and queues it again.
    wait_until(
        lambda: replicas.task(task_id)["status"] == "QUEUED",
        timeout=60,
        what="r1 to queue the task again",
    )
    assert replicas.claimed_by(task_id) == ""
    replicas.orchestrators["r2"].start()
    task = _wait_finished(replicas, task_id)
    watcher.join(timeout=60)

    assert task["status"] == "COMPLETED"
    assert not watcher.is_alive()
    assert [int(frame.id) for frame in frames] == list(range(1, len(frames) + 1))
    assert frames[-1].event == "done"
    _assert_ran_once_from_checkpoints(_events(replicas, task_id), attempts=2)


def test_a_cancel_sent_to_one_replica_stops_the_task_running_on_the_other_at_once(replicas_of):
    replicas = replicas_of(
        r1={"TASKGATE_WORKER_CONCURRENCY": "0"},
        r2={"TASKGATE_SIM_STEP_SECONDS": "60"},
    )
    response = httpx.post(
        replicas.gateway.url + "/api/v1/tasks", headers=replicas.headers, json={"query": "Take your time."}
    )
    task_id = response.json()["task_id"]
    wait_until(lambda: replicas.task(task_id)["status"] == "RUNNING", what="the task to start on r2")
    # The runner is now inside a step of a minute or more: only an interruption ends it in time.

    cancel = httpx.post(
        f"{replicas.gateway.url}/api/v1/tasks/{task_id}/cancel",
        headers=replicas.headers,
        json={"reason": "stop"},
    )
    task = wait_until(
        lambda: (t := replicas.task(task_id))["status"] == "CANCELLED" and t,
        timeout=45,
        interval=0.05,
        what="r2 to stop the task",
    )

    assert cancel.status_code == 202, cancel.text
    assert replicas.claimed_by(task_id).startswith("r2:")
    assert task["error"] == "The task was cancelled"


def test_a_stalled_replica_that_wakes_after_its_task_was_recovered_changes_nothing(replicas_of):
    replicas, task_id = _task_run_by_r2(replicas_of, step_seconds=0.3)
    wait_until(lambda: replicas.task(task_id)["status"] == "RUNNING", what="the task to start on r2")
    stalled = replicas.orchestrators["r2"]

    # r2 stops dead (a long GC pause, a frozen VM) past its lease, and r1 recovers the task.
    stalled.process.send_signal(signal.SIGSTOP)
    try:
        recovered = wait_until(
            lambda: (t := replicas.task(task_id))["status"] != "RUNNING" and t,
            timeout=60,
            what="r1 to recover the task",
        )
    finally:
        stalled.process.send_signal(signal.SIGCONT)
    assert recovered["status"] == "QUEUED"

    # r2 wakes up believing it still runs the task, notices it lost the claim, and stops that run;
    # it then claims the queued task afresh and resumes it from the checkpoint like any replica.
    def noticed() -> bool:
        log = stalled.log_path.read_text()
        return "stopping it here" in log or "this outcome is dropped" in log

    wait_until(noticed, timeout=60, what="r2 to notice it lost the task")
    task = _wait_finished(replicas, task_id)
    assert task["status"] == "COMPLETED"
    _assert_ran_once_from_checkpoints(_events(replicas, task_id), attempts=2)
