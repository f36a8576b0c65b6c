"""PostgreSQL notices: LISTEN on one channel over a connection of its own, and call back for each.

A ``NoticeListener`` holds one connection outside the pool (a pooled connection is lent and
returned, and a LISTEN lives as long as its connection) and waits for notices with psycopg's
async ``notifies()``, so the event loop is never blocked. Callbacks run on the loop, coalesced:
however many notices arrive together, each callback is called once for them. After each
(re)connection the callbacks are called once too, since a notice sent while the listener was away
is lost. When the database goes away the listener reconnects with exponential backoff (what it
notifies about must have a fallback: the worker pool polls), and the connection is checked every
``CHECK_EVERY_SECONDS`` with a bounded query, so one silently cut off is replaced. The connection
is closed without a goodbye (``close`` never waits on the network), so neither a dead server
nor ``close`` can hold the listener up.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

RECONNECT_MIN_SECONDS = 0.25
RECONNECT_MAX_SECONDS = 10.0
CHECK_EVERY_SECONDS = 30.0
CHECK_TIMEOUT_SECONDS = 5.0

NoticeCallback = Callable[[], None]


class NoticeListener:
    """Listens on one channel of one database and calls its callbacks when a notice arrives."""

    def __init__(self, url: str, channel: str, connection_settings: dict[str, Any]) -> None:
        self._url = url
        self._channel = channel
        # The name operators see in pg_stat_activity (and what a test looks the connection up by).
        self._connection_settings = {**connection_settings, "application_name": f"taskgate-listen-{channel}"}
        self._callbacks: list[NoticeCallback] = []
        self._listen_task: asyncio.Task[None] | None = None
        self._delivery_due = False

    def add_callback(self, callback: NoticeCallback) -> None:
        """Call ``callback()`` on this loop for notices from now on; start listening if not yet."""
        self._callbacks.append(callback)
        if self._listen_task is None:
            self._listen_task = asyncio.get_running_loop().create_task(
                self._listen_forever(), name=f"listen-{self._channel}"
            )

    async def close(self) -> None:
        """Stop listening, close the connection and forget the callbacks."""
        if self._listen_task is not None:
            self._listen_task.cancel()
            await asyncio.gather(self._listen_task, return_exceptions=True)
            self._listen_task = None
        self._callbacks.clear()

    async def _listen_forever(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        failing = False
        while True:
            connection: psycopg.AsyncConnection[Any] | None = None
            try:
                connection = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, **self._connection_settings
                )
                await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                if failing:
                    logger.info("listening for notices again", extra={"channel": self._channel})
                delay, failing = RECONNECT_MIN_SECONDS, False
                # Whatever was notified while no connection listened is lost: call back once now.
                self._notice()
                await self._receive(connection)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, TimeoutError) as ex:
                if not failing:
                    logger.warning(
                        "not listening for notices; reconnecting (polling covers meanwhile)",
                        extra={"channel": self._channel, "error": type(ex).__name__},
                    )
                failing = True
            except Exception:
                logger.exception(
                    "listening for notices failed; reconnecting", extra={"channel": self._channel}
                )
                failing = True
            finally:
                if connection is not None:
                    await connection.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _receive(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Call back for notices until the connection fails, checking it every ``CHECK_EVERY_SECONDS``."""
        while True:
            async for _ in connection.notifies(timeout=CHECK_EVERY_SECONDS):
                self._notice()
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await connection.execute("SELECT 1")

    def _notice(self) -> None:
        """Schedule one delivery to the callbacks, unless one is already due (a flood is coalesced)."""
        if not self._delivery_due:
            self._delivery_due = True
            asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        self._delivery_due = False
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:
                logger.exception("notice callback failed", extra={"channel": self._channel})
