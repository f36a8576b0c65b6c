"""Task routes: submit (plain or with a stream to follow), list, read one, its events and timeline."""

from typing import Protocol
from urllib.parse import quote
from urllib.parse import urlencode

import falcon

from gateway.caller import CallContext
from gateway.caller import call_context
from gateway.hooks import require_json_object
from gateway.hooks import require_valid_id
from gateway.resources import serialization
from gateway.resources.task_requests import list_events_request
from gateway.resources.task_requests import list_tasks_request
from gateway.resources.task_requests import submit_task_request
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import tasks_pb2


class TaskApi(Protocol):
    """The orchestrator calls the task routes make."""

    def submit_task(
        self, request: tasks_pb2.SubmitTaskRequest, context: CallContext
    ) -> tasks_pb2.SubmitTaskResponse:
        """Queue a task."""

    def list_tasks(
        self, request: tasks_pb2.ListTasksRequest, context: CallContext
    ) -> tasks_pb2.ListTasksResponse:
        """List the caller's tasks."""

    def get_task(self, task_id: str, context: CallContext) -> tasks_pb2.Task:
        """Read one task."""

    def list_events(
        self, request: events_pb2.ListEventsRequest, context: CallContext
    ) -> events_pb2.ListEventsResponse:
        """Page through a task's events."""

    def get_timeline(self, task_id: str, context: CallContext) -> events_pb2.GetTimelineResponse:
        """Summarise a task's events."""


STREAM_PATH = "/api/v1/stream/sse"
# The stream parameters a redirect to the stream keeps.
_STREAM_PARAMS = ("types", "last_event_id")


def stream_url(workflow_id: str, params: list[tuple[str, str]] | None = None) -> str:
    """Return the path and query of a workflow's event stream, every value percent-escaped."""
    query = urlencode([("workflow_id", workflow_id), *(params or [])], quote_via=quote)
    return f"{STREAM_PATH}?{query}"


class TasksResource:
    """``/api/v1/tasks``: submit a task, list the caller's tasks.

    ``/api/v1/tasks/stream`` (suffix ``stream``) submits a task and answers the URL of its event stream.
    """

    def __init__(self, orchestrator: TaskApi) -> None:
        self._orchestrator = orchestrator

    @falcon.before(require_json_object)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Queue a task and answer 200 with its ids, echoing them in X-Workflow-ID / X-Session-ID."""
        resp.media = serialization.submitted_task(self._submit(req, resp))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List the caller's tasks, newest first, with the total matching the filter."""
        response = self._orchestrator.list_tasks(list_tasks_request(req), call_context(req))
        resp.media = {
            "tasks": [serialization.task_summary(task) for task in response.tasks],
            "total_count": response.total_count,
        }

    @falcon.before(require_json_object)
    def on_post_stream(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Queue a task and answer 201 with its ids and ``stream_url``, also in ``Link: rel=stream``."""
        task = self._submit(req, resp).task
        url = stream_url(task.workflow_id)
        resp.status = falcon.HTTP_201
        resp.media = {
            "task_id": task.task_id,
            "workflow_id": task.workflow_id,
            "session_id": task.session_id,
            "stream_url": url,
        }
        resp.set_header("Link", f"<{url}>; rel=stream")

    def _submit(self, req: falcon.Request, resp: falcon.Response) -> tasks_pb2.SubmitTaskResponse:
        """Queue the task the body describes; echo its ids in X-Workflow-ID and X-Session-ID."""
        response = self._orchestrator.submit_task(submit_task_request(req.context.json), call_context(req))
        resp.set_header("X-Workflow-ID", response.task.workflow_id)
        resp.set_header("X-Session-ID", response.task.session_id)
        return response


@falcon.before(require_valid_id, "task_id")
class TaskResource:
    """``/api/v1/tasks/{task_id}``: one of the caller's tasks.

    Its ``/events``, ``/timeline`` and ``/stream`` are routed here too, each by its suffix.
    """

    def __init__(self, orchestrator: TaskApi) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        """Return the task with its result, usage, pending approval and stored times."""
        task = self._orchestrator.get_task(task_id, call_context(req))
        resp.media = serialization.task_detail(task)

    def on_get_events(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        """Return one page of the task's stored events in sequence order, and how many there are."""
        response = self._orchestrator.list_events(list_events_request(req, task_id), call_context(req))
        resp.media = {
            "events": [serialization.event(message) for message in response.events],
            "count": response.count,
        }

    def on_get_timeline(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        """Return the summarised events (no LLM_PARTIAL) and their duration, count and count by type."""
        resp.media = serialization.timeline(self._orchestrator.get_timeline(task_id, call_context(req)))

    def on_get_stream(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        """Answer 307 to the event stream, keeping ``types`` and ``last_event_id``; another's task is 404."""
        self._orchestrator.get_task(task_id, call_context(req))
        kept = [(name, req.get_param(name)) for name in _STREAM_PARAMS if req.get_param(name) is not None]
        raise falcon.HTTPTemporaryRedirect(stream_url(task_id, kept))
