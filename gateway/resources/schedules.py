"""Schedule routes: create, list, read, change, pause, resume, trigger and delete schedules; list runs.

Another user's schedule is 404 like a missing one (the orchestrator's NOT_FOUND).
"""

from typing import Any
from typing import Protocol

import falcon

from gateway.caller import CallContext
from gateway.caller import call_context
from gateway.hooks import optional_json_object
from gateway.hooks import require_json_object
from gateway.hooks import require_valid_id
from gateway.resources.schedule_requests import create_schedule_request
from gateway.resources.schedule_requests import list_runs_request
from gateway.resources.schedule_requests import list_schedules_request
from gateway.resources.schedule_requests import update_schedule_request
from gateway.resources.serialization import json_object
from gateway.resources.serialization import task_run
from gateway.resources.serialization import timestamp
from gateway.validation import control_reason
from taskgate.orchestrator.v1 import schedules_pb2

_STATUS_NAMES = {
    schedules_pb2.SCHEDULE_STATUS_ACTIVE: "ACTIVE",
    schedules_pb2.SCHEDULE_STATUS_PAUSED: "PAUSED",
}


class ScheduleApi(Protocol):
    """The orchestrator calls the schedule routes make."""

    def create_schedule(
        self, request: schedules_pb2.CreateScheduleRequest, context: CallContext
    ) -> schedules_pb2.CreateScheduleResponse:
        """Create a schedule."""

    def list_schedules(
        self, request: schedules_pb2.ListSchedulesRequest, context: CallContext
    ) -> schedules_pb2.ListSchedulesResponse:
        """List the caller's schedules."""

    def get_schedule(self, schedule_id: str, context: CallContext) -> schedules_pb2.Schedule:
        """Read one schedule."""

    def update_schedule(
        self, request: schedules_pb2.UpdateScheduleRequest, context: CallContext
    ) -> schedules_pb2.Schedule:
        """Change a schedule."""

    def pause_schedule(
        self, schedule_id: str, reason: str, context: CallContext
    ) -> schedules_pb2.PauseScheduleResponse:
        """Pause a schedule."""

    def resume_schedule(
        self, schedule_id: str, reason: str, context: CallContext
    ) -> schedules_pb2.ResumeScheduleResponse:
        """Resume a schedule."""

    def trigger_schedule(self, schedule_id: str, context: CallContext) -> str:
        """Run a schedule now; return the workflow id."""

    def delete_schedule(self, schedule_id: str, context: CallContext) -> None:
        """Delete a schedule."""

    def list_schedule_runs(
        self, request: schedules_pb2.ListScheduleRunsRequest, context: CallContext
    ) -> schedules_pb2.ListScheduleRunsResponse:
        """List a schedule's runs."""


def schedule_body(schedule: schedules_pb2.Schedule) -> dict[str, Any]:
    """Return a schedule as API.md shows it (no budget or timeout set: null)."""
    return {
        "schedule_id": schedule.schedule_id,
        "name": schedule.name,
        "description": schedule.description,
        "cron_expression": schedule.cron_expression,
        "timezone": schedule.timezone,
        "task_query": schedule.task_query,
        "task_context": json_object(schedule.task_context_json),
        "max_budget_per_run_usd": schedule.max_budget_per_run_usd or None,
        "timeout_seconds": schedule.timeout_seconds or None,
        "status": _STATUS_NAMES.get(schedule.status, "ACTIVE"),
        "user_id": schedule.user_id,
        "created_at": timestamp(schedule, "created_at"),
        "updated_at": timestamp(schedule, "updated_at"),
        "next_run_at": timestamp(schedule, "next_run_at"),
        "last_run_at": timestamp(schedule, "last_run_at"),
        "total_runs": schedule.total_runs,
        "successful_runs": schedule.successful_runs,
        "failed_runs": schedule.failed_runs,
        "paused_at": timestamp(schedule, "paused_at"),
        "pause_reason": schedule.pause_reason or None,
    }


