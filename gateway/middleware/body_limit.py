"""The request body cap: 413 before a body over ``max_body_bytes`` is read."""

import io

import falcon

from gateway.errors import error_for_status

_READ_SIZE = 64 * 1024


class CappedStream(io.RawIOBase):
    """A read-only stream that raises 413 as soon as more than ``limit`` bytes have been read."""

    def __init__(self, stream: io.IOBase, limit: int) -> None:
        super().__init__()
        self._stream = stream
        self._limit = limit
        self._consumed = 0

    def readable(self) -> bool:
        """Return True: this is a read-only stream."""
        return True

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all when negative), failing once the limit is passed."""
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(_READ_SIZE):
                chunks.append(chunk)
            return b"".join(chunks)
        # Ask for one byte more than the remaining budget so an over-long body is noticed.
        data = self._stream.read(min(size, self._limit - self._consumed + 1))
        self._consumed += len(data)
        if self._consumed > self._limit:
            raise error_for_status(413)
        return data

    def readinto(self, buffer: bytearray) -> int:
        """Read into a buffer, failing once the limit is passed."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class BodyLimitMiddleware:
    """Refuse bodies over the cap: by Content-Length before reading, by counting when chunked."""

    def __init__(self, max_body_bytes: int) -> None:
        self._max_body_bytes = max_body_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Reject a declared length over the cap; cap the stream of a chunked body."""
        length = req.content_length
        if length is not None:
            if length > self._max_body_bytes:
                raise error_for_status(413)
        elif is_chunked(req):
            req.stream = CappedStream(req.stream, self._max_body_bytes)


def is_chunked(req: falcon.Request) -> bool:
    """Return whether the request body comes with chunked transfer encoding (no Content-Length)."""
    return "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
