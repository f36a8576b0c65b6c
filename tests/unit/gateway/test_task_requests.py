"""Task input checks: the submit body and the list and events queries."""

import falcon.testing
import pytest

from gateway.errors import ValidationError
from gateway.resources.task_requests import list_events_request
from gateway.resources.task_requests import list_tasks_request
from gateway.resources.task_requests import submit_task_request
from taskgate.orchestrator.v1 import common_pb2


def invalid_fields(body: dict) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        submit_task_request(body)
    return [detail["field"] for detail in raised.value.details]


def test_a_full_body_becomes_the_submit_request() -> None:
    request = submit_task_request(
        {
            "query": "Summarise the news",
            "session_id": "s-1",
            "context": {"role": "analyst", "n": 1.5},
            "mode": "supervisor",
            "model_tier": "large",
            "model_override": "gpt-x",
            "provider_override": "openai",
            "research_strategy": "deep",
            "max_iterations": 50,
            "max_concurrent_agents": 1,
            "enable_verification": False,
            "require_approval": True,
            "multitask_strategy": "interrupt",
            "approval_timeout_seconds": 3600,
            "unknown_field": "ignored",
        }
    )
    assert request.query == "Summarise the news"
    assert request.session_id == "s-1"
    assert request.context_json == '{"role":"analyst","n":1.5}'
    assert (request.mode, request.model_tier, request.research_strategy) == ("supervisor", "large", "deep")
    assert (request.model_override, request.provider_override) == ("gpt-x", "openai")
    assert (request.max_iterations, request.max_concurrent_agents) == (50, 1)
    assert request.HasField("enable_verification") and request.enable_verification is False
    assert request.require_approval is True
    assert request.multitask_strategy == "interrupt"
    assert request.HasField("approval_timeout_seconds") and request.approval_timeout_seconds == 3600


def test_only_the_query_is_required_and_nulls_count_as_absent() -> None:
    request = submit_task_request(
        {
            "query": "q",
            "mode": None,
            "max_iterations": None,
            "context": None,
            "multitask_strategy": None,
            "approval_timeout_seconds": None,
        }
    )
    assert request.query == "q"
    assert not request.HasField("max_iterations")
    assert not request.HasField("approval_timeout_seconds")
    assert request.mode == "" and request.context_json == "" and request.multitask_strategy == ""


@pytest.mark.parametrize("query", [None, "", "   ", 42, ["q"], "x" * 10_001])
def test_the_query_must_be_1_to_10000_characters(query) -> None:
    body = {} if query is None else {"query": query}
    assert invalid_fields(body) == ["query"]


def test_a_query_of_10000_characters_is_accepted() -> None:
    assert len(submit_task_request({"query": "é" * 10_000}).query) == 10_000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("session_id", "has space"),
        ("session_id", "x" * 129),
        ("session_id", 7),
        ("context", "text"),
        ("context", [1, 2]),
        ("context", {"blob": "x" * (64 * 1024)}),
        ("mode", "fast"),
        ("mode", "SIMPLE"),
        ("model_tier", "huge"),
        ("research_strategy", "shallow"),
        ("max_iterations", 0),
        ("max_iterations", 51),
        ("max_iterations", 5.0),
        ("max_iterations", "5"),
        ("max_iterations", True),
        ("max_concurrent_agents", 21),
        ("max_concurrent_agents", 0),
        ("enable_verification", "yes"),
        ("require_approval", 1),
        ("model_override", "m" * 129),
        ("provider_override", 3),
        ("multitask_strategy", "sideways"),
        ("multitask_strategy", "Reject"),
        ("multitask_strategy", "ENQUEUE"),
        ("multitask_strategy", " rollback"),
        ("multitask_strategy", ""),
        ("multitask_strategy", 1),
        ("multitask_strategy", ["reject"]),
        ("multitask_strategy", True),
        ("approval_timeout_seconds", 0),
        ("approval_timeout_seconds", -1),
        ("approval_timeout_seconds", 2_592_001),
        ("approval_timeout_seconds", 60.0),
        ("approval_timeout_seconds", 60.5),
        ("approval_timeout_seconds", "60"),
        ("approval_timeout_seconds", True),
        ("approval_timeout_seconds", {"seconds": 60}),
    ],
)
def test_each_invalid_field_is_reported(field: str, value) -> None:
    assert invalid_fields({"query": "q", field: value}) == [field]


