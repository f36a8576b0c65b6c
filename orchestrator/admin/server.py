"""Hosting the admin ASGI app with uvicorn inside the orchestrator's running event loop.

Every connection is accepted by an ``AdminConnection`` (``admin.sse_connection``), which serves
``GET /stream/sse`` itself and hands every other request to uvicorn's HTTP protocol.
"""

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable
from collections.abc import Callable

import uvicorn

from orchestrator.admin.sse_connection import AdminConnection
from orchestrator.admin.sse_connection import SseStreams

# Open SSE streams never end on their own; after this long at shutdown they are cut.
SHUTDOWN_GRACE_SECONDS = 2
# Room for a burst of new streams (thousands of watchers reconnecting at once); the kernel caps it.
LISTEN_BACKLOG = 4096
# uvicorn's complaint when an app ends a response early; the admin app does that only on purpose,
# to cut off a client that stopped reading (admin.app), and logs that itself.
_INCOMPLETE_RESPONSE = "ASGI callable returned without completing response."
# uvicorn's complaint after a WebSocket handshake answered with an HTTP error (admin.websocket),
# which it counts as never completed although the response went out whole.
_INCOMPLETE_HANDSHAKE = "ASGI callable returned without completing handshake."


def _not_an_incomplete_response(record: logging.LogRecord) -> bool:
    return record.msg not in (_INCOMPLETE_RESPONSE, _INCOMPLETE_HANDSHAKE)


def _listening_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """Return a TCP listener whose accepted connections get TCP_NODELAY from asyncio.

    asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP, and
    ``socket.create_server`` leaves it 0. Without it a response's head and body (two writes) and
    frames written back to back wait for the peer's delayed ACK: some 40 ms each.

    With ``reuse_port`` several processes listen on the same port (SO_REUSEPORT) and the kernel
    spreads new connections over them: how stream processes share one address.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class AdminServer:
    """The admin HTTP listener: uvicorn serving one ASGI app, started and stopped by the orchestrator.

    With ``sse``, ``GET /stream/sse`` is served on the lean path of ``admin.sse_connection``.
    ``end_streams`` is called first when it stops: streams that never end on their own (the task
    feed) end then, and their clients resume elsewhere, instead of being cut after the grace.
    """

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        host: str,
        port: int,
        ping_seconds: float = 20.0,
        ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
        sse: SseStreams | None = None,
        end_streams: Callable[[], None] | None = None,
    ) -> None:
        self._app = app
        self._sse = sse
        self._end_streams = end_streams
        self._reuse_port = reuse_port
        # With a context, the listener speaks only TLS (taskgate.tls).
        self._ssl_context = ssl_context
        self._host = host
        self._port = port
        # WebSocket streams get a protocol-level ping this often (SSE streams send ``: ping``).
        self._ping_seconds = ping_seconds
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._main_loop: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind and start serving; return the bound port. Raises OSError when the address is taken."""
        self._socket = _listening_socket(self._host, self._port, self._reuse_port)
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_level="warning",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            ws_ping_interval=self._ping_seconds,
            ssl_context_factory=self._tls_context if self._ssl_context else None,
        )
        config.load()
        logging.getLogger("uvicorn.error").addFilter(_not_an_incomplete_response)
        self._server = uvicorn.Server(config)
        # startup/main_loop/shutdown instead of serve(): serve() installs its own signal handlers,
        # and the orchestrator owns SIGINT/SIGTERM for both of its servers. serve() would also
        # set up the (disabled) lifespan protocol, which startup() expects.
        server = self._server
        server.lifespan = config.lifespan_class(config)
        await server.lifespan.startup()

        def uvicorn_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(
                config=config, server_state=server.server_state, app_state=server.lifespan.state
            )

        def accepted() -> asyncio.Protocol:
            if self._sse is None:
                return uvicorn_protocol()
            return AdminConnection(self._sse, uvicorn_protocol, server.server_state)

        # What uvicorn's startup() does with a socket, with the connection's first protocol ours;
        # its shutdown() then closes this listener and winds down every connection and task.
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(
            accepted, sock=self._socket, ssl=config.ssl, backlog=LISTEN_BACKLOG
        )
        server.servers = [listener]
        server.started = True
        self._main_loop = asyncio.create_task(self._server.main_loop(), name="admin server")
        return self._socket.getsockname()[1]

    def _tls_context(
        self, config: uvicorn.Config, default_factory: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        return self._ssl_context

    async def stop(self) -> None:
        """Stop accepting, let open responses end within the grace period, then cut them."""
        if self._server is None:
            return
        if self._end_streams is not None:
            self._end_streams()
        self._server.should_exit = True
        if self._main_loop is not None:
            await self._main_loop
        await self._server.shutdown(sockets=[self._socket] if self._socket else None)
        self._server = None
