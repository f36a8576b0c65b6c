"""The ids the orchestrator makes (the shape of client-supplied ids is taskgate.identifiers)."""

import uuid


def new_task_id() -> str:
    """Return a new task id, which is also the task's workflow id."""
    return f"task-{uuid.uuid4().hex}"


def new_session_id() -> str:
    """Return a new session id."""
    return str(uuid.uuid4())
