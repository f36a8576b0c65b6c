"""Whole-process behaviour: `taskgate run`, restarts, the orchestrator going away, gthread workers."""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from taskgate import api_keys
from tests.integration.gateway_workers import worker_pids
from tests.integration.processes import REPO
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import start_gateway
from tests.integration.processes import start_stack
from tests.integration.processes import taskgate_command
from tests.integration.processes import taskgate_run
from tests.integration.processes import wait_until
from tests.integration.sse import read_stream


def _wait_completed(url: str, headers: dict, task_id: str) -> dict:
    def completed():
        task = httpx.get(f"{url}/api/v1/tasks/{task_id}", headers=headers).json()
        return task if task.get("status") == "COMPLETED" else None

    return wait_until(completed, what=f"task {task_id} to complete")


def test_taskgate_run_serves_in_dev_with_the_dev_key_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = base_env(tmp_path)
    del env["TASKGATE_DATABASE_URL"]  # the embedded default: a SQLite file under .taskgate/
    # As `make run` has it: no environment named (the services alone would default to production),
    # no JWT secret, a short memorable service token, which only dev accepts.
    del env["TASKGATE_ENV"]
    env["TASKGATE_SERVICE_TOKEN"] = "memorable-token-1"
    env["TASKGATE_DEV_API_KEY"] = api_keys.generate_api_key()
    url = "http://" + env["TASKGATE_GATEWAY_BIND"]
    headers = {"X-API-Key": env["TASKGATE_DEV_API_KEY"]}

    with taskgate_run(env, tmp_path) as (process, banner):
        assert env["TASKGATE_DEV_API_KEY"] in banner, banner
        assert '"env": "dev"' in banner, banner
        response = httpx.post(url + "/api/v1/tasks", headers=headers, content=b'{"query":"What is 2+2?"}')
        assert response.status_code == 200, response.text
        task = _wait_completed(url, headers, response.json()["task_id"])
        assert "4" in task["result"]
        assert (tmp_path / ".taskgate" / "taskgate.db").exists()

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(url + "/health", timeout=1)


def test_killing_taskgate_run_takes_its_children_down_too(tmp_path):
    env = base_env(tmp_path)
    url = "http://" + env["TASKGATE_GATEWAY_BIND"]

    with taskgate_run(env, tmp_path) as (process, _):
        assert httpx.get(url + "/health").status_code == 200
        process.kill()
        process.wait()

        def gone(address: str) -> bool:
            try:
                httpx.get(address, timeout=0.5)
            except httpx.TransportError:
                return True
            return False

        wait_until(lambda: gone(url + "/health"), timeout=20, what="the gateway to stop")
        wait_until(
            lambda: gone("http://" + env["TASKGATE_ADMIN_ADDR"] + "/health"), timeout=20, what="orchestrator"
        )


def test_orchestrator_restart_gives_503_meanwhile_and_keeps_every_task(tmp_path):
    stack = start_stack(tmp_path)
    try:
        headers = {"X-API-Key": create_api_key(stack.env, "restart@example.com")}
        before = httpx.post(
            stack.url + "/api/v1/tasks", headers=headers, json={"query": "What is 3+4?"}
        ).json()
        _wait_completed(stack.url, headers, before["task_id"])

        assert stack.orchestrator.stop() == 0
        down = httpx.get(f"{stack.url}/api/v1/tasks/{before['task_id']}", headers=headers, timeout=30)
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "unavailable"
        assert int(down.headers["Retry-After"]) > 0
        assert httpx.get(stack.url + "/readiness").status_code == 503
        assert httpx.get(stack.url + "/health").status_code == 200

        stack.orchestrator.start()

        def every_worker_answers():
            # Fresh connections spread over the gateway's workers; each has its own channel.
            responses = [
                httpx.get(f"{stack.url}/api/v1/tasks/{before['task_id']}", headers=headers) for _ in range(20)
            ]
            return all(r.status_code == 200 for r in responses) and responses[0]

        kept = wait_until(
            every_worker_answers, timeout=5, interval=0.2, what="every gateway worker to reconnect"
        )
        assert kept.json()["status"] == "COMPLETED"
        after = httpx.post(
            stack.url + "/api/v1/tasks", headers=headers, json={"query": "What is 5+5?"}
        ).json()
        assert "10" in _wait_completed(stack.url, headers, after["task_id"])["result"]
        assert wait_until(lambda: httpx.get(stack.url + "/readiness").status_code == 200, what="readiness")
    finally:
        stack.stop()


def test_tasks_queued_while_the_orchestrator_restarts_still_run(tmp_path):
    stack = start_stack(tmp_path, TASKGATE_SIM_STEP_SECONDS="0.5")
    try:
        headers = {"X-API-Key": create_api_key(stack.env, "queued@example.com")}
        task_ids = [
            httpx.post(
                stack.url + "/api/v1/tasks", headers=headers, json={"query": f"What is {n}+1?"}
            ).json()["task_id"]
            for n in range(3)
        ]
        time.sleep(0.3)
        stack.orchestrator.stop()
        stack.orchestrator.env = {**stack.env, "TASKGATE_SIM_STEP_SECONDS": "0.05"}
        stack.orchestrator.start()

        for task_id in task_ids:
            task = wait_until(
                lambda task_id=task_id: (
                    (t := httpx.get(f"{stack.url}/api/v1/tasks/{task_id}", headers=headers).json())["status"]
                    in ("COMPLETED", "FAILED")
                    and t
                ),
                what=f"task {task_id} to finish after restart",
            )
            assert task["status"] in ("COMPLETED", "FAILED")
            if task["status"] == "FAILED":
                assert task["error"], task
    finally:
        stack.stop()


