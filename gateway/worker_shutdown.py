"""What a gateway worker does when gunicorn stops it (SIGTERM): end its open event streams at once.

gunicorn stops accepting, then waits up to its graceful timeout for the worker's requests to end.
An event stream never ends by itself, and a relay waiting for the next upstream frame notices its
client has gone only at the write after that; so a worker with open or recently closed streams
would wait out the whole graceful timeout. Instead a watcher (a greenlet under gevent, a thread
under gthread) ends every upstream stream as soon as the worker is told to stop; the relays finish
their responses and the worker exits once its other requests are done. Clients reconnect with
Last-Event-ID and lose nothing.
"""

import logging
import threading
import time

from gateway.open_streams import end_open_streams

logger = logging.getLogger(__name__)

CHECK_SECONDS = 0.5


def end_streams_when_stopping(worker) -> None:
    """Start watching a gunicorn worker; once it stops being alive, end its open streams."""
    if worker.cfg.worker_class_str == "gevent":
        import gevent

        gevent.spawn(_watch, worker, gevent.sleep)
    else:
        threading.Thread(target=_watch, args=(worker, time.sleep), name="stream-ender", daemon=True).start()


def _watch(worker, sleep) -> None:
    while worker.alive:
        sleep(CHECK_SECONDS)
    ended = end_open_streams()
    if ended:
        logger.info("worker stopping: ended its open event streams", extra={"streams": ended})
