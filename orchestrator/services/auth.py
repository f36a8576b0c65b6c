"""AuthService: API-key validation for the gateway (the account RPCs answer UNIMPLEMENTED for now)."""

import grpc

from orchestrator.errors import UnauthenticatedError
from orchestrator.identity import CallerResolver
from orchestrator.identity import metadata_dict
from orchestrator.services.messages import principal_to_proto
from orchestrator.services.status import unary_errors
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import auth_pb2_grpc

INVALID_KEY_MESSAGE = "Invalid API key"


class AuthServiceServicer(auth_pb2_grpc.AuthServiceServicer):
    """Credential checks on behalf of the gateway."""

    def __init__(self, callers: CallerResolver) -> None:
        self._callers = callers

    @unary_errors
    async def ValidateApiKey(  # noqa: N802 (gRPC method names are PascalCase)
        self, request: auth_pb2.ValidateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ValidateApiKeyResponse:
        """Resolve an API key to its principal; only service-token holders may ask."""
        self._callers.require_service(metadata_dict(context.invocation_metadata()))
        caller = await self._callers.authenticator.authenticate(request.api_key)
        if caller is None:
            raise UnauthenticatedError(INVALID_KEY_MESSAGE)
        return auth_pb2.ValidateApiKeyResponse(principal=principal_to_proto(caller))