def _crash_mid_run(stack, email: str) -> tuple[dict, str]:
    """Submit a task, wait until it has done a step, kill -9 the orchestrator and start it again."""
    headers = {"X-API-Key": create_api_key(stack.env, email)}
    task_id = httpx.post(stack.url + "/api/v1/tasks", headers=headers, json={"query": "hi"}).json()["task_id"]

    def thinking() -> bool:
        page = httpx.get(f"{stack.url}/api/v1/tasks/{task_id}/events", headers=headers).json()
        return any(event["type"] == "AGENT_THINKING" for event in page["events"])

    wait_until(thinking, what="the task to reach its second step")
    stack.orchestrator.stop(signal.SIGKILL)
    stack.orchestrator.start()
    return headers, task_id


def test_a_task_interrupted_by_a_crash_resumes_from_its_checkpoint_on_start_up(tmp_path):
    stack = start_stack(tmp_path, TASKGATE_SIM_STEP_SECONDS="0.5")
    try:
        headers, task_id = _crash_mid_run(stack, "crash@example.com")

        frames = read_stream(stack.url + "/api/v1/stream/sse", headers, {"workflow_id": task_id})

        assert [int(f.id) for f in frames] == list(range(1, len(frames) + 1))
        assert [f.event for f in frames[-2:]] == ["WORKFLOW_COMPLETED", "done"]
        page = httpx.get(f"{stack.url}/api/v1/tasks/{task_id}/events", headers=headers).json()
        types = [event["type"] for event in page["events"]]
        for step in ("WORKFLOW_STARTED", "AGENT_STARTED", "AGENT_THINKING", "LLM_OUTPUT", "AGENT_COMPLETED"):
            assert types.count(step) == 1, step
        [resumed] = [event for event in page["events"] if event["type"] == "WORKFLOW_RESUMED"]
        assert resumed["payload"]["attempt"] == 2
        task = httpx.get(f"{stack.url}/api/v1/tasks/{task_id}", headers=headers).json()
        assert task["status"] == "COMPLETED"
    finally:
        stack.stop()


def test_a_task_whose_replica_dies_in_its_last_allowed_attempt_fails_with_the_reason(tmp_path):
    stack = start_stack(tmp_path, TASKGATE_SIM_STEP_SECONDS="1.0", TASKGATE_MAX_ATTEMPTS="1")
    try:
        headers, task_id = _crash_mid_run(stack, "crash-once@example.com")

        task = httpx.get(f"{stack.url}/api/v1/tasks/{task_id}", headers=headers).json()
        assert task["status"] == "FAILED"
        assert task["error"] == "The replica running the task stopped once; it is not resumed again"
        frames = read_stream(stack.url + "/api/v1/stream/sse", headers, {"workflow_id": task_id})
        assert [int(f.id) for f in frames] == list(range(1, len(frames) + 1))
        assert [f.event for f in frames[-2:]] == ["WORKFLOW_FAILED", "done"]
    finally:
        stack.stop()


def test_gthread_workers_serve_tasks_and_streams(tmp_path):
    stack = start_stack(tmp_path, TASKGATE_GATEWAY_WORKER_CLASS="gthread")
    try:
        headers = {"X-API-Key": create_api_key(stack.env, "gthread@example.com")}
        task_id = httpx.post(stack.url + "/api/v1/tasks", headers=headers, json={"query": "hello"}).json()[
            "task_id"
        ]

        frames = read_stream(stack.url + "/api/v1/stream/sse", headers, {"workflow_id": task_id})

        assert [int(f.id) for f in frames] == list(range(1, len(frames) + 1))
        assert frames[-1].event == "done"
    finally:
        stack.stop()


def test_orchestrator_refuses_to_start_without_a_service_token(tmp_path):
    env = base_env(tmp_path)
    del env["TASKGATE_SERVICE_TOKEN"]

    result = subprocess.run(
        taskgate_command("orchestrator"), env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "TASKGATE_SERVICE_TOKEN" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_without_redis_a_second_gateway_worker_is_refused_however_it_is_asked_for(tmp_path):
    env = base_env(tmp_path)
    config = str(REPO / "deploy" / "gunicorn.conf.py")
    asked = {
        "setting": (taskgate_command("gateway"), {**env, "TASKGATE_GATEWAY_WORKERS": "2"}),
        "gunicorn -w": ([sys.executable, "-m", "gunicorn", "--config", config, "-w", "2"], env),
    }
    for how, (command, command_env) in asked.items():
        result = subprocess.run(
            command, env=command_env, cwd=REPO, capture_output=True, text=True, timeout=60
        )
        output = result.stdout + result.stderr
        assert result.returncode != 0, how
        assert "TASKGATE_GATEWAY_WORKERS=2 needs TASKGATE_REDIS_URL" in output, (how, output)
        assert "Traceback" not in output, how
        with pytest.raises(httpx.TransportError):
            httpx.get("http://" + env["TASKGATE_GATEWAY_BIND"] + "/health", timeout=1)

    # Nor at run time: gunicorn's SIGTTIN (one more worker) is turned down with a warning.
    gateway = start_gateway(tmp_path)
    try:
        assert len(worker_pids(gateway.process.pid)) == 1
        gateway.process.send_signal(signal.SIGTTIN)
        wait_until(lambda: "needs TASKGATE_REDIS_URL" in gateway.log_path.read_text(), what="the warning")
        assert len(worker_pids(gateway.process.pid)) == 1
        assert httpx.get(gateway.url + "/health").status_code == 200
    finally:
        gateway.stop()


def test_keys_create_prints_a_usable_key(tmp_path):
    env = base_env(tmp_path)

    key = create_api_key(env, "cli@example.com")

    assert api_keys.normalise_api_key(key) == key
    assert os.path.exists(env["TASKGATE_DATABASE_URL"].removeprefix("sqlite:///"))
