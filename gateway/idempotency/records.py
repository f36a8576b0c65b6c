"""The stored idempotency record: in flight (owner token) or done (the response to replay).

Layout, one binary-safe string: a kind byte (``P`` in flight, ``D`` done), the 64-hex request
fingerprint, then for ``P`` the owner token and for ``D`` one line of JSON (status, headers)
followed by the response body exactly as it was sent.
"""

import dataclasses
import json

PENDING = b"P"
DONE = b"D"
_FINGERPRINT_LENGTH = 64
_HEADER_END = _FINGERPRINT_LENGTH + 1

# The response headers a replay repeats; the others (request id, rate limits, security headers…)
# describe the replaying request and are set afresh.
REPLAYED_HEADERS = frozenset(
    {
        "content-type",
        "content-disposition",
        "content-location",
        "location",
        "link",
        "etag",
        "last-modified",
        "x-workflow-id",
        "x-session-id",
    }
)


class MalformedRecordError(ValueError):
    """A stored value is not an idempotency record (written by something else)."""


@dataclasses.dataclass(frozen=True)
class StoredResponse:
    """A final response as replays repeat it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclasses.dataclass(frozen=True)
class Record:
    """A record found under a key: its request fingerprint, and the response once it is done."""

    fingerprint: str
    response: StoredResponse | None


def pending_value(fingerprint: str, owner: str) -> bytes:
    """Return the in-flight record of the request with this fingerprint and owner token."""
    return PENDING + fingerprint.encode("ascii") + owner.encode("ascii")


def final_value(fingerprint: str, response: StoredResponse) -> bytes:
    """Return the done record holding a response."""
    meta = json.dumps({"status": response.status, "headers": [list(pair) for pair in response.headers]})
    return DONE + fingerprint.encode("ascii") + meta.encode("ascii") + b"\n" + response.body


def parse_record(value: bytes) -> Record:
    """Return the record a stored value holds; MalformedRecordError if it is not one."""
    kind = value[:1]
    fingerprint = value[1:_HEADER_END].decode("ascii", "replace")
    if len(fingerprint) != _FINGERPRINT_LENGTH or kind not in (PENDING, DONE):
        raise MalformedRecordError("not an idempotency record")
    if kind == PENDING:
        return Record(fingerprint=fingerprint, response=None)
    meta, newline, body = value[_HEADER_END:].partition(b"\n")
    if not newline:
        raise MalformedRecordError("idempotency record without a body separator")
    try:
        fields = json.loads(meta)
        response = StoredResponse(
            status=int(fields["status"]),
            headers=tuple((str(name), str(text)) for name, text in fields["headers"]),
            body=body,
        )
    except (ValueError, KeyError, TypeError) as ex:
        raise MalformedRecordError("unreadable idempotency record") from ex
    return Record(fingerprint=fingerprint, response=response)
