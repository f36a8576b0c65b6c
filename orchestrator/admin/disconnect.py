"""How a streaming responder of the admin app learns that its client has gone away.

Falcon does not hand ``receive`` to responders, so the app's connection wrapper (``admin.app``)
puts it in the ASGI scope under ``RECEIVE_SCOPE_KEY``.
"""

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable

import falcon.asgi

# The ASGI scope key under which the app finds the connection's ``receive`` callable.
RECEIVE_SCOPE_KEY = "taskgate.receive"


def disconnect_waiter(req: falcon.asgi.Request) -> Callable[[], Awaitable[None]]:
    """Return a coroutine function that returns once the client has gone away."""
    receive = req.scope.get(RECEIVE_SCOPE_KEY)

    async def wait_for_disconnect() -> None:
        if receive is None:
            # Served without the wrapper: a disconnect is noticed only when a write fails.
            await asyncio.Event().wait()
        while (await receive())["type"] != "http.disconnect":
            pass

    return wait_for_disconnect
