"""Event streams served by stream processes (``taskgate streams``) apart from the orchestrator.

Without Redis the orchestrator relays its events over a Unix socket; with Redis the stream
processes read the Redis Streams bus. Either way the watcher gets every event once, in order, and
the orchestrator's own admin server holds none of the streams.
"""

import json
import signal
import ssl
import threading

import grpc
import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.integration.processes import create_api_key
from tests.integration.processes import wait_until
from tests.integration.sse import read_stream
from tests.integration.stream_metrics import metric_value
from tests.integration.stream_processes import ResumingWatcher
from tests.integration.stream_processes import start_stream_stack
from tests.tls_certificates import issue_certificates

SETTLE_SECONDS = 60.0


def _simulated(partials: int, step_seconds: float) -> dict:
    return {"context": {"simulation": {"partials": partials, "step_seconds": step_seconds}}}


def _submit(stack, headers: dict, **fields) -> str:
    response = httpx.post(
        stack.url + "/api/v1/tasks", headers=headers, json={"query": "Stream, please.", **fields}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["task_id"]


def _stored_seqs(stack, headers: dict, task_id: str) -> list[int]:
    response = httpx.get(
        f"{stack.url}/api/v1/tasks/{task_id}/events", headers=headers, params={"limit": 200}, timeout=30
    )
    assert response.status_code == 200, response.text
    return [event["seq"] for event in response.json()["events"]]


@pytest.fixture(params=["sqlite", "postgres"])
def store_overrides(request) -> dict:
    """SQLite with the orchestrator's relay, or PostgreSQL with the Redis Streams bus."""
    if request.param == "sqlite":
        return {}
    postgres = request.getfixturevalue("postgres_server")
    redis = request.getfixturevalue("redis_server")
    return {"TASKGATE_DATABASE_URL": postgres.create_database(), "TASKGATE_REDIS_URL": redis.url}


def test_a_live_stream_is_served_by_a_stream_process_every_event_once_in_order(tmp_path, store_overrides):
    stack = start_stream_stack(tmp_path, stream_processes=2, **store_overrides)
    try:
        headers = {"X-API-Key": create_api_key(stack.env, "streams@example.com")}
        task_id = _submit(stack, headers, **_simulated(40, 0.05))
        watcher = ResumingWatcher(stack.url + "/api/v1/stream/sse", headers, task_id)
        reader = threading.Thread(target=watcher.run, daemon=True)
        reader.start()

        # While the stream is open, the orchestrator's own admin server holds none of it.
        wait_until(lambda: watcher.seqs, timeout=SETTLE_SECONDS, what="the first event")
        orchestrator_metrics = stack.orchestrator.admin_url + "/metrics"
        assert metric_value(orchestrator_metrics, "taskgate_bus_subscriptions") == 0
        reader.join(timeout=SETTLE_SECONDS)
        assert watcher.done, watcher
        assert watcher.connections == 1
        assert watcher.seqs == list(range(1, len(watcher.seqs) + 1))
        assert watcher.seqs == _stored_seqs(stack, headers, task_id)

        # The caller's task feed is served there too, the task's whole life in it.
        feed = read_stream(stack.url + "/api/v1/stream/tasks", headers, stop_after=2)
        assert [(frame.event, frame.json()["status"]) for frame in feed] == [
            ("task.created", "QUEUED"),
            ("task.status", "RUNNING"),
        ]
        assert {frame.json()["task_id"] for frame in feed} == {task_id}

        # Other users' workflows stay hidden, as on the orchestrator's admin server.
        other = {"X-API-Key": create_api_key(stack.env, "other@example.com")}
        refused = httpx.get(
            stack.url + "/api/v1/stream/sse", headers=other, params={"workflow_id": task_id}, timeout=30
        )
        assert refused.status_code == 404, refused.text
    finally:
        stack.stop()


def test_killing_a_stream_process_loses_no_event_its_watchers_resume_on_another(tmp_path, store_overrides):
    stack = start_stream_stack(tmp_path, stream_processes=2, **store_overrides)
    try:
        headers = {"X-API-Key": create_api_key(stack.env, "kill@example.com")}
        task_id = _submit(stack, headers, **_simulated(120, 0.1))
        watchers = [ResumingWatcher(stack.url + "/api/v1/stream/sse", headers, task_id) for _ in range(8)]
        readers = [threading.Thread(target=watcher.run, daemon=True) for watcher in watchers]
        for reader in readers:
            reader.start()
        wait_until(lambda: all(watcher.seqs for watcher in watchers), timeout=SETTLE_SECONDS, what="streams")

        # The process holding more connections surely holds some of the watchers.
        victim = max(stack.streams, key=lambda process: process.open_sockets())
        victim.stop(signal.SIGKILL)
        survivor = next(process for process in stack.streams if process is not victim)
        for reader in readers:
            reader.join(timeout=SETTLE_SECONDS * 2)

        stored = _stored_seqs(stack, headers, task_id)
        assert stored == list(range(1, len(stored) + 1))
        for watcher in watchers:
            assert watcher.done, watcher
            assert watcher.seqs == stored, watcher
        assert any(watcher.connections > 1 for watcher in watchers)
        assert survivor.process.poll() is None
    finally:
        stack.stop()


def test_a_stream_process_stopped_gracefully_ends_its_streams_and_exits_zero(tmp_path):
    stack = start_stream_stack(tmp_path, stream_processes=1)
    try:
        headers = {"X-API-Key": create_api_key(stack.env, "graceful@example.com")}
        task_id = _submit(stack, headers, **_simulated(200, 0.1))
        watcher = ResumingWatcher(stack.url + "/api/v1/stream/sse", headers, task_id)
        reader = threading.Thread(target=watcher.run, args=(1,), daemon=True)
        reader.start()
        wait_until(lambda: watcher.seqs, timeout=SETTLE_SECONDS, what="the first event")
        assert stack.streams[0].stop(signal.SIGTERM) == 0
        reader.join(timeout=SETTLE_SECONDS)
        assert not reader.is_alive()
        assert not watcher.done
    finally:
        stack.stop()


def test_stream_processes_speak_mutual_tls_with_the_orchestrators_settings(tmp_path):
    (tmp_path / "certificates").mkdir()
    certificates = issue_certificates(tmp_path / "certificates")
    stack = start_stream_stack(
        tmp_path,
        stream_processes=1,
        grpc_credentials=grpc.ssl_channel_credentials(
            root_certificates=certificates.ca.read_bytes(),
            private_key=certificates.client.key.read_bytes(),
            certificate_chain=certificates.client.cert.read_bytes(),
        ),
        TASKGATE_TLS_CERT_FILE=str(certificates.server.cert),
        TASKGATE_TLS_KEY_FILE=str(certificates.server.key),
        TASKGATE_TLS_CA_FILE=str(certificates.ca),
        TASKGATE_TLS_REQUIRE_CLIENT_CERT="1",
        TASKGATE_TLS_CLIENT_CERT_FILE=str(certificates.client.cert),
        TASKGATE_TLS_CLIENT_KEY_FILE=str(certificates.client.key),
    )
    try:
        headers = {"X-API-Key": create_api_key(stack.env, "tls@example.com")}
        task_id = _submit(stack, headers, **_simulated(5, 0.05))
        watcher = ResumingWatcher(stack.url + "/api/v1/stream/sse", headers, task_id)
        watcher.run()
        assert watcher.done, watcher
        assert watcher.seqs == _stored_seqs(stack, headers, task_id)

        # Without the CA's client certificate the stream port refuses the connection.
        stream_url = "https://" + stack.env["TASKGATE_STREAM_ADDR"] + "/health"
        with pytest.raises(httpx.TransportError):
            httpx.get(stream_url, verify=ssl.create_default_context(cafile=str(certificates.ca)), timeout=30)
    finally:
        stack.stop()


def test_a_websocket_stream_is_served_by_a_stream_process(tmp_path):
    stack = start_stream_stack(tmp_path, stream_processes=1)
    try:
        headers = {"X-API-Key": create_api_key(stack.env, "ws@example.com")}
        task_id = _submit(stack, headers, **_simulated(10, 0.05))
        url = stack.url.replace("http://", "ws://", 1) + "/api/v1/stream/ws?workflow_id=" + task_id
        seqs = []
        with connect(url, additional_headers=headers, open_timeout=SETTLE_SECONDS) as ws:
            try:
                while True:
                    seqs.append(json.loads(ws.recv(timeout=SETTLE_SECONDS))["seq"])
            except ConnectionClosed:
                pass
            assert ws.close_code == 1000
        assert seqs == _stored_seqs(stack, headers, task_id)
    finally:
        stack.stop()
