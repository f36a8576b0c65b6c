"""The write deadline on a streamed response's client socket, and the log line for a cut-off."""

import logging
import socket
import sys

from gateway.client_write_deadline import STALLED_CLIENT_MESSAGE
from gateway.client_write_deadline import StalledClientLogFilter
from gateway.client_write_deadline import WriteDeadline


class Body:
    def __init__(self):
        self.closed = False

    def __iter__(self):
        return iter([b"a", b"b"])

    def close(self):
        self.closed = True


def test_the_deadline_is_set_for_the_body_s_life_and_the_old_timeout_comes_back():
    client, peer = socket.socketpair()
    try:
        client.settimeout(7.0)
        body = Body()

        deadline = WriteDeadline(body, {"gunicorn.socket": client}, 2.5)

        assert client.gettimeout() == 2.5
        assert list(deadline) == [b"a", b"b"]
        deadline.close()
        assert client.gettimeout() == 7.0 and body.closed
        deadline.close()  # a second close is harmless
    finally:
        client.close()
        peer.close()


def test_without_a_server_socket_the_body_is_passed_through():
    body = Body()

    deadline = WriteDeadline(body, {}, 2.5)

    assert list(deadline) == [b"a", b"b"]
    deadline.close()
    assert body.closed


def test_a_closed_socket_does_not_stop_the_body_closing():
    client, peer = socket.socketpair()
    peer.close()
    body = Body()
    deadline = WriteDeadline(body, {"gunicorn.socket": client}, 1.0)
    client.close()

    deadline.close()

    assert body.closed


def _record(message: str, error: BaseException | None) -> logging.LogRecord:
    exc_info = (type(error), error, None) if error is not None else None
    return logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, message, (), exc_info)


def test_gunicorn_s_traceback_for_a_timed_out_write_becomes_one_warning():
    record = _record("Socket error processing request.", TimeoutError("timed out"))

    assert StalledClientLogFilter().filter(record)

    assert record.getMessage() == STALLED_CLIENT_MESSAGE
    assert record.levelno == logging.WARNING and record.exc_info is None


def test_other_socket_errors_keep_their_traceback():
    error = OSError(9, "Bad file descriptor")
    record = _record("Socket error processing request.", error)

    assert StalledClientLogFilter().filter(record)

    assert record.levelno == logging.ERROR and record.exc_info[1] is error
    assert sys.exc_info() == (None, None, None)
