"""The OpenAPI document describes exactly the routes the app serves."""

import json
import re

import falcon.inspect

from gateway.resources.openapi import OPENAPI_PATH

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def served_operations(app) -> set[tuple[str, str]]:
    # A field's converter (``{file:path}``) is Falcon's, not part of the OpenAPI path template.
    return {
        (re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), method.method.lower())
        for route in falcon.inspect.inspect_routes(app)
        for method in route.methods
        if not method.internal
    }


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_route_is_documented_and_every_documented_route_exists(client) -> None:
    document = json.loads(OPENAPI_PATH.read_text())
    assert served_operations(client.app) == documented_operations(document)


def test_the_served_document_is_openapi_3_1_with_the_error_body_and_security_schemes(client) -> None:
    response = client.simulate_get("/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"].startswith("3.1")
    assert set(document["components"]["schemas"]["Error"]["required"]) == {"error", "code", "request_id"}
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["BearerAuth"]["scheme"] == "bearer"


def test_every_reference_resolves(client) -> None:
    document = client.simulate_get("/openapi.json").json

    def references(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from references(value)
        elif isinstance(node, list):
            for item in node:
                yield from references(item)

    for reference in references(document):
        target = document
        for part in reference.removeprefix("#/").split("/"):
            target = target[part]


def test_operations_documented_as_public_are_exactly_those_served_without_credentials(client) -> None:
    document = client.simulate_get("/openapi.json").json
    for path, method in documented_operations(document):
        operation = document["paths"][path][method]
        response = client.simulate_request(
            method.upper(), path.replace("{task_id}", "task-1"), headers={"X-API-Key": ""}
        )
        assert (response.status_code == 401) == (operation.get("security") != []), (method, path)
