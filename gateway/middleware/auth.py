"""Authentication: find the caller's credential, validate it, record the principal."""

import dataclasses

import falcon

from gateway.access_tokens import AccessTokenVerifier
from gateway.api_key_validator import ApiKeyValidator
from gateway.caller import Principal
from gateway.caller import call_context
from gateway.errors import ApiError
from taskgate import dev_bypass
from taskgate.access_tokens import looks_like_jwt
from taskgate.api_keys import normalise_api_key

STREAM_PATH_PREFIX = "/api/v1/stream/"
# The development bypass's caller (TASKGATE_SKIP_AUTH=1, dev and test only).
DEV_PRINCIPAL = Principal(
    user_id=dev_bypass.USER_ID, tenant_id=dev_bypass.TENANT_ID, role=dev_bypass.ROLE, tier=dev_bypass.TIER
)


@dataclasses.dataclass(frozen=True)
class Credential:
    """A credential as presented, and whether where it came from may carry an access token (JWT)."""

    value: str = dataclasses.field(repr=False)
    may_be_token: bool


def presented_credential(req: falcon.Request) -> Credential | None:
    """Return the credential a request presents, in the order of API.md, or None.

    ``X-API-Key`` first (a key only), then ``Authorization: Bearer`` (a key or an access token);
    the ``api_key`` (a key) and ``token`` (either) query parameters only on the stream routes,
    where browsers' EventSource cannot set headers.
    """
    api_key = req.get_header("X-API-Key")
    if api_key and api_key.strip():
        return Credential(api_key.strip(), may_be_token=False)
    authorization = req.get_header("Authorization")
    if authorization:
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            return Credential(credential.strip(), may_be_token=True)
    if req.path.startswith(STREAM_PATH_PREFIX):
        for name, may_be_token in (("api_key", False), ("token", True)):
            value = req.get_param(name)
            if value:
                return Credential(value, may_be_token)
    return None


class AuthMiddleware:
    """Require a valid credential on every route except those whose resource is marked ``public``.

    Unknown routes are left to the router's 404, and OPTIONS to its default responder, which
    reveals nothing but the allowed methods. Anything shaped like an API key (``sk_…``, or
    ``sk-shannon-…``) is validated as one, wherever it came from; otherwise a Bearer (or ``token``)
    credential is verified as an access token. With the development bypass on, a request without
    any credential acts as ``DEV_PRINCIPAL``.
    """

    def __init__(
        self, api_keys: ApiKeyValidator, access_tokens: AccessTokenVerifier, skip_auth: bool = False
    ) -> None:
        self._api_keys = api_keys
        self._access_tokens = access_tokens
        self._skip_auth = skip_auth

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict
    ) -> None:
        """Set ``req.context.principal`` or raise 401; an orchestrator failure propagates (503/504)."""
        if resource is None or getattr(resource, "public", False) or req.method == "OPTIONS":
            return
        credential = presented_credential(req)
        if credential is None:
            if self._skip_auth:
                req.context.principal = DEV_PRINCIPAL
                return
            raise ApiError(401, "Authentication required", "unauthorized")
        req.context.principal = self._principal(credential, req)

    def _principal(self, credential: Credential, req: falcon.Request) -> Principal:
        api_key = normalise_api_key(credential.value)
        if api_key is not None:
            principal = self._api_keys.principal_for(api_key, call_context(req))
            if principal is None:
                raise ApiError(401, "Invalid API key", "unauthorized")
            return principal
        if credential.may_be_token and looks_like_jwt(credential.value):
            principal = self._access_tokens.principal_for(credential.value)
            if principal is None:
                raise ApiError(401, "Invalid or expired access token", "unauthorized")
            return principal
        raise ApiError(401, "Invalid API key", "unauthorized")
