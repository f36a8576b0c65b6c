"""Checking a task submission and turning it into what the store keeps."""

import dataclasses
import json
from typing import Any

from orchestrator.errors import InvalidArgumentError
from taskgate.identifiers import ID_RULE
from taskgate.identifiers import is_valid_id
from taskgate.task_rules import MAX_APPROVAL_TIMEOUT_SECONDS
from taskgate.task_rules import MAX_CONTEXT_BYTES
from taskgate.task_rules import MAX_OVERRIDE_CHARACTERS
from taskgate.task_rules import MAX_QUERY_CHARACTERS
from taskgate.task_rules import MAX_TIMEOUT_SECONDS
from taskgate.task_rules import MIN_APPROVAL_TIMEOUT_SECONDS
from taskgate.task_rules import MODEL_TIERS
from taskgate.task_rules import MODES
from taskgate.task_rules import MULTITASK_STRATEGIES
from taskgate.task_rules import RESEARCH_STRATEGIES

DEFAULT_MODE = "standard"
DEFAULT_MODEL_TIER = "small"


@dataclasses.dataclass(frozen=True)
class TaskSubmission:
    """A task request as the client sent it: raw values, checked by ``validate_submission``."""

    query: str
    session_id: str = ""
    context_json: str = ""
    mode: str = ""
    model_tier: str = ""
    model_override: str = ""
    provider_override: str = ""
    research_strategy: str = ""
    max_iterations: int | None = None
    max_concurrent_agents: int | None = None
    enable_verification: bool | None = None
    require_approval: bool = False
    timeout_seconds: int = 0
    token_budget: int | None = None
    # Empty: the client chose none (enqueue).
    multitask_strategy: str = ""
    # None: the deployment's approval timeout.
    approval_timeout_seconds: int | None = None


@dataclasses.dataclass(frozen=True)
class ValidSubmission:
    """A checked submission: normalised values, the context parsed, the request options gathered."""

    query: str
    session_id: str | None
    context: dict[str, Any]
    mode: str
    options: dict[str, Any]


def validate_submission(submission: TaskSubmission) -> ValidSubmission:
    """Check every field; raise InvalidArgumentError naming the first bad one."""
    query = submission.query
    if not query.strip() or len(query) > MAX_QUERY_CHARACTERS:
        raise InvalidArgumentError("query", f"query must be 1..{MAX_QUERY_CHARACTERS} characters")
    session_id = submission.session_id or None
    if session_id is not None and not is_valid_id(session_id):
        raise InvalidArgumentError("session_id", f"session_id {ID_RULE}")
    options: dict[str, Any] = {
        "model_tier": _choice("model_tier", submission.model_tier, MODEL_TIERS, DEFAULT_MODEL_TIER),
        "require_approval": submission.require_approval,
    }
    strategy = _choice("research_strategy", submission.research_strategy, RESEARCH_STRATEGIES, None)
    optional_values = {
        "model_override": _override("model_override", submission.model_override),
        "provider_override": _override("provider_override", submission.provider_override),
        "research_strategy": strategy,
        "max_iterations": _bounded("max_iterations", submission.max_iterations, 1, 50),
        "max_concurrent_agents": _bounded("max_concurrent_agents", submission.max_concurrent_agents, 1, 20),
        "enable_verification": submission.enable_verification,
        # 0 asks for the server default, so it is not stored.
        "timeout_seconds": _bounded("timeout_seconds", submission.timeout_seconds, 0, MAX_TIMEOUT_SECONDS)
        or None,
        # Stored only when chosen, so a task that chose none is told apart from one that chose enqueue.
        "multitask_strategy": _multitask_strategy(submission.multitask_strategy),
        "approval_timeout_seconds": _bounded(
            "approval_timeout_seconds",
            submission.approval_timeout_seconds,
            MIN_APPROVAL_TIMEOUT_SECONDS,
            MAX_APPROVAL_TIMEOUT_SECONDS,
        ),
    }
    options.update({name: value for name, value in optional_values.items() if value is not None})
    return ValidSubmission(
        query=query,
        session_id=session_id,
        context=_context(submission.context_json),
        mode=_choice("mode", submission.mode, MODES, DEFAULT_MODE),
        options=options,
    )


def _choice(field: str, raw: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = raw.strip().lower()
    if not value:
        return default
    if value not in allowed:
        raise InvalidArgumentError(field, f"{field} must be one of {', '.join(allowed)}")
    return value


def _multitask_strategy(raw: str) -> str | None:
    """Return the strategy chosen, None when none was; the names are exact (taskgate.task_rules)."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or raw not in MULTITASK_STRATEGIES:
        message = f"multitask_strategy must be one of {', '.join(MULTITASK_STRATEGIES)}"
        raise InvalidArgumentError("multitask_strategy", message)
    return raw


def _override(field: str, raw: str) -> str | None:
    value = raw.strip()
    if len(value) > MAX_OVERRIDE_CHARACTERS:
        raise InvalidArgumentError(field, f"{field} must be at most {MAX_OVERRIDE_CHARACTERS} characters")
    return value or None


def _bounded(field: str, value: int | None, low: int, high: int) -> int | None:
    # A bool is an int to Python, not to a client.
    if value is not None and (type(value) is not int or not low <= value <= high):
        raise InvalidArgumentError(field, f"{field} must be {low}..{high}")
    return value


def _context(raw: str) -> dict[str, Any]:
    message = f"context must be a JSON object of at most {MAX_CONTEXT_BYTES} bytes"
    if not raw.strip():
        return {}
    if len(raw.encode("utf-8")) > MAX_CONTEXT_BYTES:
        raise InvalidArgumentError("context", message)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidArgumentError("context", message) from None
    if not isinstance(value, dict):
        raise InvalidArgumentError("context", message)
    return value
