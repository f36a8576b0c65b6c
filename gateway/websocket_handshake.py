"""The WebSocket opening handshake (RFC 6455 section 4) as the gateway checks and forwards it.

The gateway does not speak WebSocket itself: it checks the client's handshake, forwards it to the
admin stream server with the caller's identity, and hands the admin server's answer back, so the
key, the accept value and any negotiated subprotocol or extension are the two ends' own.
"""

import base64
import binascii
import dataclasses
import email.message
import hashlib
import http.client
import io
import re

import falcon

from gateway.errors import ApiError

WEBSOCKET_VERSION = "13"
# The GUID every accept value is derived with (RFC 6455 section 1.3).
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_KEY_BYTES = 16
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] ([1-5][0-9][0-9])(?: [^\r\n]*)?$")
# Characters no header value may carry into the forwarded request.
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclasses.dataclass(frozen=True)
class ClientHandshake:
    """What a client's upgrade request asks for; the gateway passes each on unchanged."""

    key: str
    protocol: str | None = None
    extensions: str | None = None


@dataclasses.dataclass(frozen=True)
class HandshakeResponse:
    """The status and headers of an upstream's answer to an upgrade request."""

    status: int
    headers: email.message.Message

    def header(self, name: str) -> str | None:
        """Return a header's value (several joined with ``, ``), or None."""
        values = self.headers.get_all(name)
        return ", ".join(values) if values else None


def client_handshake(req: falcon.Request) -> ClientHandshake:
    """Check a request's handshake headers: 426 when it asks for no WebSocket upgrade, 400 if malformed."""
    if not _has_token(req.get_header("Upgrade"), "websocket") or not _has_token(
        req.get_header("Connection"), "upgrade"
    ):
        raise ApiError(
            426,
            "This route speaks WebSocket: send Upgrade: websocket and Connection: Upgrade",
            "upgrade_required",
            headers={"Upgrade": "websocket"},
        )
    if (req.get_header("Sec-WebSocket-Version") or "").strip() != WEBSOCKET_VERSION:
        raise ApiError(
            400,
            f"Sec-WebSocket-Version must be {WEBSOCKET_VERSION}",
            "bad_request",
            headers={"Sec-WebSocket-Version": WEBSOCKET_VERSION},
        )
    key = (req.get_header("Sec-WebSocket-Key") or "").strip()
    if not _is_valid_key(key):
        raise ApiError(400, "Sec-WebSocket-Key must be 16 bytes in base64", "bad_request")
    return ClientHandshake(
        key=key,
        protocol=_optional_header(req, "Sec-WebSocket-Protocol"),
        extensions=_optional_header(req, "Sec-WebSocket-Extensions"),
    )


def accept_value(key: str) -> str:
    """Return the ``Sec-WebSocket-Accept`` value that answers a ``Sec-WebSocket-Key``."""
    return base64.b64encode(
        hashlib.sha1(key.encode("ascii") + _ACCEPT_GUID, usedforsecurity=False).digest()
    ).decode("ascii")


def upgrade_request(host: str, target: str, handshake: ClientHandshake, headers: dict[str, str]) -> bytes:
    """Return the bytes of the upgrade request for ``target``, with the client's handshake and ``headers``.

    Raises ValueError when a value holds a line break or another control character.
    """
    fields = {
        "Host": host,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": handshake.key,
        "Sec-WebSocket-Version": WEBSOCKET_VERSION,
        **headers,
    }
    if handshake.protocol:
        fields["Sec-WebSocket-Protocol"] = handshake.protocol
    if handshake.extensions:
        fields["Sec-WebSocket-Extensions"] = handshake.extensions
    if _UNSAFE_VALUE.search(target) or " " in target:
        raise ValueError("unsafe request target")
    lines = [f"GET {target} HTTP/1.1"]
    for name, value in fields.items():
        if _UNSAFE_VALUE.search(value):
            raise ValueError(f"unsafe value for header {name}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_response_head(head: bytes) -> HandshakeResponse:
    """Parse a response's status line and headers (the bytes up to the blank line); ValueError if bad."""
    status_line, _, header_block = head.partition(b"\r\n")
    match = _STATUS_LINE.match(status_line)
    if match is None:
        raise ValueError("not an HTTP/1.1 status line")
    try:
        headers = http.client.parse_headers(io.BytesIO(header_block + b"\r\n"))
    except http.client.HTTPException as ex:
        raise ValueError("malformed response headers") from ex
    return HandshakeResponse(status=int(match.group(1)), headers=headers)


def _has_token(value: str | None, token: str) -> bool:
    """Whether a comma-separated header value lists ``token`` (case-insensitive)."""
    return value is not None and token in (item.strip().lower() for item in value.split(","))


def _is_valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == _KEY_BYTES
    except (binascii.Error, ValueError):
        return False


def _optional_header(req: falcon.Request, name: str) -> str | None:
    value = (req.get_header(name) or "").strip()
    return value or None
