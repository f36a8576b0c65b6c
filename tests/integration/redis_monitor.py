"""Count the commands clients send to a Redis server (its round trips), with MONITOR.

Commands a Lua script runs are reported by MONITOR as coming from ``lua``; they travel no network
and are left out, so what is counted is exactly the requests clients made.
"""

import collections
import contextlib
import threading
import uuid

import redis

_STOP_TIMEOUT_SECONDS = 10.0


@contextlib.contextmanager
def client_commands(url: str):
    """Yield a Counter that, once the block ends, holds every command clients sent meanwhile, by name."""
    counts: collections.Counter[str] = collections.Counter()
    marker = f"monitor-stop-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(url)
    # The marker goes over a connection opened before watching starts, so its handshake is not seen.
    marker_client = redis.Redis.from_url(url)
    marker_client.ping()
    ready = threading.Event()
    done = threading.Event()

    def watch() -> None:
        with client.monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                command = entry["command"]
                if marker in command:
                    break
                if entry.get("client_type") != "lua":
                    counts[command.split(" ", 1)[0].lower()] += 1
        done.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(_STOP_TIMEOUT_SECONDS)
    try:
        yield counts
    finally:
        marker_client.echo(marker)
        done.wait(_STOP_TIMEOUT_SECONDS)
        marker_client.close()
        client.close()
