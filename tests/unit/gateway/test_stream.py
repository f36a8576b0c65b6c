"""The SSE proxy route: parameter checks, response headers, frame splitting, upstream errors."""

import io
import json

import falcon.testing
import pytest

from gateway.admin_stream import SseFrames
from gateway.admin_stream import StreamRequest
from gateway.admin_stream import _upstream_error
from gateway.caller import CallContext
from gateway.errors import ApiError
from gateway.resources.stream import stream_request


def request_for(query_string: str, headers: dict | None = None) -> StreamRequest:
    return stream_request(falcon.testing.create_req(query_string=query_string, headers=headers))


def invalid_fields(query_string: str, headers: dict | None = None) -> list[str]:
    with pytest.raises(ApiError) as raised:
        request_for(query_string, headers)
    return [detail["field"] for detail in raised.value.details]


def test_a_stream_request_with_every_parameter() -> None:
    assert request_for(
        "workflow_id=wf-1&types=LLM_OUTPUT,WORKFLOW_COMPLETED&last_event_id=7"
    ) == StreamRequest(workflow_id="wf-1", types=("LLM_OUTPUT", "WORKFLOW_COMPLETED"), last_event_id=7)


def test_the_last_event_id_header_wins_over_the_query() -> None:
    assert request_for("workflow_id=wf-1&last_event_id=7", {"Last-Event-ID": "12"}).last_event_id == 12
    assert request_for("workflow_id=wf-1&last_event_id=7", {"Last-Event-ID": ""}).last_event_id == 7


@pytest.mark.parametrize(
    ("query_string", "headers", "fields"),
    [
        ("", None, ["workflow_id"]),
        ("workflow_id=a%20b", None, ["workflow_id"]),
        ("workflow_id=wf&types=llm_output", None, ["types"]),
        ("workflow_id=wf&types=A,,B", None, ["types"]),
        ("workflow_id=wf&types=A;B", None, ["types"]),
        ("workflow_id=wf&last_event_id=-1", None, ["last_event_id"]),
        ("workflow_id=wf&last_event_id=abc", None, ["last_event_id"]),
        ("workflow_id=wf&last_event_id=1", {"Last-Event-ID": "x"}, ["Last-Event-ID"]),
        ("types=x&last_event_id=y", None, ["workflow_id", "types", "last_event_id"]),
    ],
)
def test_bad_stream_parameters_are_400(query_string, headers, fields) -> None:
    assert invalid_fields(query_string, headers) == fields


def test_the_stream_is_relayed_with_sse_headers(client, admin_stream) -> None:
    response = client.simulate_get(
        "/api/v1/stream/sse",
        params={"workflow_id": "wf-1", "types": "STREAM_END"},
        headers={"Last-Event-ID": "3"},
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.text == "retry: 3000\n\nid: 1\nevent: done\ndata: [DONE]\n\n"
    request, context, frames = admin_stream.opened[0]
    assert request == StreamRequest(workflow_id="wf-1", types=("STREAM_END",), last_event_id=3)
    assert context.principal.user_id == "user-1"
    assert frames.closed


def test_an_upstream_refusal_is_answered_before_the_stream(client, admin_stream) -> None:
    admin_stream.failure = ApiError(404, "Workflow not found", "not_found")
    response = client.simulate_get("/api/v1/stream/sse", params={"workflow_id": "wf-1"})
    assert response.status_code == 404
    assert response.json["error"] == "Workflow not found"


class ChunkedResponse:
    """Hands out the given chunks one read1 at a time, like a chunked upstream response."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.reads = 0
        self.closed = False

    def read1(self, size: int) -> bytes:
        self.reads += 1
        return self.chunks.pop(0) if self.chunks else b""

    def close(self) -> None:
        self.closed = True


class Connection:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_frames_are_yielded_as_soon_as_complete() -> None:
    response = ChunkedResponse(
        [b"retry: 3000\n\nid: 1\nevent: A\n", b"data: {}\n\n: ping\n\nid: 2", b"\ndata: x\n\n"]
    )
    frames = SseFrames(Connection(), response)
    assert next(frames) == b"retry: 3000\n\n"
    assert response.reads == 1
    assert next(frames) == b"id: 1\nevent: A\ndata: {}\n\n"
    assert next(frames) == b": ping\n\n"
    assert response.reads == 2
    assert next(frames) == b"id: 2\ndata: x\n\n"


def test_crlf_frames_are_split_too() -> None:
    frames = SseFrames(Connection(), ChunkedResponse([b"id: 1\r\ndata: a\r\n\r\nid: 2\r\ndata: b\r\n\r\n"]))
    assert list(frames) == [b"id: 1\r\ndata: a\r\n\r\n", b"id: 2\r\ndata: b\r\n\r\n"]


def test_the_end_of_the_upstream_ends_the_stream_and_closes_it() -> None:
    connection, response = Connection(), ChunkedResponse([b"id: 1\ndata: a\n\nincomplete"])
    assert list(SseFrames(connection, response)) == [b"id: 1\ndata: a\n\n"]
    assert connection.closed and response.closed


def test_closing_an_unstarted_stream_closes_the_upstream() -> None:
    connection, response = Connection(), ChunkedResponse([b"id: 1\n\n"])
    SseFrames(connection, response).close()
    assert connection.closed and response.closed


def test_an_upstream_read_error_ends_the_stream() -> None:
    class Failing(ChunkedResponse):
        def read1(self, size: int) -> bytes:
            raise TimeoutError

    connection = Connection()
    assert list(SseFrames(connection, Failing([]))) == []
    assert connection.closed


class ErrorResponse:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self._body = io.BytesIO(body)

    def read(self, size: int) -> bytes:
        return self._body.read(size)


def test_an_upstream_4xx_keeps_its_status_message_and_code() -> None:
    body = json.dumps({"error": "Workflow not found", "code": "not_found"}).encode()
    error = _upstream_error(ErrorResponse(404, body), CallContext(request_id="r"))
    assert (error.status_code, error.message, error.error_code) == (404, "Workflow not found", "not_found")


def test_an_upstream_4xx_without_json_gets_our_message() -> None:
    error = _upstream_error(ErrorResponse(400, b"<html>"), CallContext(request_id="r"))
    assert (error.status_code, error.message, error.error_code) == (400, "Bad request", "bad_request")


@pytest.mark.parametrize(("upstream", "status"), [(401, 500), (500, 500), (503, 503), (302, 500)])
def test_upstream_faults_never_show_their_text(upstream: int, status: int) -> None:
    body = json.dumps({"error": "Traceback in /srv/app.py", "code": "boom"}).encode()
    error = _upstream_error(ErrorResponse(upstream, body), CallContext(request_id="r"))
    assert error.status_code == status
    assert "Traceback" not in error.message and error.error_code != "boom"
