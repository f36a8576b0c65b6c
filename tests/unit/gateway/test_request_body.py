"""Request bodies: the size cap (declared and chunked) and the JSON requirement."""

import io
import json

import falcon.testing
import pytest

from gateway.errors import ApiError
from gateway.middleware.body_limit import CappedStream
from tests.unit.gateway.fakes import API_KEY


def post(client, body: bytes, headers: dict | None = None):
    return client.simulate_post(
        "/api/v1/tasks", body=body, headers={"Content-Type": "application/json", **(headers or {})}
    )


def test_a_declared_length_over_the_cap_is_413_before_reading(client, orchestrator) -> None:
    response = post(client, b"{" + b" " * 5000 + b"}")
    assert response.status_code == 413
    assert response.json["code"] == "payload_too_large"
    assert orchestrator.calls_named("submit_task") == []


def post_chunked(client, body: bytes) -> tuple[str, dict]:
    """Send a body without Content-Length, as a server hands over a chunked request."""
    environ = falcon.testing.create_environ(
        "/api/v1/tasks",
        method="POST",
        body=body,
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked", "X-API-Key": API_KEY},
    )
    del environ["CONTENT_LENGTH"]
    start_response = falcon.testing.StartResponseMock()
    result = b"".join(client.app(environ, start_response))
    return start_response.status, json.loads(result)


def test_a_chunked_body_over_the_cap_is_413(client) -> None:
    status, body = post_chunked(client, b'{"query": "' + b"x" * 5000 + b'"}')
    assert (status, body["code"]) == ("413 Content Too Large", "payload_too_large")


def test_a_chunked_body_under_the_cap_is_read(client, orchestrator) -> None:
    status, _ = post_chunked(client, b'{"query": "chunked"}')
    assert status == "200 OK"
    assert orchestrator.calls_named("submit_task")[0][1].query == "chunked"


def test_the_capped_stream_counts_every_read() -> None:
    stream = CappedStream(io.BytesIO(b"abcdef"), limit=4)
    assert stream.read(2) == b"ab"
    with pytest.raises(ApiError) as raised:
        stream.read()
    assert raised.value.status_code == 413
    assert CappedStream(io.BytesIO(b"abcd"), limit=4).read() == b"abcd"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
def test_a_body_of_another_media_type_is_415_even_when_it_is_json(client, content_type) -> None:
    response = client.simulate_post(
        "/api/v1/tasks", body=b'{"query": "q"}', headers={"Content-Type": content_type}
    )
    assert response.status_code == 415
    assert response.json["code"] == "unsupported_media_type"


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded"])
def test_an_unlabelled_or_curl_form_body_is_taken_when_it_is_json(client, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert client.simulate_post("/api/v1/tasks", body=b'{"query": "q"}', headers=headers).status_code == 200
    form = client.simulate_post("/api/v1/tasks", body=b"query=q", headers=headers)
    assert (form.status_code, form.json["code"]) == (415, "unsupported_media_type")


def test_json_with_parameters_or_a_json_suffix_is_accepted(client) -> None:
    assert (
        post(client, b'{"query": "q"}', {"Content-Type": "application/json; charset=utf-8"}).status_code
        == 200
    )
    assert post(client, b'{"query": "q"}', {"Content-Type": "application/vnd.api+json"}).status_code == 200


@pytest.mark.parametrize("body", [b"", b"{", b'{"query": NaN}', b"[1]", b'"text"', b"\xff\xfe", b"[" * 3000])
def test_a_body_that_is_not_a_json_object_is_400(client, body) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert response.json["code"] == "bad_request"
