"""A gateway told to stop (SIGTERM) ends its open event streams (SSE, WebSocket) at once and exits cleanly.

An event stream has no end of its own, so without this a worker would wait out gunicorn's whole
graceful timeout (30 s, longer than the 20 s these tests allow before killing it) for every
stream open or recently closed; its clients resume elsewhere with Last-Event-ID.
"""

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until
from tests.integration.sse import StreamFollower

pytestmark = pytest.mark.integration

# A task that runs for minutes, so its WebSocket stream stays open.
SLOW_TASK = {"query": "Hi", "context": {"simulation": {"partials": 100, "step_seconds": 5}}}


def test_sigterm_ends_open_and_abandoned_streams_and_the_gateway_exits_cleanly(tmp_path):
    stack = start_stack(tmp_path)
    try:
        key = create_api_key(stack.env, "shutdown@example.com")
        task = httpx.post(stack.url + "/api/v1/tasks", headers={"X-API-Key": key}, json=SLOW_TASK, timeout=30)
        assert task.status_code == 200, task.text
        ws_url = stack.url.replace("http://", "ws://") + "/api/v1/stream/ws"
        with connect(f"{ws_url}?workflow_id={task.json()['task_id']}&api_key={key}", open_timeout=30) as ws:
            ws.recv(timeout=60)
            # One feed a client keeps reading, one a client opened and dropped without a word.
            headers = {"X-API-Key": key, "Last-Event-ID": "0"}
            kept = StreamFollower(stack.url + "/api/v1/stream/tasks", headers)
            kept.start()
            kept.first_frame.wait(60)
            with httpx.stream(
                "GET", stack.url + "/api/v1/stream/tasks", headers=headers, timeout=30
            ) as dropped:
                assert dropped.status_code == 200
                next(dropped.iter_lines())

            assert stack.gateway.stop() == 0, stack.gateway.log_path.read_text()
            wait_until(kept.ended.is_set, timeout=30, what="the kept feed to end")
            with pytest.raises(ConnectionClosed):
                while True:
                    ws.recv(timeout=30)
        assert "graceful timeout" not in stack.gateway.log_path.read_text()
    finally:
        stack.stop()
