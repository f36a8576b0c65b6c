"""Input of the task control and stream routes: the optional reason, the timeout, the stream URL."""

import pytest

from gateway.errors import ValidationError
from gateway.resources.task_requests import submit_task_request
from gateway.resources.tasks import stream_url
from gateway.validation import control_reason


@pytest.mark.parametrize(("body", "reason"), [({}, ""), ({"reason": None}, ""), ({"reason": "why"}, "why")])
def test_the_reason_is_optional(body, reason):
    assert control_reason(body) == reason


@pytest.mark.parametrize("reason", [7, ["why"], "x" * 1001])
def test_a_reason_must_be_a_short_string(reason):
    with pytest.raises(ValidationError) as raised:
        control_reason({"reason": reason})

    assert [detail["field"] for detail in raised.value.details] == ["reason"]


@pytest.mark.parametrize("timeout_seconds", [1, 86400])
def test_the_timeout_is_passed_on(timeout_seconds):
    request = submit_task_request({"query": "q", "timeout_seconds": timeout_seconds})

    assert request.timeout_seconds == timeout_seconds


def test_no_timeout_leaves_the_server_default():
    assert submit_task_request({"query": "q", "timeout_seconds": None}).timeout_seconds == 0


def test_stream_urls_escape_every_value():
    assert stream_url("task-1") == "/api/v1/stream/sse?workflow_id=task-1"
    assert stream_url("task-1", [("types", "A,B C/&"), ("last_event_id", "7")]) == (
        "/api/v1/stream/sse?workflow_id=task-1&types=A%2CB%20C%2F%26&last_event_id=7"
    )
