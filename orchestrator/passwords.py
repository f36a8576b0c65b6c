"""Password hashing with argon2id, off the event loop, with a bounded queue.

argon2-cffi's defaults are RFC 9106's second recommended profile (argon2id, 3 passes over 64 MiB,
4 lanes). Each hash takes tens of milliseconds of CPU and 64 MiB, so it runs in a worker thread,
and at most a few run at once (``MAX_CONCURRENT_HASHES``). Beyond them at most ``max_waiting``
calls wait for a slot; one more is refused at once (``PasswordHasherBusyError``: UNAVAILABLE with
a ``retry-after``, a 503 at the gateway). A flood of logins therefore costs a bounded wait: the
queue never grows past what the slots drain well within the gateway's deadline, so a real login
is answered (or told to come back) instead of timing out behind the flood.

A login for an unknown email (or a user without a password) is checked against a dummy hash with
the same parameters, so it takes as long as a wrong password and the answer time does not reveal
which emails have accounts.
"""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import argon2

from orchestrator.errors import PasswordHasherBusyError

MAX_CONCURRENT_HASHES = 4
DEFAULT_MAX_WAITING = 32
# What a refused call is told: the slots drain a full queue in well under this.
BUSY_RETRY_AFTER_SECONDS = 1


class PasswordHasher:
    """Hashes and checks passwords with argon2id in worker threads, refusing beyond a bounded queue."""

    def __init__(
        self, hasher: argon2.PasswordHasher | None = None, max_waiting: int = DEFAULT_MAX_WAITING
    ) -> None:
        self._hasher = hasher or argon2.PasswordHasher()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        self._max_waiting = max_waiting
        self._waiting = 0
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """Return the encoded argon2id hash (parameters and salt included) of a password."""
        async with self._slot():
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether a password matches a stored hash; with no hash, spend the same time and say no."""
        if stored_hash is None:
            await self._verify(await self._dummy(), password)
            return False
        return await self._verify(stored_hash, password)

    async def _verify(self, stored_hash: str, password: str) -> bool:
        async with self._slot():
            return await asyncio.to_thread(self._matches, stored_hash, password)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """Hold a hashing slot; wait for one only while fewer than ``max_waiting`` calls wait."""
        # One loop runs every call, so the check and the count below cannot interleave.
        if self._slots.locked() and self._waiting >= self._max_waiting:
            raise PasswordHasherBusyError(BUSY_RETRY_AFTER_SECONDS)
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    def _matches(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    async def _dummy(self) -> str:
        # Made on first use; two first uses at once each make one, which is harmless.
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
