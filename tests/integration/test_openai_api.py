"""The OpenAI-compatible API, driven by the official ``openai`` client against the running stack."""

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration

CHAT_MODEL = "taskgate-small"


@pytest.fixture(scope="module")
def client(stack, alice) -> openai.OpenAI:
    """An OpenAI client that authenticates as alice with her API key (``Authorization: Bearer``)."""
    with openai.OpenAI(base_url=stack.url + "/v1", api_key=alice.api_key, max_retries=0, timeout=60) as oai:
        yield oai


def task_id_of(completion_id: str) -> str:
    """Return the task id a completion id names (``chatcmpl-<task id>`` or ``cmpl-<task id>``)."""
    return completion_id.split("-", 1)[1]


def test_models_are_listed_and_retrieved(client) -> None:
    models = client.models.list()
    ids = [model.id for model in models.data]
    assert {"taskgate-small", "taskgate-medium", "taskgate-large", "taskgate-large-complex"} <= set(ids)
    assert all(model.object == "model" and model.owned_by == "taskgate" for model in models.data)
    model = client.models.retrieve("taskgate-medium")
    assert model.id == "taskgate-medium"
    assert model.created > 0


def test_a_chat_completion_runs_a_task_and_returns_its_answer_and_usage(client, alice) -> None:
    completion = client.chat.completions.create(
        model="taskgate-medium",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        max_tokens=50,
        temperature=0.2,
    )
    assert completion.object == "chat.completion"
    assert completion.model == "taskgate-medium"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert "4" in choice.message.content
    task = alice.client.get(f"/api/v1/tasks/{task_id_of(completion.id)}").json()
    assert task["status"] == "COMPLETED"
    assert task["result"] == choice.message.content
    assert task["model_used"] == "taskgate-sim-medium"
    assert completion.usage.prompt_tokens == task["usage"]["input_tokens"] > 0
    assert completion.usage.completion_tokens == task["usage"]["output_tokens"] > 0
    assert completion.usage.total_tokens == task["usage"]["total_tokens"]
    # The earlier messages and the options travel in the task's context.
    assert task["context"]["openai"] == {
        "model": "taskgate-medium",
        "messages": [{"role": "system", "content": "Answer briefly."}],
        "max_tokens": 50,
        "temperature": 0.2,
    }


def test_a_streamed_chat_completion_sends_one_chunk_per_delta_then_usage(client, alice) -> None:
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "What is 6*7?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [
        chunk.choices[0].delta.content
        for chunk in chunks[1:]
        if chunk.choices and chunk.choices[0].delta.content
    ]
    finals = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason == "stop"]
    assert len(finals) == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens > 0
    task_id = task_id_of(chunks[0].id)
    task = alice.client.get(f"/api/v1/tasks/{task_id}").json()
    assert "".join(deltas) == task["result"]
    assert "42" in task["result"]
    partials = [event for event in alice.events(task_id) if event["type"] == "LLM_PARTIAL"]
    assert len(deltas) == len(partials)
    assert chunks[-1].usage.total_tokens == task["usage"]["total_tokens"]


def test_a_stream_without_include_usage_has_no_usage_chunk(stack, alice) -> None:
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "What is 1+1?"}], "stream": True}
    with httpx.stream(
        "POST", stack.url + "/v1/chat/completions", json=body, headers=alice.headers, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["X-Session-ID"]
        frames = [line for line in response.iter_lines() if line]
    assert frames[-1] == "data: [DONE]"
    assert all(frame.startswith("data: ") for frame in frames)
    assert '"usage"' not in "".join(frames)


def test_a_legacy_completion_whole_and_streamed(client) -> None:
    completion = client.completions.create(model=CHAT_MODEL, prompt="What is 3+4?", max_tokens=20)
    assert completion.object == "text_completion"
    assert "7" in completion.choices[0].text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0
    chunks = list(
        client.completions.create(
            model=CHAT_MODEL, prompt="What is 3+4?", stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    assert text == completion.choices[0].text
    assert chunks[-1].usage.total_tokens > 0


def test_x_session_id_continues_the_conversation(client, alice) -> None:
    first = client.chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "What is 5+5?"}]
    )
    session_id = first.headers["X-Session-ID"]
    assert session_id
    second = client.chat.completions.with_raw_response.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "And doubled?"}],
        extra_headers={"X-Session-ID": session_id},
    )
    assert second.headers["X-Session-ID"] == session_id
    task_id = task_id_of(second.parse().id)
    assert alice.client.get(f"/api/v1/tasks/{task_id}").json()["session_id"] == session_id
    thinking = [event for event in alice.events(task_id) if event["type"] == "AGENT_THINKING"]
    assert thinking[0]["payload"]["history_turns"] == 1
    history = alice.client.get(f"/api/v1/sessions/{session_id}/history").json()
    assert [task["query"] for task in history["tasks"]] == ["What is 5+5?", "And doubled?"]


def test_another_users_session_id_starts_a_session_of_ones_own(client, alice, bob) -> None:
    session_id = client.chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "What is 9+1?"}]
    ).headers["X-Session-ID"]
    bobs = openai.OpenAI(base_url=str(client.base_url), api_key=bob.api_key, max_retries=0)
    with bobs:
        answer = bobs.chat.completions.with_raw_response.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "Hi"}],
            extra_headers={"X-Session-ID": session_id},
        )
    assert answer.headers["X-Session-ID"] == session_id
    assert bob.client.get(f"/api/v1/sessions/{session_id}").json()["task_count"] == 1
    assert alice.client.get(f"/api/v1/sessions/{session_id}").json()["task_count"] == 1


def test_an_unknown_model_is_not_found(client) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-unknown")
    assert raised.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-unknown", messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.body == {
        "message": "The model 'gpt-unknown' does not exist",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


def test_a_bad_key_is_an_authentication_error(stack) -> None:
    stranger = openai.OpenAI(base_url=stack.url + "/v1", api_key="sk_" + "0" * 64, max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError) as raised:
        stranger.models.list()
    assert raised.value.body["type"] == "authentication_error"
    assert raised.value.body["code"] == "invalid_api_key"
    assert raised.value.response.headers["WWW-Authenticate"] == 'Bearer realm="taskgate"'


def test_a_bad_body_is_a_bad_request_naming_the_param(client) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=CHAT_MODEL, messages=[])
    assert raised.value.body["param"] == "messages"
    assert raised.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}], temperature=5
        )
    assert raised.value.body["param"] == "temperature"


def test_the_rest_of_the_api_keeps_its_own_error_body(stack) -> None:
    body = httpx.get(stack.url + "/api/v1/tasks", timeout=10).json()
    assert body["error"] == "Authentication required"
    assert body["code"] == "unauthorized"
    openai_body = httpx.get(stack.url + "/v1/models", timeout=10).json()
    assert openai_body["error"]["type"] == "authentication_error"
