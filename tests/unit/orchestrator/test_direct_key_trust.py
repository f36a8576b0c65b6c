"""A direct gRPC caller's API key is trusted for the cache time after a check, never past its expiry."""

import asyncio
import datetime

import pytest

from orchestrator.caller import Caller
from orchestrator.errors import UnauthenticatedError
from orchestrator.identity import CallerResolver
from taskgate import wire
from taskgate.rfc3339 import utc_now

KEY = "sk_" + "c3" * 32
OTHER_KEY = "sk_" + "d4" * 32
SERVICE_TOKEN = "test-service-token-0123456789"
CACHE_SECONDS = 5.0


class Keys:
    """The store's answers, which a test changes (revoking a key), counting every check."""

    def __init__(self) -> None:
        self.checks = 0
        self.valid: dict[str, tuple[Caller, datetime.datetime | None]] = {
            KEY: (Caller("user-1", "tenant-1", api_key_id="key-1"), None),
            OTHER_KEY: (Caller("user-2", "tenant-2", api_key_id="key-2"), None),
        }

    async def authenticate_until(self, presented: str) -> tuple[Caller, datetime.datetime | None] | None:
        self.checks += 1
        return self.valid.get(presented)

    async def authenticate(self, presented: str) -> Caller | None:
        found = await self.authenticate_until(presented)
        return found[0] if found else None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def resolve(resolver: CallerResolver, key: str) -> Caller:
    return asyncio.run(resolver.resolve({wire.API_KEY: key}))


def test_a_key_is_checked_once_per_cache_time_and_a_revoked_one_stops_when_it_ends():
    keys, clock = Keys(), Clock()
    resolver = CallerResolver(SERVICE_TOKEN, keys, CACHE_SECONDS, clock)
    assert resolve(resolver, KEY).user_id == "user-1"
    assert resolve(resolver, KEY).user_id == "user-1"
    assert resolve(resolver, OTHER_KEY).user_id == "user-2"
    assert keys.checks == 2

    del keys.valid[KEY]  # revoked
    clock.now += CACHE_SECONDS - 0.1
    assert resolve(resolver, KEY).user_id == "user-1"
    clock.now += 0.2
    with pytest.raises(UnauthenticatedError):
        resolve(resolver, KEY)
    # A refused key is not remembered: each call asks again.
    with pytest.raises(UnauthenticatedError):
        resolve(resolver, KEY)
    assert keys.checks == 4


def test_a_key_is_not_trusted_past_its_own_expiry():
    keys, clock = Keys(), Clock()
    keys.valid[KEY] = (keys.valid[KEY][0], utc_now() - datetime.timedelta(seconds=1))
    resolver = CallerResolver(SERVICE_TOKEN, keys, CACHE_SECONDS, clock)
    # The store answered (as it would have a moment before the expiry); the entry is already stale.
    resolve(resolver, KEY)
    resolve(resolver, KEY)
    assert keys.checks == 2


def test_without_a_cache_time_every_call_checks_the_key():
    keys = Keys()
    resolver = CallerResolver(SERVICE_TOKEN, keys, 0.0)
    for _ in range(3):
        resolve(resolver, KEY)
    assert keys.checks == 3
