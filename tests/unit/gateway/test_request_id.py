"""Request and trace ids: what is accepted from the client, what is echoed and forwarded."""

import pytest

from gateway.middleware.request_id import accepted_request_id
from taskgate.trace_context import trace_id_from_traceparent

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.mark.parametrize("value", ["a", "req-1", "A.b_c:d-9", "x" * 128])
def test_well_formed_request_ids_are_accepted(value: str) -> None:
    assert accepted_request_id(value) == value


@pytest.mark.parametrize("value", [None, "", "x" * 129, "has space", "semi;colon", "ünïcode", "new\nline"])
def test_malformed_request_ids_are_refused(value: str | None) -> None:
    assert accepted_request_id(value) is None


def test_the_trace_id_comes_from_a_valid_traceparent() -> None:
    assert trace_id_from_traceparent(TRACEPARENT) == TRACE_ID


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-00f067aa0ba902b7",
    ],
)
def test_invalid_traceparents_give_no_trace_id(value: str | None) -> None:
    assert trace_id_from_traceparent(value) is None


def test_a_valid_request_id_is_echoed(client) -> None:
    response = client.simulate_get("/health", headers={"X-Request-ID": "client-id-1"})
    assert response.headers["X-Request-ID"] == "client-id-1"


def test_an_invalid_request_id_is_replaced(client) -> None:
    response = client.simulate_get("/health", headers={"X-Request-ID": "bad id"})
    assert response.headers["X-Request-ID"] != "bad id"
    assert accepted_request_id(response.headers["X-Request-ID"])


def test_the_request_id_is_in_error_bodies(client) -> None:
    response = client.simulate_get("/no/such/route", headers={"X-Request-ID": "client-id-2"})
    assert response.json["request_id"] == "client-id-2"


def test_a_client_traceparent_sets_the_trace_id_and_is_forwarded(client, orchestrator) -> None:
    response = client.simulate_get(
        "/api/v1/tasks", headers={"traceparent": TRACEPARENT, "X-Request-ID": "r-1"}
    )
    assert response.headers["X-Trace-ID"] == TRACE_ID
    _, _, context = orchestrator.calls_named("list_tasks")[0]
    assert (context.traceparent, context.request_id) == (TRACEPARENT, "r-1")


def test_without_a_traceparent_a_new_trace_is_started(client, orchestrator) -> None:
    response = client.simulate_get("/api/v1/tasks")
    trace_id = response.headers["X-Trace-ID"]
    _, _, context = orchestrator.calls_named("list_tasks")[0]
    assert trace_id_from_traceparent(context.traceparent) == trace_id
