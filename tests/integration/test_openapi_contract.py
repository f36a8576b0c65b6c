"""The served OpenAPI document against the running gateway, with requests schemathesis generates.

For every operation (except those below), a few valid generated requests must never get a 5xx,
and each answer must match the document: a documented status, the documented content type, a
body valid against the response schema, the documented headers. Half of them name a task and a
session that exist, so found things are checked as well as missing ones. Then a few invalid
requests per operation that takes input (wrong types, out-of-range values, missing fields) must
be answered as client errors in the documented content type, never a 5xx.

Left out: ``GET /api/v1/stream/sse`` and ``GET /api/v1/stream/tasks`` (event streams: their body is
no JSON to check, and the task feed, like a live workflow's stream, stays open),
``GET /api/v1/tasks/{task_id}/stream`` (a redirect to it) and ``GET /api/v1/stream/ws`` (a
WebSocket upgrade, tested in test_stream_websocket.py).
Rate limits are set out of reach for this stack (tests/integration/processes.py), so generated
requests are judged on the operation, not on the caller's budget.

``make test`` runs ``MAX_EXAMPLES`` examples per operation and mode from a fixed seed (reproducible,
under a minute); ``CONTRACT_EXAMPLES=400`` runs that many from fresh seeds, for a deeper search.
"""

import itertools
import json
import os

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import response_headers_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance

from gateway.resources.openapi import OPENAPI_PATH
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
# The OpenAI-compatible completions run a task per request and may answer as an event stream;
# tests/integration/test_openai_api.py drives them with the official client instead.
LEFT_OUT = {
    "/api/v1/stream/sse",
    "/api/v1/stream/tasks",
    "/api/v1/tasks/{task_id}/stream",
    "/api/v1/stream/ws",
    "/v1/chat/completions",
    "/v1/completions",
}
# A fixed seed and a few examples per operation keep `make test` reproducible and under a minute;
# CONTRACT_EXAMPLES=400 searches deeper with fresh seeds (a few minutes).
MAX_EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "20"))
DERANDOMIZE = "CONTRACT_EXAMPLES" not in os.environ
NEGATIVE_CHECKS = [schemathesis.checks.not_a_server_error, content_type_conformance]
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def api_stack(tmp_path_factory):
    """A stack of its own: generated requests create tasks and sessions no other test expects."""
    running = start_stack(tmp_path_factory.mktemp("openapi-contract"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api_key(api_stack) -> str:
    """A key of the user every generated request acts as."""
    return create_api_key(api_stack.env, "schemathesis@example.com")


@pytest.fixture(scope="module")
def known_ids(api_stack, api_key) -> dict[str, str]:
    """Path ids that exist: a finished task of the user and its session."""
    with httpx.Client(base_url=api_stack.url, headers={"X-API-Key": api_key}) as client:
        task = client.post("/api/v1/tasks", json={"query": "What is 2+2?"}).json()
        wait_until(
            lambda: client.get(f"/api/v1/tasks/{task['task_id']}").json()["status"] == "COMPLETED",
            what="the known task to finish",
        )
    return {"task_id": task["task_id"], "session_id": task["session_id"]}


@pytest.fixture(scope="module")
def api_schema(api_stack):
    """The document as the running gateway serves it."""
    return schemathesis.openapi.from_url(api_stack.url + "/openapi.json")


def documented_operations(with_input: bool = False) -> list[tuple[str, str]]:
    """Return (method, path) of the packaged document's operations (that take input), less those left out."""
    document = json.loads(OPENAPI_PATH.read_text())
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
        and path not in LEFT_OUT
        and (not with_input or operation.get("parameters") or operation.get("requestBody"))
    )


OPERATIONS = documented_operations()
# Only an operation with parameters or a body can be sent something invalid.
OPERATIONS_WITH_INPUT = documented_operations(with_input=True)


# The schemathesis pytest plugin's lazy loader does not run under pytest 9, so each operation is one
# test that builds its hypothesis test from the document the live gateway serves.
@pytest.mark.parametrize(
    ("method", "path"), OPERATIONS, ids=[f"{method} {path}" for method, path in OPERATIONS]
)
def test_the_gateway_answers_as_its_document_says(
    api_schema, api_stack, api_key, known_ids, method, path
) -> None:
    @hypothesis.given(case=api_schema[path][method].as_strategy())
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def generated(case) -> None:
        # Every other case names ids that exist, so the answers of found things are checked too;
        # a DELETE keeps its generated id, so the known session stays for the other operations.
        ids = known_ids_of(case.path_parameters, known_ids)
        if ids and method != "DELETE" and next(alternate):
            case.path_parameters = {**case.path_parameters, **ids}
        case.call_and_validate(
            base_url=api_stack.url, headers={"X-API-Key": api_key}, checks=CHECKS, timeout=30
        )

    alternate = itertools.cycle((True, False))
    generated()


def known_ids_of(path_parameters: dict | None, known_ids: dict[str, str]) -> dict[str, str]:
    """Return the known ids for the id parameters a path has."""
    return {name: known_ids[name] for name in path_parameters or {} if name in known_ids}


@pytest.mark.parametrize(
    ("method", "path"),
    OPERATIONS_WITH_INPUT,
    ids=[f"{method} {path}" for method, path in OPERATIONS_WITH_INPUT],
)
def test_invalid_requests_are_client_errors(api_schema, api_stack, api_key, method, path) -> None:
    @hypothesis.given(
        case=api_schema[path][method].as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)
    )
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def generated(case) -> None:
        case.call_and_validate(
            base_url=api_stack.url, headers={"X-API-Key": api_key}, checks=NEGATIVE_CHECKS, timeout=30
        )

    generated()
