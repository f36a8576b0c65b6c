"""Password hashing with argon2id, off the event loop.

argon2-cffi's defaults are RFC 9106's second recommended profile (argon2id, 3 passes over 64 MiB,
4 lanes). Each hash takes tens of milliseconds of CPU and 64 MiB, so it runs in a worker thread,
and at most a few run at once: a burst of logins queues rather than exhausting memory.

A login for an unknown email (or a user without a password) is checked against a dummy hash with
the same parameters, so it takes as long as a wrong password and the answer time does not reveal
which emails have accounts.
"""

import asyncio
import secrets

import argon2

MAX_CONCURRENT_HASHES = 4


class PasswordHasher:
    """Hashes and checks passwords with argon2id in worker threads."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """Return the encoded argon2id hash (parameters and salt included) of a password."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether a password matches a stored hash; with no hash, spend the same time and say no."""
        if stored_hash is None:
            await self._verify(await self._dummy(), password)
            return False
        return await self._verify(stored_hash, password)

    async def _verify(self, stored_hash: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._matches, stored_hash, password)

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
