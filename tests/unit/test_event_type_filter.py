"""The stream parameters (``types``, ``last_event_id``) are accepted and refused alike by both services."""

import asyncio
import urllib.parse

import falcon
import falcon.testing
import pytest

from gateway.errors import ApiError
from gateway.resources.stream import stream_request
from orchestrator.admin.stream_query import authorised_stream_query
from taskgate.stream_parameters import MAX_TYPES
from taskgate.stream_parameters import TYPES_RULE
from taskgate.stream_parameters import event_types
from taskgate.stream_parameters import parse_types

TOKEN = "service-token-0123456789"
CALLER = {"x-taskgate-service-token": TOKEN, "x-taskgate-user-id": "u-1"}
MANY = ",".join(f"TYPE_{number}" for number in range(MAX_TYPES))

ACCEPTED = [
    ("LLM_OUTPUT", ("LLM_OUTPUT",)),
    ("LLM_OUTPUT,WORKFLOW_COMPLETED", ("LLM_OUTPUT", "WORKFLOW_COMPLETED")),
    (" LLM_PARTIAL , STREAM_END\n", ("LLM_PARTIAL", "STREAM_END")),
    ("STEP2_DONE", ("STEP2_DONE",)),
    ("A", ("A",)),
    ("A" * 64, ("A" * 64,)),
    (MANY, tuple(MANY.split(","))),
]
REFUSED = [
    "thread.message.delta",
    "done",
    "llm_output",
    "Llm_Output",
    "A,,B",
    "A,",
    ",A",
    "2STEP",
    "_STEP",
    "A;B",
    "A B",
    "LLM-OUTPUT",
    "A" * 65,
    f"{MANY},ONE_MORE",
]


class OwnedWorkflow:
    """The engine as the stream query needs it: ``wf-1`` belongs to the caller."""

    async def require_workflow(self, caller, workflow_id: str) -> None:
        assert workflow_id == "wf-1"


def query(**parameters: str) -> str:
    return urllib.parse.urlencode({"workflow_id": "wf-1", **parameters})


def gateway_reads(query_string: str, headers: dict | None = None):
    return stream_request(falcon.testing.create_req(query_string=query_string, headers=headers))


def orchestrator_reads(query_string: str, headers: dict | None = None):
    req = falcon.testing.create_asgi_req(query_string=query_string, headers={**CALLER, **(headers or {})})
    return asyncio.run(authorised_stream_query(req, OwnedWorkflow(), TOKEN.encode()))


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED)
def test_event_types_are_accepted_alike(raw: str, expected: tuple[str, ...]) -> None:
    assert parse_types(raw) == expected
    assert gateway_reads(query(types=raw)).types == expected
    assert orchestrator_reads(query(types=raw)).types == list(expected)
    assert event_types(expected) == expected


@pytest.mark.parametrize("raw", REFUSED)
def test_anything_but_event_types_is_refused_alike(raw: str) -> None:
    with pytest.raises(ValueError, match="event types"):
        parse_types(raw)
    with pytest.raises(ApiError) as from_gateway:
        gateway_reads(query(types=raw))
    assert from_gateway.value.details == [{"field": "types", "message": TYPES_RULE}]
    with pytest.raises(falcon.HTTPBadRequest) as from_orchestrator:
        orchestrator_reads(query(types=raw))
    assert from_orchestrator.value.description == f"types {TYPES_RULE}"


@pytest.mark.parametrize("names", [["thread.message.delta"], ["llm_output"], [""], ["A"] * (MAX_TYPES + 1)])
def test_the_grpc_stream_refuses_the_same_names(names: list[str]) -> None:
    with pytest.raises(ValueError, match="event types"):
        event_types(names)


def test_without_a_filter_both_stream_every_type() -> None:
    assert parse_types(None) == parse_types(" ") == ()
    assert gateway_reads(query()).types == ()
    assert orchestrator_reads(query()).types is None


@pytest.mark.parametrize(
    ("parameters", "headers", "expected"),
    [
        ({"last_event_id": "7"}, None, 7),
        ({"last_event_id": " 7\n"}, None, 7),
        ({"last_event_id": "7"}, {"Last-Event-ID": "12"}, 12),
        ({"last_event_id": "7"}, {"Last-Event-ID": " "}, 7),
        ({"last_event_id": "9" * 18}, None, int("9" * 18)),
    ],
)
def test_the_resume_point_is_read_alike(parameters: dict, headers: dict | None, expected: int) -> None:
    assert gateway_reads(query(**parameters), headers).last_event_id == expected
    assert orchestrator_reads(query(**parameters), headers).after_seq == expected


@pytest.mark.parametrize("raw", ["-1", "abc", "1.5", "9" * 19, "²", "1 2"])
def test_a_bad_resume_point_is_refused_alike(raw: str) -> None:
    with pytest.raises(ApiError):
        gateway_reads(query(last_event_id=raw))
    with pytest.raises(falcon.HTTPBadRequest):
        orchestrator_reads(query(last_event_id=raw))
    with pytest.raises(ApiError):
        gateway_reads(query(), {"Last-Event-ID": raw})
    with pytest.raises(falcon.HTTPBadRequest):
        orchestrator_reads(query(), {"Last-Event-ID": raw})
