"""The gateway's gRPC client of the orchestrator: identity metadata, deadlines, one channel per process.

The channel is created on first use and again in any process that did not create it, so a gunicorn
worker never shares the master's channel (gRPC channels do not survive fork) and nothing connects
at import time. With TLS settings (taskgate.tls) the channel's credentials are made with it, after
the fork, from the CA and client certificate the settings name. Failed calls raise
``grpc.RpcError``; ``gateway.errors`` maps them to HTTP.
"""

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterator

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

from gateway.caller import CallContext
from gateway.caller import identity_headers
from taskgate import __version__
from taskgate import wire
from taskgate.orchestrator.v1 import approvals_pb2
from taskgate.orchestrator.v1 import approvals_pb2_grpc
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import auth_pb2_grpc
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import events_pb2_grpc
from taskgate.orchestrator.v1 import schedules_pb2
from taskgate.orchestrator.v1 import schedules_pb2_grpc
from taskgate.orchestrator.v1 import sessions_pb2
from taskgate.orchestrator.v1 import sessions_pb2_grpc
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from taskgate.tls import ClientTls

# A session export is one message of up to 32 MiB (orchestrator.engine.session_export); 4 MiB is the
# default limit.
MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS = (
    ("grpc.primary_user_agent", f"taskgate-gateway/{__version__}"),
    ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
    # The default reconnect backoff grows to two minutes; an orchestrator restart takes seconds,
    # and every worker should be back within about a second of it, not minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


# How long a worker's first call waits for its new channel to connect. A call on a channel whose
# first connection attempt has not finished may fail at once with UNAVAILABLE (seen under load on a
# freshly started stack); waiting here once per process avoids that 503. When the orchestrator is
# down, the first call answers 503 this much later; later calls fail fast as before.
FIRST_CONNECT_SECONDS = 3.0


def _wait_until_connected(channel: grpc.Channel, seconds: float) -> None:
    """Wait up to ``seconds`` for a new channel to connect; go on either way (the call then decides)."""
    with contextlib.suppress(grpc.FutureTimeoutError):
        grpc.channel_ready_future(channel).result(timeout=seconds)


#: The deadline of one session export, from its first piece to its last.
EXPORT_TIMEOUT_SECONDS = 600.0


class ExportPieces:
    """The pieces of a streamed session export, in order; ``cancel`` ends the call early."""

    def __init__(self, call) -> None:
        self._call = call

    def __iter__(self) -> Iterator[str]:
        """Yield each piece of the document as the orchestrator sends it."""
        for response in self._call:
            yield response.document_piece

    def cancel(self) -> None:
        """End the call (the client went away); the orchestrator stops writing."""
        self._call.cancel()


@dataclasses.dataclass(frozen=True)
class _Stubs:
    """The stubs of one channel, created together with it."""

    channel: grpc.Channel
    pid: int
    auth: auth_pb2_grpc.AuthServiceStub
    tasks: tasks_pb2_grpc.TaskServiceStub
    events: events_pb2_grpc.EventServiceStub
    sessions: sessions_pb2_grpc.SessionServiceStub
    schedules: schedules_pb2_grpc.ScheduleServiceStub
    approvals: approvals_pb2_grpc.ApprovalServiceStub
    health: health_pb2_grpc.HealthStub

    @classmethod
    def connect(cls, address: str, tls: ClientTls | None) -> "_Stubs":
        if tls is None:
            channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        else:
            channel = grpc.secure_channel(address, tls.grpc_credentials(), options=_CHANNEL_OPTIONS)
        return cls(
            channel=channel,
            pid=os.getpid(),
            auth=auth_pb2_grpc.AuthServiceStub(channel),
            tasks=tasks_pb2_grpc.TaskServiceStub(channel),
            events=events_pb2_grpc.EventServiceStub(channel),
            sessions=sessions_pb2_grpc.SessionServiceStub(channel),
            schedules=schedules_pb2_grpc.ScheduleServiceStub(channel),
            approvals=approvals_pb2_grpc.ApprovalServiceStub(channel),
            health=health_pb2_grpc.HealthStub(channel),
        )


class OrchestratorClient:
    """Calls the orchestrator's services on behalf of an authenticated caller, with a deadline."""

    def __init__(
        self, address: str, service_token: str, timeout_seconds: float, tls: ClientTls | None = None
    ) -> None:
        self._address = address
        self._tls = tls
        self._service_token = service_token
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._stubs: _Stubs | None = None

    def validate_api_key(self, api_key: str, context: CallContext) -> auth_pb2.Principal:
        """Resolve an API key to its principal; an unknown, revoked or expired key is UNAUTHENTICATED."""
        request = auth_pb2.ValidateApiKeyRequest(api_key=api_key)
        response = self._call(self._connection().auth.ValidateApiKey, request, context)
        return response.principal

    def submit_task(
        self, request: tasks_pb2.SubmitTaskRequest, context: CallContext
    ) -> tasks_pb2.SubmitTaskResponse:
        """Queue a task for the caller."""
        return self._call(self._connection().tasks.SubmitTask, request, context)

    def get_task(self, task_id: str, context: CallContext) -> tasks_pb2.Task:
        """Read one of the caller's tasks; someone else's is NOT_FOUND."""
        request = tasks_pb2.GetTaskRequest(task_id=task_id)
        return self._call(self._connection().tasks.GetTask, request, context).task

    def list_tasks(
        self, request: tasks_pb2.ListTasksRequest, context: CallContext
    ) -> tasks_pb2.ListTasksResponse:
        """List the caller's tasks, newest first."""
        return self._call(self._connection().tasks.ListTasks, request, context)

    def list_events(
        self, request: events_pb2.ListEventsRequest, context: CallContext
    ) -> events_pb2.ListEventsResponse:
        """Page through one of the caller's tasks' stored events."""
        return self._call(self._connection().events.ListEvents, request, context)

    # Task control and timeline.

    def cancel_task(self, task_id: str, reason: str, context: CallContext) -> tasks_pb2.CancelTaskResponse:
        """Cancel one of the caller's tasks; a finished one is FAILED_PRECONDITION."""
        request = tasks_pb2.CancelTaskRequest(task_id=task_id, reason=reason)
        return self._call(self._connection().tasks.CancelTask, request, context)

    def pause_task(self, task_id: str, reason: str, context: CallContext) -> tasks_pb2.PauseTaskResponse:
        """Pause one of the caller's tasks; a paused or finished one is FAILED_PRECONDITION."""
        request = tasks_pb2.PauseTaskRequest(task_id=task_id, reason=reason)
        return self._call(self._connection().tasks.PauseTask, request, context)

    def resume_task(self, task_id: str, reason: str, context: CallContext) -> tasks_pb2.ResumeTaskResponse:
        """Resume one of the caller's paused tasks; one not paused is FAILED_PRECONDITION."""
        request = tasks_pb2.ResumeTaskRequest(task_id=task_id, reason=reason)
        return self._call(self._connection().tasks.ResumeTask, request, context)

    def get_control_state(self, task_id: str, context: CallContext) -> tasks_pb2.GetControlStateResponse:
        """Read whether one of the caller's tasks is paused or cancelled, by whom and why."""
        request = tasks_pb2.GetControlStateRequest(task_id=task_id)
        return self._call(self._connection().tasks.GetControlState, request, context)

    def get_timeline(self, task_id: str, context: CallContext) -> events_pb2.GetTimelineResponse:
        """Summarise one of the caller's tasks' events."""
        request = events_pb2.GetTimelineRequest(workflow_id=task_id)
        return self._call(self._connection().events.GetTimeline, request, context)

    # Approvals.

    def list_approvals(
        self, request: approvals_pb2.ListApprovalsRequest, context: CallContext
    ) -> approvals_pb2.ListApprovalsResponse:
        """List the caller's approvals, newest first."""
        return self._call(self._connection().approvals.ListApprovals, request, context)

    def decide_approval(
        self, request: approvals_pb2.DecideApprovalRequest, context: CallContext
    ) -> approvals_pb2.DecideApprovalResponse:
        """Approve or reject one of the caller's pending approvals; a decided one is FAILED_PRECONDITION."""
        return self._call(self._connection().approvals.DecideApproval, request, context)

    # Sessions, search and stats.

    def list_sessions(
        self, request: sessions_pb2.ListSessionsRequest, context: CallContext
    ) -> sessions_pb2.ListSessionsResponse:
        """List the caller's sessions, most recently active first."""
        return self._call(self._connection().sessions.ListSessions, request, context)

    def get_session(self, session_id: str, context: CallContext) -> sessions_pb2.Session:
        """Read one of the caller's sessions; someone else's or a deleted one is NOT_FOUND."""
        request = sessions_pb2.GetSessionRequest(session_id=session_id)
        return self._call(self._connection().sessions.GetSession, request, context).session

    def update_session(
        self, request: sessions_pb2.UpdateSessionRequest, context: CallContext
    ) -> sessions_pb2.UpdateSessionResponse:
        """Set a session's title; the answer carries the title as stored."""
        return self._call(self._connection().sessions.UpdateSession, request, context)

    def delete_session(self, session_id: str, context: CallContext) -> None:
        """Soft-delete one of the caller's sessions."""
        request = sessions_pb2.DeleteSessionRequest(session_id=session_id)
        self._call(self._connection().sessions.DeleteSession, request, context)

    def get_session_history(
        self, request: sessions_pb2.GetSessionHistoryRequest, context: CallContext
    ) -> sessions_pb2.GetSessionHistoryResponse:
        """Page through a session's tasks, oldest first."""
        return self._call(self._connection().sessions.GetSessionHistory, request, context)

    def list_session_turns(
        self, request: sessions_pb2.ListSessionTurnsRequest, context: CallContext
    ) -> sessions_pb2.ListSessionTurnsResponse:
        """Page through a session's turns with their events."""
        return self._call(self._connection().sessions.ListSessionTurns, request, context)

    def export_session(self, session_id: str, context: CallContext) -> ExportPieces:
        """Start streaming one of the caller's sessions as one JSON document; iterate it for its pieces.

        The whole export has ``EXPORT_TIMEOUT_SECONDS``, not the unary calls' deadline: a large
        session takes longer than a read, and the client reads the document at its own pace.
        """
        request = sessions_pb2.ExportSessionRequest(session_id=session_id)
        call = self._connection().sessions.ExportSession(
            request, metadata=self._metadata(context), timeout=max(self._timeout, EXPORT_TIMEOUT_SECONDS)
        )
        return ExportPieces(call)

    def search_tasks(
        self, request: sessions_pb2.SearchTasksRequest, context: CallContext
    ) -> sessions_pb2.SearchTasksResponse:
        """Search the caller's task queries and results."""
        return self._call(self._connection().sessions.SearchTasks, request, context)

    def get_stats(self, days: int, context: CallContext) -> sessions_pb2.GetStatsResponse:
        """Aggregate the caller's usage over the last ``days`` days."""
        request = sessions_pb2.GetStatsRequest(days=days)
        return self._call(self._connection().sessions.GetStats, request, context)

    # Accounts and API keys.

    def register_user(
        self, request: auth_pb2.RegisterUserRequest, context: CallContext
    ) -> auth_pb2.RegisterUserResponse:
        """Create a user in a new tenant; a taken email is ALREADY_EXISTS."""
        return self._call(self._connection().auth.RegisterUser, request, context)

    def login(self, request: auth_pb2.LoginRequest, context: CallContext) -> auth_pb2.TokenPair:
        """Exchange an email and password for tokens; wrong ones are UNAUTHENTICATED."""
        return self._call(self._connection().auth.Login, request, context).tokens

    def refresh_token(self, refresh_token: str, context: CallContext) -> auth_pb2.TokenPair:
        """Rotate a refresh token into a new pair; a used, expired or revoked one is UNAUTHENTICATED."""
        request = auth_pb2.RefreshTokenRequest(refresh_token=refresh_token)
        return self._call(self._connection().auth.RefreshToken, request, context).tokens

    def get_current_user(self, context: CallContext) -> auth_pb2.GetCurrentUserResponse:
        """Describe the caller's account."""
        return self._call(self._connection().auth.GetCurrentUser, auth_pb2.GetCurrentUserRequest(), context)

    def list_api_keys(self, context: CallContext) -> auth_pb2.ListApiKeysResponse:
        """List the caller's API keys, without their secrets."""
        return self._call(self._connection().auth.ListApiKeys, auth_pb2.ListApiKeysRequest(), context)

    def create_api_key(
        self, request: auth_pb2.CreateApiKeyRequest, context: CallContext
    ) -> auth_pb2.CreateApiKeyResponse:
        """Create an API key for the caller; the answer holds its secret, this once."""
        return self._call(self._connection().auth.CreateApiKey, request, context)

    def revoke_api_key(self, key_id: str, context: CallContext) -> None:
        """Revoke one of the caller's keys; someone else's is NOT_FOUND."""
        request = auth_pb2.RevokeApiKeyRequest(id=key_id)
        self._call(self._connection().auth.RevokeApiKey, request, context)

    def update_api_key(self, request: auth_pb2.UpdateApiKeyRequest, context: CallContext) -> auth_pb2.ApiKey:
        """Set a key's rate-limit overrides (admin or owner of its tenant)."""
        return self._call(self._connection().auth.UpdateApiKey, request, context).key

    # Schedules.

    def create_schedule(
        self, request: schedules_pb2.CreateScheduleRequest, context: CallContext
    ) -> schedules_pb2.CreateScheduleResponse:
        """Create a schedule for the caller."""
        return self._call(self._connection().schedules.CreateSchedule, request, context)

    def list_schedules(
        self, request: schedules_pb2.ListSchedulesRequest, context: CallContext
    ) -> schedules_pb2.ListSchedulesResponse:
        """List the caller's schedules, newest first."""
        return self._call(self._connection().schedules.ListSchedules, request, context)

    def get_schedule(self, schedule_id: str, context: CallContext) -> schedules_pb2.Schedule:
        """Read one of the caller's schedules; someone else's is NOT_FOUND."""
        request = schedules_pb2.GetScheduleRequest(schedule_id=schedule_id)
        return self._call(self._connection().schedules.GetSchedule, request, context).schedule

    def update_schedule(
        self, request: schedules_pb2.UpdateScheduleRequest, context: CallContext
    ) -> schedules_pb2.Schedule:
        """Change the fields present in the request; answer the schedule as stored."""
        return self._call(self._connection().schedules.UpdateSchedule, request, context).schedule

    def pause_schedule(
        self, schedule_id: str, reason: str, context: CallContext
    ) -> schedules_pb2.PauseScheduleResponse:
        """Stop one of the caller's schedules from firing."""
        request = schedules_pb2.PauseScheduleRequest(schedule_id=schedule_id, reason=reason)
        return self._call(self._connection().schedules.PauseSchedule, request, context)

    def resume_schedule(
        self, schedule_id: str, reason: str, context: CallContext
    ) -> schedules_pb2.ResumeScheduleResponse:
        """Let one of the caller's paused schedules fire again."""
        request = schedules_pb2.ResumeScheduleRequest(schedule_id=schedule_id, reason=reason)
        return self._call(self._connection().schedules.ResumeSchedule, request, context)

    def trigger_schedule(self, schedule_id: str, context: CallContext) -> str:
        """Run one of the caller's schedules now; return the workflow id of its task."""
        request = schedules_pb2.TriggerScheduleRequest(schedule_id=schedule_id)
        return self._call(self._connection().schedules.TriggerSchedule, request, context).workflow_id

    def delete_schedule(self, schedule_id: str, context: CallContext) -> None:
        """Delete one of the caller's schedules."""
        request = schedules_pb2.DeleteScheduleRequest(schedule_id=schedule_id)
        self._call(self._connection().schedules.DeleteSchedule, request, context)

    def list_schedule_runs(
        self, request: schedules_pb2.ListScheduleRunsRequest, context: CallContext
    ) -> schedules_pb2.ListScheduleRunsResponse:
        """List the tasks one of the caller's schedules started, newest first."""
        return self._call(self._connection().schedules.ListScheduleRuns, request, context)

    def is_serving(self, timeout_seconds: float) -> bool:
        """Return whether the orchestrator's gRPC health check answers SERVING within the timeout."""
        request = health_pb2.HealthCheckRequest(service="")
        try:
            response = self._connection().health.Check(request, timeout=timeout_seconds)
        except grpc.RpcError:
            return False
        return response.status == health_pb2.HealthCheckResponse.SERVING

    def close(self) -> None:
        """Close this process's channel, if it has one."""
        with self._lock:
            if self._stubs is not None and self._stubs.pid == os.getpid():
                self._stubs.channel.close()
            self._stubs = None

    def _call(self, method, request, context: CallContext):
        return method(request, metadata=self._metadata(context), timeout=self._timeout)

    def _metadata(self, context: CallContext) -> list[tuple[str, str]]:
        metadata = [(wire.SERVICE_TOKEN, self._service_token), (wire.REQUEST_ID, context.request_id)]
        if context.traceparent:
            metadata.append((wire.TRACEPARENT, context.traceparent))
        if context.principal is not None:
            metadata.extend(identity_headers(context.principal))
        return metadata

    def _connection(self) -> _Stubs:
        stubs = self._stubs
        if stubs is not None and stubs.pid == os.getpid():
            return stubs
        with self._lock:
            if self._stubs is None or self._stubs.pid != os.getpid():
                # A channel inherited over fork is unusable and is dropped, not closed.
                stubs = _Stubs.connect(self._address, self._tls)
                _wait_until_connected(stubs.channel, min(self._timeout, FIRST_CONNECT_SECONDS))
                self._stubs = stubs
            return self._stubs