def run_body(run: schedules_pb2.ScheduleRun) -> dict[str, Any]:
    """Return a run as an item of ``GET /api/v1/schedules/{id}/runs``."""
    return {**task_run(run), "triggered_at": timestamp(run, "triggered_at")}


class SchedulesResource:
    """``/api/v1/schedules``: create a schedule, list the caller's."""

    def __init__(self, orchestrator: ScheduleApi) -> None:
        self._orchestrator = orchestrator

    @falcon.before(require_json_object)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a schedule: 201 with its id and first run."""
        response = self._orchestrator.create_schedule(
            create_schedule_request(req.context.json), call_context(req)
        )
        resp.status = falcon.HTTP_201
        resp.media = {
            "schedule_id": response.schedule.schedule_id,
            "message": response.message,
            "next_run_at": timestamp(response.schedule, "next_run_at"),
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List one page of the caller's schedules, newest first."""
        request = list_schedules_request(req)
        response = self._orchestrator.list_schedules(request, call_context(req))
        schedules = [schedule_body(schedule) for schedule in response.schedules]
        resp.media = page_body("schedules", schedules, response.total_count, request)


@falcon.before(require_valid_id, "schedule_id")
class ScheduleResource:
    """``/api/v1/schedules/{schedule_id}``: read, change or delete one of the caller's schedules.

    Its ``/pause``, ``/resume``, ``/trigger`` and ``/runs`` are routed here too, each by its suffix.
    """

    def __init__(self, orchestrator: ScheduleApi) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        """Return the schedule."""
        resp.media = schedule_body(self._orchestrator.get_schedule(schedule_id, call_context(req)))

    @falcon.before(require_json_object)
    def on_put(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        """Change the fields present and answer the schedule as stored."""
        request = update_schedule_request(schedule_id, req.context.json)
        resp.media = schedule_body(self._orchestrator.update_schedule(request, call_context(req)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        """Delete the schedule: 204."""
        self._orchestrator.delete_schedule(schedule_id, call_context(req))
        resp.status = falcon.HTTP_204

    @falcon.before(optional_json_object)
    def on_post_pause(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        """Stop the schedule from firing; next_run_at is null while paused."""
        reason = control_reason(req.context.json)
        response = self._orchestrator.pause_schedule(schedule_id, reason, call_context(req))
        resp.media = state_change_body(response)

    @falcon.before(optional_json_object)
    def on_post_resume(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        """Let the schedule fire again from the next tick after now, and answer that next run."""
        reason = control_reason(req.context.json)
        response = self._orchestrator.resume_schedule(schedule_id, reason, call_context(req))
        resp.media = state_change_body(response)

    def on_post_trigger(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        """Start one run now (next_run_at stays): 202 with its workflow id."""
        workflow_id = self._orchestrator.trigger_schedule(schedule_id, call_context(req))
        resp.status = falcon.HTTP_202
        resp.media = {"workflow_id": workflow_id}

    def on_get_runs(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        """Return one page of the tasks the schedule started, newest first, with status, result and usage."""
        request = list_runs_request(req, schedule_id)
        response = self._orchestrator.list_schedule_runs(request, call_context(req))
        runs = [run_body(run) for run in response.runs]
        resp.media = page_body("runs", runs, response.total_count, request)


def page_body(
    name: str,
    items: list[dict[str, Any]],
    total_count: int,
    request: schedules_pb2.ListSchedulesRequest | schedules_pb2.ListScheduleRunsRequest,
) -> dict[str, Any]:
    """Return one page of a schedule list: its items under ``name``, the total, and the page asked for."""
    return {name: items, "total_count": total_count, "page": request.page, "page_size": request.page_size}


def state_change_body(
    response: schedules_pb2.PauseScheduleResponse | schedules_pb2.ResumeScheduleResponse,
) -> dict[str, Any]:
    """Return the answer to a pause or resume: whether it worked, and the next run (null: paused)."""
    return {
        "success": response.success,
        "message": response.message,
        "next_run_at": timestamp(response, "next_run_at"),
    }
