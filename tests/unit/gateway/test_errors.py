"""The gRPC-to-HTTP table, the single error body and the error handlers."""

import json

import falcon
import falcon.testing
import grpc
import pytest

from gateway.errors import ApiError
from gateway.errors import error_for_rpc
from gateway.errors import serialize_error
from tests.unit.gateway.fakes import FakeRpcError

TABLE = [
    (grpc.StatusCode.INVALID_ARGUMENT, 400, "validation_failed"),
    (grpc.StatusCode.OUT_OF_RANGE, 400, "bad_request"),
    (grpc.StatusCode.UNAUTHENTICATED, 401, "unauthorized"),
    (grpc.StatusCode.PERMISSION_DENIED, 403, "forbidden"),
    (grpc.StatusCode.NOT_FOUND, 404, "not_found"),
    (grpc.StatusCode.ALREADY_EXISTS, 409, "conflict"),
    (grpc.StatusCode.ABORTED, 409, "conflict"),
    (grpc.StatusCode.FAILED_PRECONDITION, 409, "conflict"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "rate_limited"),
    (grpc.StatusCode.CANCELLED, 503, "unavailable"),
    (grpc.StatusCode.UNIMPLEMENTED, 501, "not_implemented"),
    (grpc.StatusCode.UNAVAILABLE, 503, "unavailable"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "upstream_timeout"),
    (grpc.StatusCode.UNKNOWN, 500, "internal_error"),
    (grpc.StatusCode.INTERNAL, 500, "internal_error"),
    (grpc.StatusCode.DATA_LOSS, 500, "internal_error"),
]
SHOWS_DETAILS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


@pytest.mark.parametrize(("grpc_code", "status", "code"), TABLE)
def test_each_grpc_code_maps_to_its_http_status_and_code(grpc_code, status, code) -> None:
    error = error_for_rpc(FakeRpcError(grpc_code, "Task not found"))
    assert (error.status_code, error.error_code) == (status, code)


@pytest.mark.parametrize(("grpc_code", "status", "code"), TABLE)
def test_details_are_shown_only_for_the_client_facing_codes(grpc_code, status, code) -> None:
    error = error_for_rpc(FakeRpcError(grpc_code, "Detail written for clients"))
    assert (error.message == "Detail written for clients") == (grpc_code in SHOWS_DETAILS)


BUSY_MESSAGE = "The session has a turn still running; try again when it ends"


def test_a_session_busy_reason_becomes_the_409_body_code() -> None:
    busy = (("taskgate-error-code", "session_busy"),)
    error = error_for_rpc(FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, BUSY_MESSAGE, busy))
    assert (error.status_code, error.error_code, error.message) == (409, "session_busy", BUSY_MESSAGE)


def test_a_state_conflict_without_a_reason_stays_conflict() -> None:
    error = error_for_rpc(FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "Task has already finished"))
    assert (error.status_code, error.error_code) == (409, "conflict")


@pytest.mark.parametrize("reason", ["not_a_known_reason", "Traceback: boom", ""])
def test_a_reason_the_gateway_does_not_know_is_not_passed_on(reason: str) -> None:
    error = error_for_rpc(
        FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "Conflict", (("taskgate-error-code", reason),))
    )
    assert error.error_code == "conflict"


def test_a_reason_on_a_status_whose_details_are_hidden_is_ignored() -> None:
    error = error_for_rpc(
        FakeRpcError(grpc.StatusCode.INTERNAL, "boom", (("taskgate-error-code", "session_busy"),))
    )
    assert (error.status_code, error.error_code) == (500, "internal_error")


def test_internal_details_never_reach_the_client() -> None:
    error = error_for_rpc(FakeRpcError(grpc.StatusCode.INTERNAL, 'Traceback: psycopg.Error at "/srv/x.py"'))
    assert error.message == "Internal server error"


def test_unavailable_asks_the_client_to_retry() -> None:
    assert error_for_rpc(FakeRpcError(grpc.StatusCode.UNAVAILABLE)).headers == {"Retry-After": "1"}


def test_an_rpc_error_without_a_code_is_internal() -> None:
    assert error_for_rpc(grpc.RpcError()).status_code == 500


def serialized(exception: falcon.HTTPError, request_id: str = "req-1") -> tuple[dict, falcon.Response]:
    req = falcon.testing.create_req()
    req.context.request_id = request_id
    resp = falcon.Response()
    serialize_error(req, resp, exception)
    return json.loads(resp.data), resp


def test_the_error_body_has_error_code_and_request_id() -> None:
    body, resp = serialized(ApiError(409, "Task already finished", "conflict"))
    assert body == {"error": "Task already finished", "code": "conflict", "request_id": "req-1"}
    assert resp.content_type == falcon.MEDIA_JSON


def test_validation_details_are_included() -> None:
    body, _ = serialized(ApiError(400, "Bad", "validation_failed", details=[{"field": "q", "message": "m"}]))
    assert body["details"] == [{"field": "q", "message": "m"}]


def test_a_401_carries_the_bearer_challenge() -> None:
    _, resp = serialized(ApiError(401, "Authentication required", "unauthorized"))
    assert resp.get_header("WWW-Authenticate") == 'Bearer realm="taskgate"'


def test_falcon_errors_get_a_static_message_and_code() -> None:
    body, _ = serialized(falcon.HTTPMethodNotAllowed(["GET"], description="internal words"))
    assert body == {"error": "Method not allowed", "code": "method_not_allowed", "request_id": "req-1"}
    body, _ = serialized(falcon.HTTPError(418))
    assert (body["error"], body["code"]) == ("I'm a teapot", "i_m_a_teapot")


def test_an_unknown_route_is_a_404_error_body(client) -> None:
    response = client.simulate_get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert (response.json["code"], response.json["error"]) == ("not_found", "Not found")


def test_a_wrong_method_is_405_with_allow(client) -> None:
    response = client.simulate_delete("/api/v1/tasks")
    assert response.status_code == 405
    assert response.json["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


def test_an_upstream_error_is_mapped_through_the_table(client, orchestrator) -> None:
    orchestrator.failures["list_tasks"] = FakeRpcError(
        grpc.StatusCode.UNAVAILABLE, "connection refused to 10.0.0.5"
    )
    response = client.simulate_get("/api/v1/tasks")
    assert response.status_code == 503
    assert response.json["error"] == "Orchestrator unavailable"
    assert response.headers["Retry-After"] == "1"


def test_an_unexpected_exception_is_a_static_500(client, orchestrator) -> None:
    orchestrator.tasks["t1"] = None
    response = client.simulate_get("/api/v1/tasks/t1")
    assert response.status_code == 500
    assert response.json["error"] == "Internal server error"
    assert response.json["code"] == "internal_error"
    assert "NoneType" not in response.text
