"""The OpenAI-compatible routes with fakes: models, request mapping, answers, chunks and the error shape."""

import json

import falcon.testing
import grpc
import pytest

from gateway.app import Dependencies
from gateway.app import create_app
from gateway.errors import ApiError
from gateway.openai_errors import openai_error_for
from gateway.openai_stream import parse_frame
from gateway.resources.openai_requests import chat_completion_request
from gateway.resources.openai_requests import text_completion_request
from taskgate.orchestrator.v1 import common_pb2
from tests.unit.gateway.fakes import API_KEY
from tests.unit.gateway.fakes import FakeAdminStream
from tests.unit.gateway.fakes import FakeRpcError

ANSWER = "2 + 2 = 4."
DELTA_FRAMES = [
    b'id: 5\nevent: thread.message.delta\ndata: {"type":"LLM_PARTIAL","delta":"2 + 2"}\n\n',
    b": ping\n\n",
    b'id: 6\nevent: thread.message.delta\ndata: {"type":"LLM_PARTIAL","delta":" = 4."}\n\n',
    b"id: 9\nevent: done\ndata: [DONE]\n\n",
]


class FinishingAdminStream(FakeAdminStream):
    """Opens the canned frames and, as the real task would by then, ends the task in the orchestrator."""

    def __init__(self, orchestrator, frames, status=common_pb2.TASK_STATUS_COMPLETED, error="") -> None:
        super().__init__(frames)
        self._orchestrator = orchestrator
        self._status = status
        self._error = error

    def open(self, request, context):
        task = self._orchestrator.tasks[request.workflow_id]
        task.status = self._status
        task.result = ANSWER if self._status == common_pb2.TASK_STATUS_COMPLETED else ""
        task.error = self._error
        task.usage.prompt_tokens, task.usage.completion_tokens, task.usage.total_tokens = 20, 5, 25
        return super().open(request, context)


@pytest.fixture
def admin_stream(orchestrator) -> FinishingAdminStream:
    return FinishingAdminStream(orchestrator, DELTA_FRAMES)


@pytest.fixture
def client_with(settings, orchestrator):
    """Build a test client whose admin stream is the one given."""

    def build(stream: FakeAdminStream) -> falcon.testing.TestClient:
        deps = Dependencies.from_settings(settings, orchestrator=orchestrator, admin_stream=stream)
        return falcon.testing.TestClient(create_app(settings, deps), headers={"X-API-Key": API_KEY})

    return build


def chat(client, body=None, **kwargs):
    body = body or {"model": "taskgate-small", "messages": [{"role": "user", "content": "What is 2+2?"}]}
    return client.simulate_post("/v1/chat/completions", json=body, **kwargs)


def data_frames(text: str) -> list:
    frames = [frame for frame in text.split("\n\n") if frame]
    assert all(frame.startswith("data: ") for frame in frames)
    return [frame.removeprefix("data: ") for frame in frames]


def test_models_are_listed_and_one_is_read(client) -> None:
    listed = client.simulate_get("/v1/models").json
    assert listed["object"] == "list"
    ids = [model["id"] for model in listed["data"]]
    assert ids[:3] == ["taskgate-small", "taskgate-medium", "taskgate-large"]
    assert "taskgate-medium-supervisor" in ids
    assert client.simulate_get("/v1/models/taskgate-large").json == listed["data"][2]


