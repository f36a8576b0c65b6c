"""A refused submission's budget: the 429's body code and window, Retry-After and the X-Budget-* headers."""

import grpc

from gateway.errors import error_for_rpc
from tests.unit.gateway.fakes import FakeRpcError

MESSAGE = "Over this API key's token budget per minute; try again when it resets"
TRAILING = (
    ("taskgate-error-code", "token_budget_exceeded"),
    ("retry-after", "17"),
    ("taskgate-budget-window", "tokens_minute"),
    ("taskgate-budget-scope", "key"),
    ("taskgate-budget-limit", "500"),
    ("taskgate-budget-used", "731"),
    ("taskgate-budget-reset", "1924992060"),
)


def test_a_budget_refusal_is_a_429_with_its_window_and_headers() -> None:
    error = error_for_rpc(FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, MESSAGE, TRAILING))
    assert (error.status_code, error.error_code, error.message) == (429, "token_budget_exceeded", MESSAGE)
    assert error.fields == {"window": "tokens_minute"}
    assert error.headers == {
        "Retry-After": "17",
        "X-Budget-Window": "tokens_minute",
        "X-Budget-Scope": "key",
        "X-Budget-Limit": "500",
        "X-Budget-Used": "731",
        "X-Budget-Reset": "1924992060",
    }


def test_a_cost_refusal_keeps_its_dollars_and_drops_malformed_values() -> None:
    trailing = (
        ("taskgate-error-code", "cost_budget_exceeded"),
        ("taskgate-budget-window", "cost_day"),
        ("taskgate-budget-limit", "2.5"),
        ("taskgate-budget-used", "bad\r\nX-Injected: 1"),
    )
    error = error_for_rpc(FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "Over budget", trailing))
    assert (error.error_code, error.fields) == ("cost_budget_exceeded", {"window": "cost_day"})
    # Without a retry-after from the orchestrator the client is still told when to come back.
    assert error.headers == {"X-Budget-Window": "cost_day", "X-Budget-Limit": "2.5", "Retry-After": "1"}


def test_a_budget_code_on_another_status_adds_no_budget_headers() -> None:
    error = error_for_rpc(FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "Conflict", TRAILING))
    assert error.status_code == 409 and error.fields is None and "X-Budget-Scope" not in (error.headers or {})


def test_a_resource_exhausted_without_a_budget_stays_rate_limited() -> None:
    error = error_for_rpc(FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "Stream fell behind"))
    assert (error.status_code, error.error_code, error.fields) == (429, "rate_limited", None)
