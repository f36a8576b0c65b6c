"""Answering the RPCs that are not built yet with UNIMPLEMENTED, quietly.

The generated base servicers answer UNIMPLEMENTED by raising NotImplementedError from a method
that grpc runs in a thread, and grpc logs every such call as an error with a traceback. The
servicers here keep the generated methods' meaning, but without the thread or the log line.
"""

from collections.abc import AsyncIterator
from typing import Any
from typing import TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor

NOT_IMPLEMENTED_MESSAGE = "Not implemented"
_GENERATED_MODULE_SUFFIX = "_pb2_grpc"

Servicer = TypeVar("Servicer")


async def _unimplemented_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, NOT_IMPLEMENTED_MESSAGE)


async def _unimplemented_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, NOT_IMPLEMENTED_MESSAGE)
    yield


def quiet_unimplemented(servicer: Servicer, service: ServiceDescriptor) -> Servicer:
    """Replace, on this instance, every RPC still inherited from the generated base servicer."""
    for method in service.methods:
        implementation = getattr(type(servicer), method.name)
        if implementation.__module__.endswith(_GENERATED_MODULE_SUFFIX):
            replacement = _unimplemented_stream if method.server_streaming else _unimplemented_unary
            setattr(servicer, method.name, replacement)
    return servicer
