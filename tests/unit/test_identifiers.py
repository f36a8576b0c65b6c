"""One id rule for both services: the whole value must have the shape, so "abc\n" is refused."""

import falcon
import falcon.testing
import pytest

from gateway.errors import ValidationError
from gateway.hooks import require_valid_id
from gateway.middleware.request_id import accepted_request_id
from orchestrator.errors import InvalidArgumentError
from orchestrator.rpc_log import correlation_fields
from orchestrator.services.fields import require_id
from taskgate.identifiers import ID_RULE
from taskgate.identifiers import is_valid_id

GOOD = ["a", "task-0f3c", "A.b_c:d-9", "x" * 128]
BAD = ["", "abc\n", "abc\r\n", "\nabc", "x" * 129, "has space", "semi;colon", "ünïcode", "a/b"]


@pytest.mark.parametrize("value", GOOD)
def test_well_formed_ids_are_accepted_by_both_services(value: str) -> None:
    assert is_valid_id(value)
    assert require_id("workflow_id", value) == value
    require_valid_id(None, None, None, {"task_id": value}, "task_id")
    assert accepted_request_id(value) == value
    assert correlation_fields((("x-request-id", value),)) == {"request_id": value}


@pytest.mark.parametrize("value", BAD)
def test_malformed_ids_are_refused_by_both_services(value: str) -> None:
    assert not is_valid_id(value)
    with pytest.raises(InvalidArgumentError) as from_orchestrator:
        require_id("workflow_id", value)
    assert from_orchestrator.value.field == "workflow_id"
    with pytest.raises(ValidationError) as from_gateway:
        require_valid_id(None, None, None, {"task_id": value}, "task_id")
    assert from_gateway.value.details == [{"field": "task_id", "message": ID_RULE}]
    assert accepted_request_id(value) is None
    assert correlation_fields((("x-request-id", value),)) == {}


@pytest.mark.parametrize("value", [None, 42, b"abc", ["abc"]])
def test_only_strings_are_ids(value: object) -> None:
    assert not is_valid_id(value)


def test_the_rule_quotes_the_pattern_of_the_api_contract() -> None:
    assert ID_RULE == "must match ^[A-Za-z0-9:_\\-.]{1,128}$"


def test_a_path_id_with_a_trailing_newline_is_a_400() -> None:
    app = falcon.App()

    class Task:
        @falcon.before(require_valid_id, "task_id")
        def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
            resp.media = {"task_id": task_id}

    app.add_route("/tasks/{task_id}", Task())
    client = falcon.testing.TestClient(app)
    assert client.simulate_get("/tasks/abc").json == {"task_id": "abc"}
    assert client.simulate_get("/tasks/abc%0A").status_code == 400