@pytest.mark.parametrize("strategy", ["enqueue", "reject", "interrupt", "rollback"])
def test_each_multitask_strategy_is_forwarded(strategy: str) -> None:
    assert submit_task_request({"query": "q", "multitask_strategy": strategy}).multitask_strategy == strategy


@pytest.mark.parametrize("seconds", [1, 2_592_000])
def test_approval_timeouts_at_the_bounds_are_forwarded(seconds: int) -> None:
    request = submit_task_request({"query": "q", "approval_timeout_seconds": seconds})
    assert request.approval_timeout_seconds == seconds


def test_the_new_fields_name_themselves_and_their_rule() -> None:
    with pytest.raises(ValidationError) as raised:
        submit_task_request({"query": "q", "multitask_strategy": "later", "approval_timeout_seconds": 0})
    assert raised.value.details == [
        {"field": "multitask_strategy", "message": "must be one of enqueue, reject, interrupt, rollback"},
        {"field": "approval_timeout_seconds", "message": "must be an integer from 1 to 2592000"},
    ]


def test_every_violation_is_reported_at_once() -> None:
    assert invalid_fields({"mode": "x", "max_iterations": 0, "require_approval": "no"}) == [
        "query",
        "mode",
        "max_iterations",
        "require_approval",
    ]


def test_a_context_just_under_64_kib_is_accepted() -> None:
    blob = "x" * (64 * 1024 - len('{"blob":""}'))
    assert len(submit_task_request({"query": "q", "context": {"blob": blob}}).context_json) == 64 * 1024


def request_for(query_string: str, headers: dict | None = None) -> falcon.Request:
    return falcon.testing.create_req(query_string=query_string, headers=headers)


def test_list_defaults() -> None:
    request = list_tasks_request(request_for(""))
    assert (request.page.limit, request.page.offset) == (20, 0)
    assert request.status == common_pb2.TASK_STATUS_UNSPECIFIED
    assert request.session_id == ""


def test_list_filters_are_passed_and_status_is_case_insensitive() -> None:
    request = list_tasks_request(request_for("limit=100&offset=40&status=completed&session_id=s-1"))
    assert (request.page.limit, request.page.offset) == (100, 40)
    assert request.status == common_pb2.TASK_STATUS_COMPLETED
    assert request.session_id == "s-1"


@pytest.mark.parametrize(
    ("query_string", "fields"),
    [
        ("limit=0", ["limit"]),
        ("limit=101", ["limit"]),
        ("limit=ten", ["limit"]),
        ("offset=-1", ["offset"]),
        ("offset=99999999999", ["offset"]),
        ("status=DONE", ["status"]),
        ("status=unspecified", ["status"]),
        ("session_id=a%20b", ["session_id"]),
        ("limit=0&offset=x&status=nope", ["limit", "offset", "status"]),
    ],
)
def test_bad_list_queries_are_400(query_string: str, fields: list[str]) -> None:
    with pytest.raises(ValidationError) as raised:
        list_tasks_request(request_for(query_string))
    assert [detail["field"] for detail in raised.value.details] == fields


def test_events_query_defaults_and_bounds() -> None:
    request = list_events_request(request_for(""), "t-1")
    assert (request.workflow_id, request.limit, request.offset) == ("t-1", 50, 0)
    assert list_events_request(request_for("limit=200&offset=3"), "t-1").limit == 200
    with pytest.raises(ValidationError):
        list_events_request(request_for("limit=201"), "t-1")
