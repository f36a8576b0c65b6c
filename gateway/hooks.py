"""Per-route ``falcon.before`` hooks: a JSON body (required or optional), a well-formed id in the path."""

import json

import falcon

from gateway.errors import ApiError
from gateway.errors import ValidationError
from gateway.errors import error_for_status
from gateway.middleware.body_limit import is_chunked
from taskgate.identifiers import ID_RULE
from taskgate.identifiers import is_valid_id

# `curl -d '{...}'` labels its body as a form; such a body (or an unlabelled one) is taken when it
# is JSON, so the one-line curl examples work, and is 415 otherwise. Any other type is 415 outright.
_LENIENT_MEDIA_TYPES = frozenset({"", "application/x-www-form-urlencoded"})


def require_json_object(req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
    """Parse the body as a JSON object into ``req.context.json``: 415 if not JSON, 400 if malformed."""
    media_type = _media_type(req.content_type)
    lenient = media_type in _LENIENT_MEDIA_TYPES
    if not lenient and not _is_json_media_type(media_type):
        raise error_for_status(415)
    if req.content_length is not None:
        raw = req.bounded_stream.read()
    elif is_chunked(req):
        raw = req.stream.read()
    else:
        raw = b""
    if not raw.strip():
        raise ApiError(400, "Request body must be a JSON object", "bad_request")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        if lenient:
            raise error_for_status(415) from None
        raise ApiError(400, "Request body is not valid JSON", "bad_request") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object", "bad_request")
    req.context.json = body


def optional_json_object(req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
    """Like ``require_json_object``, but no body at all is the empty object (the body is optional)."""
    if not req.content_length and not is_chunked(req):
        req.context.json = {}
        return
    require_json_object(req, resp, resource, params)


def _media_type(content_type: str | None) -> str:
    """Return the lower-case media type of a Content-Type header, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json_media_type(media_type: str) -> bool:
    """Return whether a media type is application/json or an application/*+json type."""
    return media_type == falcon.MEDIA_JSON or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _reject_constant(name: str) -> None:
    """Refuse NaN and Infinity, which Python's parser accepts but JSON does not have."""
    raise ValueError(f"{name} is not JSON")


def require_valid_id(
    req: falcon.Request, resp: falcon.Response, resource: object, params: dict, field: str
) -> None:
    """Reject a path id that does not match the id pattern of API.md with 400."""
    if not is_valid_id(params[field]):
        raise ValidationError([{"field": field, "message": ID_RULE}])
