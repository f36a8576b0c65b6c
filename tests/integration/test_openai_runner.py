"""The OpenAI-compatible runner against a small chat-completions server (``chat_server.py``).

The server answers by the last user message: a streamed answer with usage, a 429 then the
answer, a 5xx every time, a refusal (400), a hang (past the runner's timeout) and a slow stream
(to cancel mid-answer). The orchestrator runs with ``TASKGATE_RUNNER=openai`` pointing at it.
"""

import json

import httpx
import openai
import pytest

from tests.integration.chat_server import COMPLETION_TOKENS
from tests.integration.chat_server import DELTAS
from tests.integration.chat_server import PROMPT_TOKENS
from tests.integration.chat_server import SLOW_WORDS
from tests.integration.chat_server import serving_chat
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration

UPSTREAM_KEY = "upstream-secret-key"
# USD per 1K prompt and completion tokens of the fake model.
PRICES = (1.0, 2.0)
TIMEOUT_SECONDS = 1.0
MAX_RETRIES = 2
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


@pytest.fixture(scope="module")
def chat_server():
    # A hang outlasts the runner's timeout.
    with serving_chat(hang_seconds=TIMEOUT_SECONDS * 3) as server:
        yield server


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


@pytest.mark.parametrize(
    ("modified_action", "approved_query"),
    [
        ({"action": "run_task", "query": "stream the approved query"}, "stream the approved query"),
        # A string is the query as the approver rewrote it.
        ("stream the rewritten query", "stream the rewritten query"),
    ],
    ids=["object", "string"],
)
def test_a_task_requiring_approval_waits_then_asks_the_model_the_approved_query(
    api, chat_server, modified_action, approved_query
) -> None:
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
            "modified_action": modified_action,
        },
    )
    assert decision.status_code == 200, decision.text
    done = wait_until(lambda: finished(api, task_id), timeout=30, what=f"task {task_id} to finish")
    assert done["status"] == "COMPLETED", done
    assert done["result"] == "".join(DELTAS)
    # The model is asked only once, and only what the approver approved.
    assert len(chat_server.bodies_for(approved_query)) == 1
    assert chat_server.bodies_for("stream once approved") == []
