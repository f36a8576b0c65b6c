"""Authentication: find the caller's credential, validate it, record the principal."""

import falcon

from gateway.api_key_validator import ApiKeyValidator
from gateway.caller import call_context
from gateway.errors import ApiError
from taskgate.api_keys import normalise_api_key

STREAM_PATH_PREFIX = "/api/v1/stream/"
_QUERY_CREDENTIALS = ("api_key", "token")


def presented_credential(req: falcon.Request) -> str | None:
    """Return the credential a request presents, in the order of API.md, or None.

    ``X-API-Key`` first, then ``Authorization: Bearer``; the ``api_key`` / ``token`` query
    parameters only on the stream routes, where browsers' EventSource cannot set headers.
    """
    api_key = req.get_header("X-API-Key")
    if api_key and api_key.strip():
        return api_key.strip()
    authorization = req.get_header("Authorization")
    if authorization:
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            return credential.strip()
    if req.path.startswith(STREAM_PATH_PREFIX):
        for name in _QUERY_CREDENTIALS:
            value = req.get_param(name)
            if value:
                return value
    return None


class AuthMiddleware:
    """Require a valid credential on every route except those whose resource is marked ``public``.

    Unknown routes are left to the router's 404, and OPTIONS to its default responder, which
    reveals nothing but the allowed methods.
    """

    def __init__(self, api_keys: ApiKeyValidator) -> None:
        self._api_keys = api_keys

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict
    ) -> None:
        """Set ``req.context.principal`` or raise 401; an orchestrator failure propagates (503/504)."""
        if resource is None or getattr(resource, "public", False) or req.method == "OPTIONS":
            return
        credential = presented_credential(req)
        if credential is None:
            raise ApiError(401, "Authentication required", "unauthorized")
        api_key = normalise_api_key(credential)
        if api_key is None:
            raise ApiError(401, "Invalid API key", "unauthorized")
        principal = self._api_keys.principal_for(api_key, call_context(req))
        if principal is None:
            raise ApiError(401, "Invalid API key", "unauthorized")
        req.context.principal = principal
