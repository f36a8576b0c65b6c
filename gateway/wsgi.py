"""The WSGI entry point gunicorn serves: ``gateway.wsgi:application``.

The app is built on the first request of each worker process, from the environment, so importing
this module reads nothing and connects to nothing; gRPC channels are then made after gunicorn's
fork, one per worker.
"""

import sys
import threading
from collections.abc import Iterable

import falcon

from gateway.app import create_app
from gateway.settings import GatewaySettings
from taskgate.json_logging import configure_logging

_app: falcon.App | None = None
_app_lock = threading.Lock()


def use_gevent_if_patched() -> None:
    """Make gRPC cooperative when gevent has patched sockets (gunicorn's gevent worker).

    This must run before the process's first gRPC channel exists.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        from grpc.experimental import gevent as grpc_gevent

        grpc_gevent.init_gevent()


def get_app() -> falcon.App:
    """Build the gateway app from the environment (settings, JSON logs, gevent-aware gRPC)."""
    settings = GatewaySettings.from_env()
    configure_logging(settings.log_level)
    use_gevent_if_patched()
    return create_app(settings)


def application(environ: dict, start_response) -> Iterable[bytes]:
    """Serve a request with this process's app, building it on first use."""
    global _app
    if _app is None:
        with _app_lock:
            if _app is None:
                _app = get_app()
    return _app(environ, start_response)
