"""Task control routes: cancel, pause and resume a task, and read its control state.

Each change is stored by the orchestrator before the 202 is sent and takes effect at the task's
next checkpoint (at once for a task that is not running); a request the task's state does not
allow is 409 (the orchestrator's FAILED_PRECONDITION). The body, ``{reason?}``, is optional.
"""

from typing import Protocol

import falcon

from gateway.caller import CallContext
from gateway.caller import call_context
from gateway.hooks import optional_json_object
from gateway.hooks import require_valid_id
from gateway.resources import serialization
from gateway.validation import control_reason
from taskgate.orchestrator.v1 import tasks_pb2


class TaskControlApi(Protocol):
    """The orchestrator calls the task control routes make."""

    def cancel_task(self, task_id: str, reason: str, context: CallContext) -> tasks_pb2.CancelTaskResponse:
        """Cancel a task."""

    def pause_task(self, task_id: str, reason: str, context: CallContext) -> tasks_pb2.PauseTaskResponse:
        """Pause a task."""

    def resume_task(self, task_id: str, reason: str, context: CallContext) -> tasks_pb2.ResumeTaskResponse:
        """Resume a paused task."""

    def get_control_state(self, task_id: str, context: CallContext) -> tasks_pb2.GetControlStateResponse:
        """Read a task's control state."""


@falcon.before(require_valid_id, "task_id")
class TaskControlResource:
    """``/api/v1/tasks/{task_id}/cancel``, ``/pause``, ``/resume`` and ``/control-state``, by suffix."""

    def __init__(self, orchestrator: TaskControlApi) -> None:
        self._orchestrator = orchestrator

    @falcon.before(optional_json_object)
    def on_post_cancel(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        """Stop the task (one not started never runs): 202 ``{success, message}``; a finished one is 409."""
        reason = control_reason(req.context.json)
        response = self._orchestrator.cancel_task(task_id, reason, call_context(req))
        _accepted(resp, success=response.success, message=response.message)

    @falcon.before(optional_json_object)
    def on_post_pause(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        """Hold the task (a queued one is not started while paused): 202; a paused or finished task is 409."""
        reason = control_reason(req.context.json)
        response = self._orchestrator.pause_task(task_id, reason, call_context(req))
        _accepted(resp, success=response.success, message=response.message, task_id=response.task_id)

    @falcon.before(optional_json_object)
    def on_post_resume(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        """Let the paused task continue: 202; a task that is not paused is 409."""
        reason = control_reason(req.context.json)
        response = self._orchestrator.resume_task(task_id, reason, call_context(req))
        _accepted(resp, success=response.success, message=response.message, task_id=response.task_id)

    def on_get_state(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        """Return whether the task is paused or cancelled, by whom and why; a pause shows at once."""
        response = self._orchestrator.get_control_state(task_id, call_context(req))
        resp.media = serialization.control_state(response)


def _accepted(resp: falcon.Response, **body: object) -> None:
    """Answer 202 with ``body``: the change is stored and takes effect at the task's next checkpoint."""
    resp.status = falcon.HTTP_202
    resp.media = body
