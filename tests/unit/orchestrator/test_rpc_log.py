"""The orchestrator's RPC log: one line per call with its code, request id and traceparent only."""

import asyncio
import logging

import grpc
import pytest

from orchestrator.rpc_log import RpcLogInterceptor
from orchestrator.rpc_log import correlation_fields

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
SECRET = "service-token-that-must-not-be-logged"


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    if request == b"missing":
        await context.abort(grpc.StatusCode.NOT_FOUND, "Task not found")
    return request


async def _count(request: bytes, context: grpc.aio.ServicerContext):
    for index in range(3):
        yield bytes([index])


async def call_server(*calls: tuple[str, bytes, tuple]) -> list:
    server = grpc.aio.server(interceptors=(RpcLogInterceptor(),))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Echo",
                {
                    "Say": grpc.unary_unary_rpc_method_handler(_echo),
                    "Count": grpc.unary_stream_rpc_method_handler(_count),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    results = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for method, request, metadata in calls:
                if method == "Count":
                    results.append(
                        [
                            r
                            async for r in channel.unary_stream("/test.Echo/Count")(
                                request, metadata=metadata
                            )
                        ]
                    )
                    continue
                try:
                    results.append(await channel.unary_unary("/test.Echo/Say")(request, metadata=metadata))
                except grpc.aio.AioRpcError as ex:
                    results.append(ex.code())
    finally:
        await server.stop(None)
    return results


def rpc_lines(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "orchestrator.rpc"]


def test_each_call_is_logged_once_with_its_code_and_correlation_ids(caplog) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.rpc")
    metadata = (
        ("x-request-id", "req-42"),
        ("traceparent", TRACEPARENT),
        ("x-taskgate-service-token", SECRET),
    )
    results = asyncio.run(
        call_server(("Say", b"hi", metadata), ("Say", b"missing", metadata), ("Count", b"", metadata))
    )
    assert results == [b"hi", grpc.StatusCode.NOT_FOUND, [b"\x00", b"\x01", b"\x02"]]
    lines = rpc_lines(caplog)
    assert [(line.rpc, line.code) for line in lines] == [
        ("/test.Echo/Say", "OK"),
        ("/test.Echo/Say", "NOT_FOUND"),
        ("/test.Echo/Count", "OK"),
    ]
    for line in lines:
        assert (line.request_id, line.traceparent) == ("req-42", TRACEPARENT)
        assert line.duration_ms >= 0
        assert SECRET not in repr(vars(line))


def test_a_call_without_correlation_ids_is_logged_without_them(caplog) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.rpc")
    asyncio.run(call_server(("Say", b"hi", ())))
    (line,) = rpc_lines(caplog)
    assert not hasattr(line, "request_id") and not hasattr(line, "traceparent")


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (
            (("x-request-id", "ok-1"), ("traceparent", TRACEPARENT)),
            {"request_id": "ok-1", "traceparent": TRACEPARENT},
        ),
        ((("x-request-id", "has space"), ("traceparent", "garbage")), {}),
        ((("x-request-id", "x" * 129),), {}),
        ((("x-api-key", "sk_secret"), ("authorization", "Bearer x")), {}),
        (None, {}),
    ],
)
def test_only_well_formed_correlation_ids_are_taken(metadata, expected) -> None:
    assert correlation_fields(metadata) == expected


def test_nothing_is_logged_at_warning_level(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="orchestrator.rpc")
    asyncio.run(call_server(("Say", b"hi", ())))
    assert rpc_lines(caplog) == []
