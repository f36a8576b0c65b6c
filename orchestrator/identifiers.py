"""The shape of ids clients send and the ids the orchestrator makes."""

import re
import uuid

ID_PATTERN = re.compile(r"^[A-Za-z0-9:_\-.]{1,128}$")
ID_RULE = "1..128 characters of A-Z, a-z, 0-9 and : _ - ."


def is_valid_id(value: str) -> bool:
    """Whether a client-supplied id (task, workflow, session) has the allowed shape."""
    return ID_PATTERN.fullmatch(value) is not None


def new_task_id() -> str:
    """Return a new task id, which is also the task's workflow id."""
    return f"task-{uuid.uuid4().hex}"


def new_session_id() -> str:
    """Return a new session id."""
    return str(uuid.uuid4())
