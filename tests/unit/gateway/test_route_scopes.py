"""Scopes at the edge: every authenticated route names its scopes, and a key lacking one gets 403."""

import falcon
import grpc
import pytest

from gateway.middleware.scopes import ROUTE_SCOPES
from gateway.middleware.scopes import route_needs
from taskgate import scopes
from taskgate.orchestrator.v1 import auth_pb2
from tests.unit.gateway.fakes import API_KEY
from tests.unit.gateway.fakes import FakeRpcError

DEFAULT_RESPONDERS = "falcon.responders"


def routes(app: falcon.App):
    """Yield (URI template, method, resource) of every responder the app's router holds."""
    nodes = list(app._router._roots)
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children)
        if node.resource is None:
            continue
        for method, responder in node.method_map.items():
            if responder.__module__ != DEFAULT_RESPONDERS:
                yield node.uri_template, method, node.resource


@pytest.fixture
def app(client) -> falcon.App:
    return client.app


def test_every_authenticated_route_has_scopes_and_every_entry_is_a_route(app):
    served = set()
    for template, method, resource in routes(app):
        if getattr(resource, "public", False):
            assert template not in ROUTE_SCOPES, f"{template} is public"
            continue
        served.add((template, method))
        assert method in ROUTE_SCOPES.get(template, {}), f"{method} {template} has no scopes"
    assert served == {(template, method) for template, methods in ROUTE_SCOPES.items() for method in methods}


def test_every_route_names_known_scopes():
    for methods in ROUTE_SCOPES.values():
        for needs in methods.values():
            assert all(scopes.is_known_scope(scope) for scope in needs)


def test_a_route_missing_from_the_table_needs_every_scope_and_an_unanswered_method_none():
    assert route_needs("/api/v1/unlisted", "GET") == scopes.ALL_SCOPES
    assert route_needs("/api/v1/tasks", "PUT") is None


def with_scopes(orchestrator, *granted: str) -> None:
    orchestrator.principals[API_KEY] = auth_pb2.Principal(
        user_id="user-1", tenant_id="tenant-1", role="user", api_key_id="key-1", scopes=granted
    )


def test_a_key_lacking_the_scope_is_403_naming_it_before_any_upstream_call(client, orchestrator):
    with_scopes(orchestrator, "tasks:read")

    assert client.simulate_get("/api/v1/tasks").status_code == 200
    response = client.simulate_post("/api/v1/tasks", json={"query": "q"})

    assert response.status_code == 403
    body = response.json
    assert (body["code"], body["scope"]) == ("insufficient_scope", "tasks:write")
    assert body["details"] == [{"field": "scope", "message": "tasks:write"}]
    assert body["request_id"] and "tasks:write" in body["error"]
    assert orchestrator.calls_named("submit_task") == []


def test_the_scoped_callers_key_and_scopes_are_forwarded(client, orchestrator):
    with_scopes(orchestrator, "tasks:read", "tasks:write")

    assert client.simulate_post("/api/v1/tasks", json={"query": "q"}).status_code == 200

    principal = orchestrator.calls_named("submit_task")[0][2].principal
    assert (principal.api_key_id, principal.scopes) == ("key-1", ("tasks:read", "tasks:write"))


def test_a_key_without_scopes_has_full_access(client, orchestrator):
    assert client.simulate_post("/api/v1/tasks", json={"query": "q"}).status_code == 200


def test_an_openai_route_refuses_in_openais_shape(client, orchestrator):
    with_scopes(orchestrator, "tasks:write")

    body = {"model": "taskgate-small", "messages": [{"role": "user", "content": "hi"}]}
    response = client.simulate_post("/v1/chat/completions", json=body)

    assert response.status_code == 403
    assert response.json["error"]["type"] == "permission_error"
    error = response.json["error"]
    assert (error["code"], error["param"]) == ("insufficient_scope", "scope")
    assert orchestrator.calls_named("submit_task") == []


def test_the_orchestrators_refusal_maps_to_the_same_403(client, orchestrator):
    orchestrator.failures["list_tasks"] = FakeRpcError(
        grpc.StatusCode.PERMISSION_DENIED,
        "The API key lacks the scope tasks:read",
        (("taskgate-error-code", "insufficient_scope"), ("taskgate-missing-scope", "tasks:read")),
    )

    response = client.simulate_get("/api/v1/tasks")

    assert response.status_code == 403
    assert (response.json["code"], response.json["scope"]) == ("insufficient_scope", "tasks:read")


def test_the_openapi_document_names_each_operations_scopes_and_its_403(client):
    document = client.simulate_get("/openapi.json").json
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("security") == []:
                assert "x-taskgate-scopes" not in operation
                continue
            needs = ROUTE_SCOPES[path][method.upper()]
            assert operation["x-taskgate-scopes"] == list(needs), (method, path)
            assert not needs or "403" in operation["responses"], (method, path)


def test_an_unknown_missing_scope_from_upstream_is_not_echoed(client, orchestrator):
    orchestrator.failures["list_tasks"] = FakeRpcError(
        grpc.StatusCode.PERMISSION_DENIED,
        "The API key lacks the scope <script>",
        (("taskgate-error-code", "insufficient_scope"), ("taskgate-missing-scope", "<script>")),
    )

    response = client.simulate_get("/api/v1/tasks")

    assert (response.status_code, response.json["code"]) == (403, "insufficient_scope")
    assert "scope" not in response.json
