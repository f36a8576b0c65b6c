"""Request limits written once in taskgate/: both services draw the line in the same place."""

import datetime

import pytest

from gateway.errors import ValidationError
from gateway.resources.auth_requests import create_key_request
from gateway.resources.task_requests import submit_task_request
from orchestrator.engine.api_keys import KeyRequest
from orchestrator.engine.api_keys import _check_key_request
from orchestrator.engine.continuation import session_token_budget
from orchestrator.engine.submission import TaskSubmission
from orchestrator.engine.submission import validate_submission
from orchestrator.errors import InvalidArgumentError
from taskgate.scopes import ALL_SCOPES
from taskgate.session_rules import MAX_TOKEN_BUDGET
from taskgate.task_rules import MAX_QUERY_CHARACTERS
from taskgate.task_rules import MODES

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def gateway_refuses(check, *args) -> bool:
    try:
        check(*args)
    except ValidationError:
        return True
    return False


def orchestrator_refuses(check, *args) -> bool:
    try:
        check(*args)
    except InvalidArgumentError:
        return True
    return False


@pytest.mark.parametrize(
    ("scopes", "refused"),
    [
        ([], False),
        (["tasks:read", "tasks:write"], False),
        (list(ALL_SCOPES), False),
        (["read"], True),
        (["tasks:read", "tasks:read"], True),
        (["tasks:read\n"], True),
        (["Tasks:Read"], True),
        (["tasks:admin"], True),
        ([["tasks:read"]], True),
    ],
)
def test_scopes_are_checked_alike(scopes: list[str], refused: bool) -> None:
    assert gateway_refuses(create_key_request, {"name": "ci", "scopes": scopes}) is refused
    request = KeyRequest(name="ci", scopes=tuple(scopes))
    assert orchestrator_refuses(_check_key_request, request, NOW) is refused


@pytest.mark.parametrize(
    ("length", "refused"), [(1, False), (MAX_QUERY_CHARACTERS, False), (MAX_QUERY_CHARACTERS + 1, True)]
)
def test_the_query_limit_is_the_same(length: int, refused: bool) -> None:
    assert gateway_refuses(submit_task_request, {"query": "q" * length}) is refused
    assert orchestrator_refuses(validate_submission, TaskSubmission(query="q" * length)) is refused


@pytest.mark.parametrize(("mode", "refused"), [*((mode, False) for mode in MODES), ("turbo", True)])
def test_the_modes_are_the_same(mode: str, refused: bool) -> None:
    assert gateway_refuses(submit_task_request, {"query": "q", "mode": mode}) is refused
    assert orchestrator_refuses(validate_submission, TaskSubmission(query="q", mode=mode)) is refused


@pytest.mark.parametrize(
    ("budget", "refused"), [(1, False), (MAX_TOKEN_BUDGET, False), (0, True), (MAX_TOKEN_BUDGET + 1, True)]
)
def test_the_token_budget_limit_is_the_same(budget: int, refused: bool) -> None:
    assert (
        gateway_refuses(submit_task_request, {"query": "q", "context": {"token_budget": budget}}) is refused
    )
    assert orchestrator_refuses(session_token_budget, None, {"token_budget": budget}) is refused
