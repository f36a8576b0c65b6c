"""The OpenAI error body, ``{"error": {"message", "type", "param", "code"}}``, for routes under ``/v1/``.

Every other route keeps the gateway's own error body (``gateway.errors.serialize_error``); the
serializer installed on the app picks one by the request's path, so errors raised by middleware
(authentication, rate limits, body limits) take the OpenAI shape on these routes too.
"""

from typing import Any

import falcon

from gateway import json_body
from gateway.errors import UNAUTHORIZED_CHALLENGE
from gateway.errors import ApiError
from gateway.errors import error_for_status
from gateway.errors import serialize_error

OPENAI_PATH_PREFIX = "/v1/"

# The error ``type`` OpenAI clients expect for each status; others are server errors.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
# Codes renamed to the ones OpenAI clients know; the rest keep the gateway's code.
_CODES = {"unauthorized": "invalid_api_key", "rate_limited": "rate_limit_exceeded"}


def is_openai_path(path: str) -> bool:
    """Return whether a request path is one of the OpenAI-compatible routes."""
    return path.startswith(OPENAI_PATH_PREFIX)


def model_not_found(model: str) -> ApiError:
    """Return the 404 for a model id that is not served (the id is the client's own input, echoed)."""
    return ApiError(
        404,
        f"The model '{model[:128]}' does not exist",
        "model_not_found",
        details=[{"field": "model", "message": "is not a served model"}],
    )


def invalid_request(param: str, message: str) -> ApiError:
    """Return a 400 naming the body member at fault, as OpenAI's ``param``."""
    return ApiError(
        400, f"'{param}' {message}", "invalid_request_error", details=[{"field": param, "message": message}]
    )


def openai_error_body(status: int, message: str, code: str, param: str | None) -> dict[str, Any]:
    """Return the OpenAI error body for a status, message, code and the offending parameter."""
    error_type = _TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": error_type, "param": param, "code": _CODES.get(code, code)}}


def openai_error_for(exception: falcon.HTTPError) -> dict[str, Any]:
    """Return the OpenAI error body of any HTTP error the gateway raises."""
    if isinstance(exception, ApiError):
        message, code, details = exception.message, exception.error_code, exception.details
    else:
        default = error_for_status(exception.status_code)
        message, code, details = default.message, default.error_code, None
    param = details[0].get("field") if details else None
    if details and code == "validation_failed":
        message = "; ".join(f"'{item['field']}' {item['message']}" for item in details)
    return openai_error_body(exception.status_code, message, code, param)


def serialize_error_by_path(req: falcon.Request, resp: falcon.Response, exception: falcon.HTTPError) -> None:
    """Write the OpenAI error body on ``/v1/`` routes and the gateway's own body everywhere else."""
    if not is_openai_path(req.path):
        serialize_error(req, resp, exception)
        return
    resp.data = json_body.dumps(openai_error_for(exception))
    resp.content_type = falcon.MEDIA_JSON
    if exception.status_code == 401:
        resp.set_header("WWW-Authenticate", UNAUTHORIZED_CHALLENGE)