def test_an_unknown_model_is_404_model_not_found_in_the_openai_shape(client) -> None:
    response = client.simulate_get("/v1/models/gpt-9")
    assert response.status_code == 404
    assert response.json == {
        "error": {
            "message": "The model 'gpt-9' does not exist",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


def test_a_chat_completion_submits_the_mapped_task_and_answers_when_it_ends(
    client, orchestrator, admin_stream
) -> None:
    body = {
        "model": "taskgate-large-complex",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
        ],
        "temperature": 0,
    }
    response = chat(client, body, headers={"X-Session-ID": "session-7"})
    assert response.status_code == 200, response.text
    ((_, submitted, context),) = orchestrator.calls_named("submit_task")
    assert submitted.query == "What is 2+2?"
    assert (submitted.model_tier, submitted.mode, submitted.session_id) == ("large", "complex", "session-7")
    assert json.loads(submitted.context_json) == {
        "openai": {
            "model": "taskgate-large-complex",
            "messages": [{"role": "system", "content": "Be brief."}],
            "temperature": 0,
        }
    }
    assert context.principal.user_id == "user-1"
    assert response.headers["X-Session-ID"] == "session-7"
    completion = response.json
    assert completion["id"] == "chatcmpl-task-1"
    assert completion["object"] == "chat.completion"
    assert completion["model"] == "taskgate-large-complex"
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": ANSWER, "refusal": None}
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"] == {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
    request, _, frames = admin_stream.opened[0]
    assert request.types == ("STREAM_END",)
    assert frames.closed


def test_a_streamed_chat_completion_sends_role_deltas_stop_usage_and_done(client, admin_stream) -> None:
    body = {
        "model": "taskgate-small",
        "messages": [{"role": "user", "content": "What is 2+2?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = chat(client, body)
    assert response.headers["content-type"] == "text/event-stream"
    frames = data_frames(response.text)
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(frame) for frame in frames[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [chunk["choices"][0]["delta"].get("content") for chunk in chunks[1:3]] == ["2 + 2", " = 4."]
    assert chunks[3]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[4]["choices"] == []
    assert chunks[4]["usage"]["total_tokens"] == 25
    assert admin_stream.opened[0][0].types == ("LLM_PARTIAL", "STREAM_END")


def test_a_stream_without_deltas_sends_the_answer_as_one_chunk_and_no_usage(
    client_with, orchestrator
) -> None:
    body = {"model": "taskgate-small", "prompt": "What is 2+2?", "stream": True}
    stream = FinishingAdminStream(orchestrator, [b"id: 3\nevent: done\ndata: [DONE]\n\n"])
    response = client_with(stream).simulate_post("/v1/completions", json=body)
    frames = data_frames(response.text)
    chunks = [json.loads(frame) for frame in frames[:-1]]
    assert [chunk["choices"][0]["text"] for chunk in chunks] == [ANSWER, ""]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(chunk["object"] == "text_completion" for chunk in chunks)
    assert "usage" not in chunks[-1]


def test_a_failed_task_is_a_server_error_whole_or_streamed(client_with, orchestrator) -> None:
    stream = FinishingAdminStream(orchestrator, DELTA_FRAMES, common_pb2.TASK_STATUS_FAILED, "model down")
    app_client = client_with(stream)
    response = chat(app_client)
    assert response.status_code == 500
    assert response.json["error"] == {
        "message": "The task failed: model down",
        "type": "server_error",
        "param": None,
        "code": "task_failed",
    }
    body = {"model": "taskgate-small", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    frames = data_frames(chat(app_client, body).text)
    assert json.loads(frames[-1])["error"]["code"] == "task_failed"


def test_a_legacy_completion_answers_a_text_completion(client, orchestrator) -> None:
    body = {"model": "taskgate-small", "prompt": ["What is 2+2?"], "max_tokens": 16}
    completion = client.simulate_post("/v1/completions", json=body).json
    assert completion["id"] == "cmpl-task-1"
    assert completion["object"] == "text_completion"
    assert completion["choices"][0]["text"] == ANSWER
    ((_, submitted, _),) = orchestrator.calls_named("submit_task")
    assert json.loads(submitted.context_json)["openai"]["max_tokens"] == 16


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "Hi"}]}, "model"),
        ({"model": "taskgate-small"}, "messages"),
        ({"model": "taskgate-small", "messages": []}, "messages"),
        ({"model": "taskgate-small", "messages": [{"role": "robot", "content": "Hi"}]}, "messages[0].role"),
        ({"model": "taskgate-small", "messages": [{"role": "assistant", "content": "Hi"}]}, "messages"),
        ({"model": "taskgate-small", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "taskgate-small", "messages": [{"role": "user", "content": " "}]}, "messages"),
        (
            {"model": "taskgate-small", "messages": [{"role": "user", "content": "Hi"}], "stream": "yes"},
            "stream",
        ),
        (
            {"model": "taskgate-small", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 0},
            "max_tokens",
        ),
        (
            {"model": "taskgate-small", "messages": [{"role": "user", "content": "Hi"}], "temperature": 3},
            "temperature",
        ),
        ({"model": "taskgate-small", "messages": [{"role": "user", "content": "Hi"}], "n": 2}, "n"),
    ],
)
def test_a_bad_chat_body_is_400_naming_the_param(client, orchestrator, body, param) -> None:
    response = chat(client, body)
    assert response.status_code == 400
    assert response.json["error"]["type"] == "invalid_request_error"
    assert response.json["error"]["param"] == param
    assert not orchestrator.calls_named("submit_task")


