"""Password hashing: argon2id, checked without revealing whether an account has a password, bounded queue."""

import asyncio
import threading

import argon2
import pytest

from orchestrator.errors import PasswordHasherBusyError
from orchestrator.passwords import MAX_CONCURRENT_HASHES
from orchestrator.passwords import PasswordHasher


def cheap() -> PasswordHasher:
    return PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def test_a_hash_is_argon2id_salted_and_checks_only_its_password():
    async def scenario():
        hasher = cheap()
        first, second = await hasher.hash("correct horse"), await hasher.hash("correct horse")
        assert first.startswith("$argon2id$") and first != second
        assert await hasher.verify(first, "correct horse")
        assert not await hasher.verify(first, "wrong horse")
        assert not await hasher.verify("not a hash", "correct horse")

    asyncio.run(scenario())


def test_no_hash_is_checked_against_a_dummy_and_never_matches():
    async def scenario():
        hasher = cheap()
        assert not await hasher.verify(None, "")
        assert not await hasher.verify(None, "anything at all")

    asyncio.run(scenario())


def test_the_default_parameters_are_the_rfc_9106_profile():
    encoded = asyncio.run(PasswordHasher().hash("correct horse"))
    assert encoded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


class GatedHasher(argon2.PasswordHasher):
    """An argon2 hasher whose every hash waits for the test to open the gate (in its worker thread)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)

    def hash(self, password, *, salt=None):
        self.started.release()
        self.gate.wait(timeout=60)
        return super().hash(password, salt=salt)


def test_beyond_the_slots_and_the_bounded_queue_a_hash_is_refused_at_once_with_a_retry_after():
    async def scenario():
        gated = GatedHasher()
        hasher = PasswordHasher(gated, max_waiting=2)
        running = [asyncio.create_task(hasher.hash(f"running {n}")) for n in range(MAX_CONCURRENT_HASHES)]
        for _ in range(MAX_CONCURRENT_HASHES):
            await asyncio.to_thread(gated.started.acquire)
        waiting = [asyncio.create_task(hasher.hash(f"waiting {n}")) for n in range(2)]
        await asyncio.sleep(0)
        # Every slot is held and the queue is full: the next call is refused without waiting.
        with pytest.raises(PasswordHasherBusyError) as refused:
            await hasher.verify(None, "one too many")
        assert refused.value.retry_after_seconds >= 1
        gated.gate.set()
        hashes = await asyncio.gather(*running, *waiting)
        assert len(hashes) == MAX_CONCURRENT_HASHES + 2
        # With the queue drained, calls are served again.
        assert await hasher.verify(hashes[0], "running 0")

    asyncio.run(scenario())


def test_a_cancelled_wait_leaves_the_queue():
    async def scenario():
        gated = GatedHasher()
        hasher = PasswordHasher(gated, max_waiting=1)
        running = [asyncio.create_task(hasher.hash("running")) for _ in range(MAX_CONCURRENT_HASHES)]
        for _ in range(MAX_CONCURRENT_HASHES):
            await asyncio.to_thread(gated.started.acquire)
        waiting = asyncio.create_task(hasher.hash("given up"))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        queued = asyncio.create_task(hasher.hash("queued"))
        await asyncio.sleep(0)
        gated.gate.set()
        assert (await queued).startswith("$argon2id$")
        await asyncio.gather(*running)

    asyncio.run(scenario())
