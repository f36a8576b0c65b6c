"""Task routes: submit, list, read one, and page through a task's events."""

from typing import Protocol

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


class TasksResource:
    """``/api/v1/tasks``: submit a task, list the caller's tasks."""

    def __init__(self, orchestrator: TaskApi) -> None:
        self._orchestrator = orchestrator

    @falcon.before(require_json_object)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Queue a task and answer 200 with its ids, echoing them in X-Workflow-ID / X-Session-ID."""
        request = submit_task_request(req.context.json)
        response = self._orchestrator.submit_task(request, call_context(req))
        resp.media = serialization.submitted_task(response)
        resp.set_header("X-Workflow-ID", response.task.workflow_id)
        resp.set_header("X-Session-ID", response.task.session_id)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List the caller's tasks, newest first, with the total matching the filter."""
        response = self._orchestrator.list_tasks(list_tasks_request(req), call_context(req))
        resp.media = {
            "tasks": [serialization.task_summary(task) for task in response.tasks],
            "total_count": response.total_count,
        }


@falcon.before(require_valid_id, "task_id")
class TaskResource:
    """``/api/v1/tasks/{task_id}``: one of the caller's tasks."""

    def __init__(self, orchestrator: TaskApi) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        """Return the task with its result, usage, pending approval and stored times."""
        task = self._orchestrator.get_task(task_id, call_context(req))
        resp.media = serialization.task_detail(task)


@falcon.before(require_valid_id, "task_id")
class TaskEventsResource:
    """``/api/v1/tasks/{task_id}/events``: a task's stored events in sequence order."""

    def __init__(self, orchestrator: TaskApi) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        """Return one page of events and the total number of events."""
        response = self._orchestrator.list_events(list_events_request(req, task_id), call_context(req))
        resp.media = {
            "events": [serialization.event(message) for message in response.events],
            "count": response.count,
        }
