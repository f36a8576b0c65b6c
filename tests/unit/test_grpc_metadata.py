"""The trailing metadata of a failed call: what the orchestrator sets is what the gateway reads.

An INVALID_ARGUMENT names its field; a session_busy names its reason.
"""

import asyncio

import grpc
import pytest

from gateway.errors import error_for_rpc
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import SessionBusyError
from orchestrator.errors import TaskStateError
from orchestrator.services.status import unary_errors
from taskgate import wire


class AbortedError(Exception):
    """What the recording context raises where grpc.aio would raise AbortError."""


class RecordingContext:
    """A servicer context that keeps the trailing metadata and the status it is aborted with."""

    def __init__(self) -> None:
        self.trailing_metadata: tuple = ()
        self.status: tuple[grpc.StatusCode, str] | None = None

    def set_trailing_metadata(self, metadata: tuple) -> None:
        self.trailing_metadata = metadata

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.status = (code, details)
        raise AbortedError


class FailedCall(grpc.RpcError):
    """The gateway's view of the call the context aborted."""

    def __init__(self, context: RecordingContext) -> None:
        self._context = context

    def code(self) -> grpc.StatusCode:
        return self._context.status[0]

    def details(self) -> str:
        return self._context.status[1]

    def trailing_metadata(self) -> tuple:
        return self._context.trailing_metadata


def test_the_invalid_field_set_by_the_orchestrator_reaches_the_error_body() -> None:
    @unary_errors
    async def create_schedule(self, request, context) -> None:
        raise InvalidArgumentError("cron_expression", "cron_expression must have five fields")

    context = RecordingContext()
    with pytest.raises(AbortedError):
        asyncio.run(create_schedule(None, None, context))

    assert context.trailing_metadata == ((wire.INVALID_FIELD, "cron_expression"),)
    error = error_for_rpc(FailedCall(context))
    assert error.status_code == 400
    assert error.details == [{"field": "cron_expression", "message": error.message}]


def aborted_with(error: Exception) -> RecordingContext:
    """Run an RPC wrapped like the servicers' that raises ``error``; return the aborted context."""

    @unary_errors
    async def submit_task(self, request, context) -> None:
        raise error

    context = RecordingContext()
    with pytest.raises(AbortedError):
        asyncio.run(submit_task(None, None, context))
    return context


def test_a_busy_session_is_a_failed_precondition_naming_its_reason_and_reaches_http_as_409() -> None:
    context = aborted_with(SessionBusyError())

    assert context.status == (grpc.StatusCode.FAILED_PRECONDITION, SessionBusyError.default_message)
    assert context.trailing_metadata == ((wire.ERROR_CODE, "session_busy"),)
    error = error_for_rpc(FailedCall(context))
    assert (error.status_code, error.error_code, error.message) == (
        409,
        "session_busy",
        SessionBusyError.default_message,
    )


def test_another_task_state_error_keeps_its_409_conflict_without_a_reason() -> None:
    context = aborted_with(TaskStateError("Task has already finished"))

    assert context.status == (grpc.StatusCode.FAILED_PRECONDITION, "Task has already finished")
    assert context.trailing_metadata == ()
    error = error_for_rpc(FailedCall(context))
    assert (error.status_code, error.error_code) == (409, "conflict")