def test_a_bad_session_header_or_a_bad_prompt_is_400(client) -> None:
    response = chat(client, headers={"X-Session-ID": "not a valid id!"})
    assert response.json["error"]["param"] == "X-Session-ID"
    response = client.simulate_post("/v1/completions", json={"model": "taskgate-small", "prompt": 3})
    assert response.json["error"]["param"] == "prompt"
    response = client.simulate_post(
        "/v1/chat/completions", body="not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json["error"]["type"] == "invalid_request_error"


def test_middleware_errors_take_the_openai_shape_only_under_v1(client) -> None:
    response = client.simulate_get("/v1/models", headers={"X-API-Key": ""})
    assert response.status_code == 401
    assert response.json["error"]["type"] == "authentication_error"
    assert response.json["error"]["code"] == "invalid_api_key"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="taskgate"'
    response = client.simulate_get("/api/v1/tasks", headers={"X-API-Key": ""})
    assert response.json["code"] == "unauthorized"
    assert response.json["error"] == "Authentication required"
    assert client.simulate_get("/v1/nothing-here").json["error"]["code"] == "not_found"


def test_an_unavailable_orchestrator_is_503_with_retry_after(client, orchestrator) -> None:
    orchestrator.failures["submit_task"] = FakeRpcError(grpc.StatusCode.UNAVAILABLE)
    response = chat(client)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json["error"]["type"] == "server_error"


def test_rate_limit_and_validation_errors_map_to_openai_types() -> None:
    limited = openai_error_for(
        ApiError(429, "Rate limit exceeded", "rate_limited", fields={"window": "minute"})
    )
    assert limited == {
        "error": {
            "message": "Rate limit exceeded",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    invalid = openai_error_for(
        ApiError(
            400, "Request validation failed", "validation_failed", details=[{"field": "x", "message": "bad"}]
        )
    )
    assert invalid["error"]["message"] == "'x' bad"
    assert invalid["error"]["param"] == "x"


def test_request_mapping_and_frame_parsing_are_pure_functions() -> None:
    request = chat_completion_request(
        {"model": "taskgate-medium", "messages": [{"role": "user", "content": "Hi"}], "stream": True}, None
    )
    assert (request.submit.query, request.submit.model_tier, request.submit.mode) == ("Hi", "medium", "")
    assert request.stream and not request.include_usage
    assert (
        text_completion_request({"model": "taskgate-small", "prompt": "Hey"}, "s-1").submit.session_id
        == "s-1"
    )
    assert parse_frame(DELTA_FRAMES[0]) == ("thread.message.delta", '{"type":"LLM_PARTIAL","delta":"2 + 2"}')
    assert parse_frame(b": ping\n\n") == ("", "")
