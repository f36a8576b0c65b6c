"""Which requests an Idempotency-Key applies to, and the claim such a request makes.

A key applies to authenticated POST and PATCH requests, except the auth routes (their responses
carry credentials, which are never stored). It must be 1..255 printable ASCII characters. The
record is scoped to the user and the route (method, route template and path parameters), and the
request is identified by its body: the same JSON value however it is spaced or its keys ordered,
else the exact bytes. Reading the body for that leaves it readable for the resource.
"""

import hashlib
import io
import json
import re
import secrets

import falcon
from falcon.stream import BoundedStream

from gateway.errors import ValidationError
from gateway.idempotency.claims import PendingClaim
from gateway.idempotency.records import pending_value
from gateway.middleware.body_limit import is_chunked
from taskgate.redis_keys import KeyNamer

HEADER = "Idempotency-Key"
KEY_RULE = "must be 1 to 255 printable ASCII characters"
_KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
_METHODS = frozenset({"POST", "PATCH"})
_EXEMPT_PATH_PREFIX = "/api/v1/auth/"


def is_valid_key(value: str) -> bool:
    """Return whether a header value is a usable idempotency key."""
    return _KEY_PATTERN.fullmatch(value) is not None


def body_fingerprint(body: bytes) -> str:
    """Return the hex SHA-256 of a body's canonical JSON form, or of its bytes if it is not JSON."""
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return hashlib.sha256(b"raw\n" + body).hexdigest()
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(b"json\n" + canonical.encode("ascii")).hexdigest()


def buffer_body(req: falcon.Request) -> bytes:
    """Read the whole body and put it back, so the resource reads the same bytes afterwards.

    Read the way the body hooks read it (by Content-Length, else chunked through the capped stream,
    so the body limit still answers 413), then offered again both as ``req.stream`` and as the WSGI
    input ``req.bounded_stream`` wraps.
    """
    if req.content_length is not None:
        body = BoundedStream(req.env["wsgi.input"], req.content_length).read()
    elif is_chunked(req):
        body = req.stream.read()
    else:
        body = b""
    replay = io.BytesIO(body)
    req.env["wsgi.input"] = replay
    req.stream = replay
    return body


class IdempotencyPolicy:
    """Turn a request carrying an Idempotency-Key into the claim it makes (or None if none applies)."""

    def __init__(self, namer: KeyNamer, lease_seconds: float) -> None:
        self._namer = namer
        self._lease_ms = max(1, int(lease_seconds * 1000))

    def pending_claim(self, req: falcon.Request, params: dict) -> PendingClaim | None:
        """Return the request's claim (made once per request), None if no key applies; 400 if malformed."""
        if req.method not in _METHODS:
            return None
        claim = req.context.get("idempotency_claim")
        if claim is not None:
            return claim
        principal = req.context.get("principal")
        key = req.get_header(HEADER)
        if key is None or principal is None or req.path.startswith(_EXEMPT_PATH_PREFIX):
            return None
        if not is_valid_key(key):
            raise ValidationError([{"field": HEADER, "message": KEY_RULE}])
        fingerprint = body_fingerprint(buffer_body(req))
        route = [f"{name}={value}" for name, value in sorted(params.items())]
        scope = self._namer.digest("idempotency", req.method, req.uri_template or req.path, *route, key)
        partition = self._namer.user_partition(principal.tenant_id, principal.user_id)
        claim = PendingClaim(
            partition=partition,
            key=KeyNamer.key(partition, "idem", scope),
            fingerprint=fingerprint,
            pending_value=pending_value(fingerprint, secrets.token_hex(16)),
            lease_ms=self._lease_ms,
        )
        req.context.idempotency_claim = claim
        return claim


def _reject_constant(name: str) -> None:
    """Refuse NaN and Infinity, which are not JSON: such a body is fingerprinted by its bytes."""
    raise ValueError(f"{name} is not JSON")
