"""Credentials are masked in log records written by code that is not ours (gunicorn's error log)."""

import logging

import pytest

from gateway.log_redaction import CredentialRedactingFilter
from gateway.log_redaction import redact

API_KEY = "sk_" + "0a" * 32
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"GET /api/v1/stream/sse?workflow_id=wf-1&api_key={API_KEY}",
            "GET /api/v1/stream/sse?workflow_id=wf-1&api_key=[redacted]",
        ),
        ("/api/v1/stream/sse?token=abc.def&types=A", "/api/v1/stream/sse?token=[redacted]&types=A"),
        ("refresh_token=opaque-value access_token=x", "refresh_token=[redacted] access_token=[redacted]"),
        (f"key {API_KEY} used", "key [redacted] used"),
        ("sk-shannon-0123456789abcdef0123 here", "[redacted] here"),
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer [redacted]"),
        ("GET /api/v1/tasks?limit=5 HTTP/1.1", "GET /api/v1/tasks?limit=5 HTTP/1.1"),
    ],
)
def test_credentials_are_masked_and_nothing_else(text, expected) -> None:
    assert redact(text) == expected


def record(message: str, *args: object, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, message, args, exc_info)


def test_the_filter_masks_a_message_built_from_arguments() -> None:
    entry = record("Error handling request %s %s", "GET", f"/api/v1/stream/sse?api_key={API_KEY}")
    assert CredentialRedactingFilter().filter(entry) is True
    assert entry.getMessage() == "Error handling request GET /api/v1/stream/sse?api_key=[redacted]"


def test_the_filter_masks_the_traceback_too() -> None:
    try:
        raise ValueError(f"Invalid HTTP request line: 'GET /x?token={API_KEY}'")
    except ValueError as ex:
        entry = record("Error handling request", exc_info=(type(ex), ex, ex.__traceback__))
    CredentialRedactingFilter().filter(entry)
    formatted = logging.Formatter().format(entry)
    assert API_KEY not in formatted
    assert "token=[redacted]" in formatted


def test_a_record_without_credentials_is_left_as_it_is() -> None:
    entry = record("Booting worker with pid: %s", 1234)
    CredentialRedactingFilter().filter(entry)
    assert (entry.msg, entry.args) == ("Booting worker with pid: %s", (1234,))
