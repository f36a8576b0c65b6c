"""Gunicorn settings for the gateway, taken from GatewaySettings (``TASKGATE_*`` variables).

Run: ``gunicorn -c deploy/gunicorn.conf.py``. No ``preload_app``: each worker imports the app after
the fork, so its gRPC channel is its own, and its metrics go to its own files in the directory the
master made for this run (prometheus_client's multiprocess mode; ``GET /metrics`` sums them).
"""

import logging
import os
import shutil
import tempfile

from gateway.client_write_deadline import StalledClientLogFilter
from gateway.log_redaction import CredentialRedactingFilter
from gateway.settings import GatewaySettings
from gateway.settings import worker_count_problem
from taskgate.garbage_collection import settle_after_start_up

_settings = GatewaySettings.from_env()
# prometheus_client's own variable; it must be set before a worker imports prometheus_client.
_METRICS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"

wsgi_app = "gateway.wsgi:application"
bind = [_settings.bind]
# One without TASKGATE_REDIS_URL: the workers would otherwise each keep their own rate-limit windows
# and idempotency records (gateway.settings; on_starting also refuses a -w given on the command line).
workers = _settings.workers
worker_class = _settings.worker_class
if worker_class == "gevent":
    # One greenlet per connection; open event streams count against this (and each holds two
    # file descriptors: the client's and the admin server's).
    worker_connections = _settings.worker_connections
else:
    threads = _settings.threads
preload_app = False
timeout = 30
graceful_timeout = 30
keepalive = 5
# The gateway itself decides whose X-Forwarded-* it believes (TASKGATE_TRUSTED_PROXIES, for client
# addresses and for HSTS); gunicorn must not turn a request https on such a header on its own.
forwarded_allow_ips = ""
secure_scheme_headers = {}
# The gateway writes its own JSON access log, one line per request.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
proc_name = "taskgate-gateway"
# Several gateways may run on one host (tests, `make run`); the shared default control socket
# path would make them collide, and nothing here uses gunicornc.
control_socket_disable = True


def on_starting(server) -> None:
    """Check the worker count, give this run a fresh metrics directory, and filter the error log.

    More than one worker without Redis is refused however it was asked for (``-w`` too), since the
    workers would count apart. A metrics directory left by an earlier run would add its counts to
    this one's, so it is never reused. Credentials and cut-off stalls stay out of the error log.
    """
    problem = worker_count_problem(server.cfg.workers, _settings.redis_url)
    if problem is not None:
        raise SystemExit(f"taskgate gateway: {problem}")
    os.environ[_METRICS_DIRECTORY] = tempfile.mkdtemp(prefix="taskgate-metrics-")
    error_log = logging.getLogger("gunicorn.error")
    error_log.addFilter(CredentialRedactingFilter())
    error_log.addFilter(StalledClientLogFilter())


def nworkers_changed(server, new_value, old_value) -> None:
    """Keep the one worker a gateway without Redis has when SIGTTIN asks for another."""
    problem = worker_count_problem(new_value, _settings.redis_url)
    if old_value is not None and problem is not None:
        server.log.warning("taskgate gateway: %s; keeping %s", problem, old_value)
        server.num_workers = old_value


def post_worker_init(worker) -> None:
    """Once a worker has loaded the app, keep the collector off its long-lived heap (open streams),
    and have its open streams ended as soon as it is told to stop (gateway.worker_shutdown)."""
    settle_after_start_up()
    from gateway.worker_shutdown import end_streams_when_stopping

    end_streams_when_stopping(worker)


def child_exit(server, worker) -> None:
    """Drop a dead worker's live gauges (open streams); its counters keep counting in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove this run's metrics directory."""
    directory = os.environ.get(_METRICS_DIRECTORY)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
