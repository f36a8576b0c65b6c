"""Session, search and stats request input of API.md, checked field by field into gRPC requests."""

from typing import Any

import falcon

from gateway.validation import INT32_MAX
from gateway.validation import FieldErrors
from gateway.validation import int_query_param
from taskgate.orchestrator.v1 import common_pb2
from taskgate.orchestrator.v1 import sessions_pb2
from taskgate.session_rules import BUDGET_RULE
from taskgate.session_rules import CONTEXT_BUDGET_KEY
from taskgate.session_rules import DEFAULT_STATS_DAYS
from taskgate.session_rules import MAX_SEARCH_CHARACTERS
from taskgate.session_rules import MAX_STATS_DAYS
from taskgate.session_rules import MAX_TOKEN_BUDGET
from taskgate.session_titles import TITLE_RULE
from taskgate.session_titles import valid_title

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def token_budget(body: dict[str, Any], errors: FieldErrors) -> int | None:
    """Return the budget a submission gives the session it starts: ``token_budget``, else the context's.

    ``context.token_budget`` is what clients written for Shannon send; the field wins when both are
    there. A bad value is recorded on the field it came from.
    """
    value = body.get("token_budget")
    field = "token_budget"
    if value is None:
        context = body.get("context")
        value = context.get(CONTEXT_BUDGET_KEY) if isinstance(context, dict) else None
        field = f"context.{CONTEXT_BUDGET_KEY}"
        if value is None:
            return None
    if type(value) is not int or not 1 <= value <= MAX_TOKEN_BUDGET:
        errors.add(field, BUDGET_RULE)
        return None
    return value


def list_sessions_request(req: falcon.Request) -> sessions_pb2.ListSessionsRequest:
    """Check the query of ``GET /api/v1/sessions`` and build the ListSessions request."""
    return sessions_pb2.ListSessionsRequest(page=_page(req, default_limit=20))


def update_session_request(session_id: str, body: dict[str, Any]) -> sessions_pb2.UpdateSessionRequest:
    """Check a ``PATCH /api/v1/sessions/{id}`` body and build the UpdateSession request."""
    errors = FieldErrors()
    raw = body.get("title")
    title = valid_title(raw) if isinstance(raw, str) else None
    if title is None:
        errors.add("title", f"is required: a string that {TITLE_RULE}")
    errors.raise_if_any()
    return sessions_pb2.UpdateSessionRequest(session_id=session_id, title=title)


def history_request(req: falcon.Request, session_id: str) -> sessions_pb2.GetSessionHistoryRequest:
    """Check the query of ``GET /api/v1/sessions/{id}/history`` and build its request."""
    return sessions_pb2.GetSessionHistoryRequest(session_id=session_id, page=_page(req, default_limit=100))


def turns_request(req: falcon.Request, session_id: str) -> sessions_pb2.ListSessionTurnsRequest:
    """Check the query of ``GET /api/v1/sessions/{id}/events`` and build the ListSessionTurns request."""
    errors = FieldErrors()
    limit = int_query_param(req, "limit", 10, 1, 100, errors)
    offset = int_query_param(req, "offset", 0, 0, INT32_MAX, errors)
    include_payload = _bool_query_param(req, "include_payload", errors)
    errors.raise_if_any()
    return sessions_pb2.ListSessionTurnsRequest(
        session_id=session_id,
        page=common_pb2.PageRequest(limit=limit, offset=offset),
        include_payload=include_payload,
    )


def search_request(req: falcon.Request) -> sessions_pb2.SearchTasksRequest:
    """Check the query of ``GET /api/v1/search`` and build the SearchTasks request."""
    errors = FieldErrors()
    text = req.get_param("q") or ""
    if not text.strip() or len(text) > MAX_SEARCH_CHARACTERS:
        errors.add("q", f"is required: 1..{MAX_SEARCH_CHARACTERS} characters to search for")
    limit = int_query_param(req, "limit", 20, 1, 100, errors)
    offset = int_query_param(req, "offset", 0, 0, INT32_MAX, errors)
    errors.raise_if_any()
    return sessions_pb2.SearchTasksRequest(
        query=text, page=common_pb2.PageRequest(limit=limit, offset=offset)
    )


def stats_days(req: falcon.Request) -> int:
    """Check the ``days`` of ``GET /api/v1/stats`` (default 30, 1..365)."""
    errors = FieldErrors()
    days = int_query_param(req, "days", DEFAULT_STATS_DAYS, 1, MAX_STATS_DAYS, errors)
    errors.raise_if_any()
    return days


def _page(req: falcon.Request, default_limit: int) -> common_pb2.PageRequest:
    errors = FieldErrors()
    limit = int_query_param(req, "limit", default_limit, 1, 100, errors)
    offset = int_query_param(req, "offset", 0, 0, INT32_MAX, errors)
    errors.raise_if_any()
    return common_pb2.PageRequest(limit=limit, offset=offset)


def _bool_query_param(req: falcon.Request, name: str, errors: FieldErrors) -> bool:
    raw = req.get_param(name)
    if raw is None:
        return False
    lowered = raw.lower()
    if lowered not in _TRUE | _FALSE:
        errors.add(name, "must be true or false")
        return False
    return lowered in _TRUE
