"""Gunicorn settings for the gateway, taken from GatewaySettings (``TASKGATE_*`` variables).

Run: ``gunicorn -c deploy/gunicorn.conf.py``. No ``preload_app``: each worker imports the app after
the fork, so its gRPC channel is its own.
"""

from gateway.settings import GatewaySettings

_settings = GatewaySettings.from_env()

wsgi_app = "gateway.wsgi:application"
bind = [_settings.bind]
workers = _settings.workers
worker_class = _settings.worker_class
if worker_class == "gevent":
    # One greenlet per connection; open SSE streams count against this.
    worker_connections = 2000
else:
    threads = _settings.threads
preload_app = False
timeout = 30
graceful_timeout = 30
keepalive = 5
# The gateway writes its own JSON access log, one line per request.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
proc_name = "taskgate-gateway"
# Several gateways may run on one host (tests, `make run`); the shared default control socket
# path would make them collide, and nothing here uses gunicornc.
control_socket_disable = True
