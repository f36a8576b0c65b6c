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


def test_a_rejected_key_is_remembered_for_the_rejection_ttl_only() -> None:
    lookup, clock = CountingLookup(), Clock()
    lookup.revoked.add(key(7))
    validator = ApiKeyValidator(lookup, ttl_seconds=5, clock=clock, rejection_ttl_seconds=2)
    for _ in range(50):
        assert validator.principal_for(key(7), CONTEXT) is None
    assert lookup.lookups == [key(7)]
    clock.now += 2.0
    # Past the rejection TTL the orchestrator is asked again: a key created since would now work.
    lookup.revoked.clear()
    assert validator.principal_for(key(7), CONTEXT).user_id == "user-of-0007"
    assert lookup.lookups == [key(7), key(7)]


def test_a_failed_lookup_is_not_remembered_as_a_rejection() -> None:
    lookup, clock = CountingLookup(), Clock()
    validator = ApiKeyValidator(lookup, ttl_seconds=5, clock=clock, rejection_ttl_seconds=2)
    lookup.failure = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down")
    with pytest.raises(grpc.RpcError):
        validator.principal_for(key(8), CONTEXT)
    lookup.failure = None
    assert validator.principal_for(key(8), CONTEXT) is not None
    assert len(lookup.lookups) == 2


def test_rejections_are_bounded_and_the_oldest_goes_first() -> None:
    lookup, clock = CountingLookup(), Clock()
    lookup.revoked.update(key(n) for n in range(3))
    validator = ApiKeyValidator(lookup, ttl_seconds=5, max_entries=2, clock=clock, rejection_ttl_seconds=60)
    for n in range(3):
        validator.principal_for(key(n), CONTEXT)
    validator.principal_for(key(2), CONTEXT)
    validator.principal_for(key(0), CONTEXT)
    assert lookup.lookups == [key(0), key(1), key(2), key(0)]


def test_a_known_principal_is_read_from_the_cache_without_a_lookup() -> None:
    lookup, clock = CountingLookup(), Clock()
    validator = ApiKeyValidator(lookup, ttl_seconds=5, clock=clock)
    assert validator.known_principal(key(9)) is None
    principal = validator.principal_for(key(9), CONTEXT)
    assert validator.known_principal(key(9)) == principal
    clock.now += 5
    assert validator.known_principal(key(9)) is None
    assert len(lookup.lookups) == 1
