"""The OpenAI-compatible runner against a small chat-completions server written here.

The server answers by the last user message: a streamed answer with usage, a 429 then the
answer, a 5xx every time, a refusal (400), a hang (past the runner's timeout) and a slow stream
(to cancel mid-answer). The orchestrator runs with ``TASKGATE_RUNNER=openai`` pointing at it.
"""

import http.server
import json
import threading
import time

import httpx
import openai
import pytest

from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration

UPSTREAM_KEY = "upstream-secret-key"
DELTAS = ["Hello", " from", " the model."]
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
# USD per 1K prompt and completion tokens of the fake model.
PRICES = (1.0, 2.0)
TIMEOUT_SECONDS = 1.0
MAX_RETRIES = 2
SLOW_WORDS = 30
SLOW_DELAY_SECONDS = 0.3
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


class ChatServer(http.server.ThreadingHTTPServer):
    """A chat-completions server whose behaviour each test picks with the user's message."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.requests: list[tuple[dict, dict]] = []
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def record(self, body: dict, headers: dict) -> int:
        """Keep a request and return how many times its query has been asked."""
        query = body["messages"][-1]["content"]
        with self.lock:
            self.requests.append((body, headers))
            self.calls[query] = self.calls.get(query, 0) + 1
            return self.calls[query]

    def bodies_for(self, query: str) -> list[dict]:
        with self.lock:
            return [body for body, _ in self.requests if body["messages"][-1]["content"] == query]


class ChatHandler(http.server.BaseHTTPRequestHandler):
    """Speak the streamed chat completions protocol (HTTP/1.0: the body ends with the connection)."""

    server: ChatServer

    def log_message(self, format: str, *args) -> None:
        """Keep the test output quiet."""

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        count = self.server.record(body, dict(self.headers))
        query = body["messages"][-1]["content"]
        if self.path != "/v1/chat/completions":
            self._error(404, "no such path")
        elif query.startswith("flaky") and count == 1:
            self._error(429, "slow down", {"Retry-After": "0"})
        elif query.startswith("broken"):
            self._error(503, "overloaded")
        elif query.startswith("refuse"):
            self._error(400, "this model does not take such requests")
        elif query.startswith("hang"):
            time.sleep(TIMEOUT_SECONDS * 3)
        else:
            self._stream(body, slow=query.startswith("slow"))

    def _error(self, status: int, message: str, headers: dict | None = None) -> None:
        payload = json.dumps({"error": {"message": message, "type": "test", "code": None}}).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, body: dict, slow: bool) -> None:
        """Stream the answer's deltas (a slow one: 30 words, 0.3 s apart), then usage when asked."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        deltas = [f" word{index}" for index in range(SLOW_WORDS)] if slow else DELTAS
        try:
            for delta in deltas:
                self._data(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "model": body["model"],
                        "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}],
                    }
                )
                time.sleep(SLOW_DELAY_SECONDS if slow else 0)
            self._data(
                {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
            )
            if body.get("stream_options", {}).get("include_usage"):
                usage = {
                    "prompt_tokens": PROMPT_TOKENS,
                    "completion_tokens": COMPLETION_TOKENS,
                    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                }
                self._data(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "model": body["model"],
                        "choices": [],
                        "usage": usage,
                    }
                )
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            return

    def _data(self, chunk: dict) -> None:
        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.flush()


