"""The API-key cache: TTL, bounds, rejection versus failure, one lookup per key at a time."""

import threading
import time

import grpc
import pytest

from gateway.api_key_validator import ApiKeyValidator
from gateway.caller import CallContext
from taskgate.orchestrator.v1 import auth_pb2
from tests.unit.gateway.fakes import FakeRpcError

CONTEXT = CallContext(request_id="r-1")


def key(n: int) -> str:
    return "sk_" + f"{n:064x}"


class CountingLookup:
    """Answers every well-known key with a principal named after it, counting lookups."""

    def __init__(self, delay: float = 0.0) -> None:
        self.lookups: list[str] = []
        self.delay = delay
        self.failure: Exception | None = None
        self.revoked: set[str] = set()

    def validate_api_key(self, api_key: str, context: CallContext) -> auth_pb2.Principal:
        self.lookups.append(api_key)
        time.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        if api_key in self.revoked:
            raise FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "Invalid API key")
        return auth_pb2.Principal(user_id=f"user-of-{api_key[-4:]}", tenant_id="t", role="user")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_valid_key_is_looked_up_once_within_the_ttl() -> None:
    lookup, clock = CountingLookup(), Clock()
    validator = ApiKeyValidator(lookup, ttl_seconds=5, clock=clock)
    first = validator.principal_for(key(1), CONTEXT)
    clock.now += 4.9
    assert validator.principal_for(key(1), CONTEXT) == first
    assert first.user_id == "user-of-0001"
    assert len(lookup.lookups) == 1


def test_after_the_ttl_a_revoked_key_is_refused() -> None:
    lookup, clock = CountingLookup(), Clock()
    validator = ApiKeyValidator(lookup, ttl_seconds=5, clock=clock)
    assert validator.principal_for(key(1), CONTEXT) is not None
    lookup.revoked.add(key(1))
    clock.now += 5
    assert validator.principal_for(key(1), CONTEXT) is None


def test_a_zero_ttl_disables_caching() -> None:
    lookup = CountingLookup()
    validator = ApiKeyValidator(lookup, ttl_seconds=0)
    validator.principal_for(key(1), CONTEXT)
    validator.principal_for(key(1), CONTEXT)
    assert len(lookup.lookups) == 2


def test_rejections_are_not_cached() -> None:
    lookup = CountingLookup()
    lookup.revoked.add(key(1))
    validator = ApiKeyValidator(lookup, ttl_seconds=5)
    assert validator.principal_for(key(1), CONTEXT) is None
    lookup.revoked.clear()
    assert validator.principal_for(key(1), CONTEXT) is not None


def test_an_orchestrator_failure_propagates() -> None:
    lookup = CountingLookup()
    lookup.failure = FakeRpcError(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(grpc.RpcError):
        ApiKeyValidator(lookup, ttl_seconds=5).principal_for(key(1), CONTEXT)


def test_the_cache_is_bounded_and_drops_the_oldest_entry() -> None:
    lookup = CountingLookup()
    validator = ApiKeyValidator(lookup, ttl_seconds=60, max_entries=2)
    for n in (1, 2, 3):
        validator.principal_for(key(n), CONTEXT)
    validator.principal_for(key(3), CONTEXT)
    validator.principal_for(key(2), CONTEXT)
    assert len(lookup.lookups) == 3
    validator.principal_for(key(1), CONTEXT)
    assert len(lookup.lookups) == 4


def test_the_cache_never_holds_the_key_itself() -> None:
    validator = ApiKeyValidator(CountingLookup(), ttl_seconds=60)
    validator.principal_for(key(1), CONTEXT)
    assert key(1) not in repr(vars(validator))


def test_concurrent_misses_for_one_key_share_one_lookup() -> None:
    lookup = CountingLookup(delay=0.05)
    validator = ApiKeyValidator(lookup, ttl_seconds=5)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(validator.principal_for(key(7), CONTEXT)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(lookup.lookups) == 1
    assert len(results) == 8 and len(set(results)) == 1
