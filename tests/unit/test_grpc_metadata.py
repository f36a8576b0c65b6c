"""The metadata key naming an invalid field: what the orchestrator sets is what the gateway reads."""

import asyncio

import grpc
import pytest

from gateway.errors import error_for_rpc
from orchestrator.errors import InvalidArgumentError
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