@pytest.fixture(scope="module")
def chat_server():
    server = ChatServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def openai_stack(tmp_path_factory, chat_server):
    running = start_stack(
        tmp_path_factory.mktemp("openai-runner"),
        TASKGATE_RUNNER="openai",
        TASKGATE_OPENAI_BASE_URL=chat_server.url,
        TASKGATE_OPENAI_API_KEY=UPSTREAM_KEY,
        TASKGATE_OPENAI_MODEL_SMALL="fake-small",
        TASKGATE_OPENAI_MODEL_LARGE="fake-large",
        TASKGATE_OPENAI_PRICES=json.dumps({"fake-small": list(PRICES)}),
        TASKGATE_OPENAI_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        TASKGATE_OPENAI_MAX_RETRIES=str(MAX_RETRIES),
        TASKGATE_OPENAI_RETRY_BACKOFF_SECONDS="0.05",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(openai_stack):
    key = create_api_key(openai_stack.env, "runner@example.com")
    with httpx.Client(base_url=openai_stack.url, headers={"X-API-Key": key}, timeout=30) as client:
        client.api_key = key
        yield client


def run(api, query: str, **fields) -> dict:
    response = api.post("/api/v1/tasks", json={"query": query, **fields})
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    return wait_until(lambda: finished(api, task_id), timeout=30, what=f"task {task_id} to finish")


def finished(api, task_id: str) -> dict | None:
    task = api.get(f"/api/v1/tasks/{task_id}").json()
    return task if task["status"] in TERMINAL else None


def events_of(api, task_id: str) -> list[dict]:
    return api.get(f"/api/v1/tasks/{task_id}/events", params={"limit": 200}).json()["events"]


def test_a_streamed_answer_becomes_partials_output_usage_and_cost(api, chat_server) -> None:
    task = run(api, "stream one")
    assert task["status"] == "COMPLETED", task
    assert task["result"] == "".join(DELTAS)
    assert task["model_used"] == "fake-small"
    assert task["provider"] == "openai-compatible"
    assert task["usage"]["input_tokens"] == PROMPT_TOKENS
    assert task["usage"]["output_tokens"] == COMPLETION_TOKENS
    expected_cost = (PROMPT_TOKENS * PRICES[0] + COMPLETION_TOKENS * PRICES[1]) / 1000
    assert task["usage"]["estimated_cost"] == pytest.approx(expected_cost)
    events = events_of(api, task["task_id"])
    assert [event["payload"]["delta"] for event in events if event["type"] == "LLM_PARTIAL"] == DELTAS
    output = [event for event in events if event["type"] == "LLM_OUTPUT"]
    assert output[0]["payload"]["response"] == "".join(DELTAS)
    body, headers = chat_server.requests[-1]
    assert body["model"] == "fake-small"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_the_tier_picks_the_model_and_the_session_is_sent_as_history(api, chat_server) -> None:
    first = run(api, "stream about history", model_tier="large")
    assert first["model_used"] == "fake-large"
    # A model without a configured price costs nothing rather than a made-up amount.
    assert first["usage"]["estimated_cost"] == 0
    second = run(api, "stream the follow-up", session_id=first["session_id"])
    assert second["status"] == "COMPLETED"
    messages = chat_server.bodies_for("stream the follow-up")[-1]["messages"]
    assert messages == [
        {"role": "user", "content": "stream about history"},
        {"role": "assistant", "content": "".join(DELTAS)},
        {"role": "user", "content": "stream the follow-up"},
    ]


def test_a_429_is_retried_and_then_succeeds(api, chat_server) -> None:
    task = run(api, "flaky once")
    assert task["status"] == "COMPLETED", task
    assert len(chat_server.bodies_for("flaky once")) == 2
    retries = [event for event in events_of(api, task["task_id"]) if event["payload"].get("step") == "retry"]
    assert len(retries) == 1


def test_a_server_error_is_retried_a_bounded_number_of_times_then_fails(api, chat_server) -> None:
    task = run(api, "broken always")
    assert task["status"] == "FAILED"
    assert task["error"] == (
        f"The model server answered HTTP 503: overloaded; gave up after {MAX_RETRIES + 1} attempts"
    )
    assert len(chat_server.bodies_for("broken always")) == MAX_RETRIES + 1


def test_a_refusal_fails_at_once_with_the_servers_reason(api, chat_server) -> None:
    task = run(api, "refuse this")
    assert task["status"] == "FAILED"
    assert (
        task["error"]
        == "The model server refused the request (HTTP 400): this model does not take such requests"
    )
    assert len(chat_server.bodies_for("refuse this")) == 1


def test_a_server_that_hangs_times_out_with_a_clear_error(api) -> None:
    task = run(api, "hang forever")
    assert task["status"] == "FAILED"
    assert task["error"] == f"The model server did not answer within {TIMEOUT_SECONDS:g} s"


def test_a_task_is_cancelled_between_two_chunks(api) -> None:
    task_id = api.post("/api/v1/tasks", json={"query": "slow stream"}).json()["task_id"]
    wait_until(
        lambda: any(event["type"] == "LLM_PARTIAL" for event in events_of(api, task_id)),
        timeout=15,
        what="the first partial",
    )
    assert api.post(f"/api/v1/tasks/{task_id}/cancel", json={}).status_code == 202
    task = wait_until(lambda: finished(api, task_id), timeout=15, what="the cancelled task")
    assert task["status"] == "CANCELLED"
    partials = [event for event in events_of(api, task_id) if event["type"] == "LLM_PARTIAL"]
    assert 0 < len(partials) < SLOW_WORDS


def test_the_openai_routes_serve_the_runners_answer(openai_stack, api) -> None:
    with openai.OpenAI(base_url=openai_stack.url + "/v1", api_key=api.api_key, max_retries=0) as client:
        chunks = list(
            client.chat.completions.create(
                model="taskgate-small",
                messages=[{"role": "user", "content": "stream through the gateway"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    deltas = [
        chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content
    ]
    assert deltas == DELTAS
    assert chunks[-1].usage.prompt_tokens == PROMPT_TOKENS
    assert chunks[-1].usage.completion_tokens == COMPLETION_TOKENS


def test_a_failed_task_is_an_openai_server_error(openai_stack, api) -> None:
    client = openai.OpenAI(base_url=openai_stack.url + "/v1", api_key=api.api_key, max_retries=0)
    with client, pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(
            model="taskgate-small", messages=[{"role": "user", "content": "refuse it"}]
        )
    assert raised.value.body["code"] == "task_failed"
    assert "HTTP 400" in raised.value.body["message"]


def test_a_task_requiring_approval_waits_then_asks_the_model_the_approved_query(api, chat_server) -> None:
    response = api.post("/api/v1/tasks", json={"query": "stream once approved", "require_approval": True})
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]

    def waiting() -> dict | None:
        task = api.get(f"/api/v1/tasks/{task_id}").json()
        return task if task["pending_approval"] else None

    task = wait_until(waiting, timeout=15, what=f"task {task_id} to wait for approval")
    assert task["status"] == "RUNNING"
    assert task["pending_approval"]["proposed_action"]["query"] == "stream once approved"
    assert chat_server.bodies_for("stream once approved") == []
    decision = api.post(
        "/api/v1/approvals/decision",
        json={
            "workflow_id": task_id,
            "approval_id": task["pending_approval"]["approval_id"],
            "approved": True,
            "modified_action": {"action": "run_task", "query": "stream the approved query"},
        },
    )
    assert decision.status_code == 200, decision.text
    done = wait_until(lambda: finished(api, task_id), timeout=30, what=f"task {task_id} to finish")
    assert done["status"] == "COMPLETED", done
    assert done["result"] == "".join(DELTAS)
    # The model is asked only once, and only what the approver approved.
    assert len(chat_server.bodies_for("stream the approved query")) == 1
    assert chat_server.bodies_for("stream once approved") == []
