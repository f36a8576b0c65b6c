"""The Redis scripts of the limiter and the idempotency store, against a real redis-server.

The concurrency tests also run against the in-process limiter and store (the embedded default),
which must hold the same exactness for the threads or greenlets of its one worker.
"""

import concurrent.futures
import threading
import time
import uuid

import pytest
import redis

from gateway.idempotency.claims import PendingClaim
from gateway.idempotency.records import StoredResponse
from gateway.idempotency.records import final_value
from gateway.idempotency.records import pending_value
from gateway.idempotency.redis_store import RedisIdempotencyStore
from gateway.idempotency.store import InMemoryIdempotencyStore
from gateway.rate_limit.memory import InMemorySlidingWindowLimiter
from gateway.rate_limit.redis_limiter import RedisSlidingWindowLimiter
from gateway.redis_client import GatewayRedis
from gateway.redis_client import RedisUnavailableError
from gateway.redis_client import connect
from taskgate.rate_limits.windows import RateLimitSubject
from taskgate.rate_limits.windows import WindowRule

FINGERPRINT = "e" * 64


@pytest.fixture
def gateway_redis(redis_server):
    client = connect(redis_server.url, timeout_seconds=2.0)
    yield GatewayRedis(client)
    client.close()


def fresh_subject(minute: int = 5, hour: int = 8) -> RateLimitSubject:
    return RateLimitSubject(
        partition="u:" + uuid.uuid4().hex,
        counter="c",
        rules=(WindowRule("minute", minute), WindowRule("hour", hour)),
    )


def test_the_script_admits_exactly_the_limit_and_refusals_cost_nothing(gateway_redis, redis_server) -> None:
    limiter = RedisSlidingWindowLimiter(gateway_redis)
    subject = fresh_subject(minute=5, hour=8)
    results = [limiter.admit(subject).status for _ in range(7)]
    assert [status.allowed for status in results] == [True] * 5 + [False] * 2
    assert [status.window("minute").remaining for status in results] == [4, 3, 2, 1, 0, 0, 0]
    assert [status.window("hour").remaining for status in results] == [7, 6, 5, 4, 3, 3, 3]
    refused = results[-1]
    assert refused.limited_by == "minute"
    assert 59 <= refused.retry_after_seconds <= 60
    assert abs(refused.checked_at - time.time()) < 5
    first = results[0]
    assert first.window("minute").reset_at == pytest.approx(first.checked_at + 60, abs=0.01)
    assert refused.window("minute").reset_at == pytest.approx(first.checked_at + 60, abs=0.01)
    plain = redis.Redis.from_url(redis_server.url)
    minute_key = subject.key(subject.rules[0])
    assert plain.zcard(minute_key) == 5
    assert 59_000 < plain.pttl(minute_key) <= 60_000
    assert 3_599_000 < plain.pttl(subject.key(subject.rules[1])) <= 3_600_000
    plain.close()


def test_old_entries_leave_the_window(gateway_redis, redis_server) -> None:
    limiter = RedisSlidingWindowLimiter(gateway_redis)
    subject = fresh_subject(minute=2, hour=10)
    plain = redis.Redis.from_url(redis_server.url)
    now_ms = int(time.time() * 1000)
    # Two requests admitted 61 s and 30 s ago (as the script would have recorded them).
    for rule in subject.rules:
        plain.zadd(subject.key(rule), {"old": now_ms - 61_000, "recent": now_ms - 30_000})
    status = limiter.admit(subject).status
    assert status.allowed
    assert status.window("minute").remaining == 0
    assert status.window("hour").remaining == 7
    refused = limiter.admit(subject).status
    assert (refused.allowed, refused.limited_by) == (False, "minute")
    assert 28 <= refused.retry_after_seconds <= 31
    plain.close()


def test_the_hour_window_refuses_when_the_minute_has_room(gateway_redis) -> None:
    limiter = RedisSlidingWindowLimiter(gateway_redis)
    subject = fresh_subject(minute=50, hour=3)
    assert [limiter.admit(subject).status.allowed for _ in range(4)] == [True, True, True, False]
    refused = limiter.admit(subject).status
    assert refused.limited_by == "hour"
    assert 3590 <= refused.retry_after_seconds <= 3600
    assert refused.window("minute").remaining == 47


@pytest.fixture(params=["redis", "in-process"])
def shared_state(request):
    """Make (limiter, idempotency store) pairs seeing the same state: Redis clients, or one process's."""
    if request.param == "in-process":
        limiter, store = InMemorySlidingWindowLimiter(), InMemoryIdempotencyStore()
        yield lambda: (limiter, store)
        return
    url = request.getfixturevalue("redis_server").url
    clients = []

    def connected():
        clients.append(connect(url, timeout_seconds=5.0))
        gateway_redis = GatewayRedis(clients[-1])
        return RedisSlidingWindowLimiter(gateway_redis), RedisIdempotencyStore(gateway_redis)

    yield connected
    for client in clients:
        client.close()


def test_concurrent_requests_admit_exactly_the_limit(shared_state) -> None:
    limiters = [shared_state()[0] for _ in range(2)]
    subject = fresh_subject(minute=40, hour=1000)
    barrier = threading.Barrier(16)

    def burst(index: int) -> list[bool]:
        barrier.wait()
        return [limiters[index % 2].admit(subject).status.allowed for _ in range(5)]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = [allowed for batch in pool.map(burst, range(16)) for allowed in batch]
    assert results.count(True) == 40


def claim(owner: str, key: str, lease_ms: int = 10_000) -> PendingClaim:
    partition = key.split("{")[1].split("}")[0]
    return PendingClaim(partition, key, FINGERPRINT, pending_value(FINGERPRINT, owner), lease_ms)


def test_one_of_concurrent_claims_owns_the_key(shared_state) -> None:
    stores = [shared_state()[1] for _ in range(2)]
    key = f"tg:{{u:{uuid.uuid4().hex}}}:idem:k"
    barrier = threading.Barrier(12)

    def attempt(index: int):
        barrier.wait()
        return stores[index % 2].claim(claim(f"{index:032x}", key)).existing

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        found = list(pool.map(attempt, range(12)))
    assert found.count(None) == 1
    assert all(record.response is None for record in found if record is not None)


def test_complete_and_release_only_for_the_owner_and_the_lease_expires(gateway_redis) -> None:
    store = RedisIdempotencyStore(gateway_redis)
    key = f"tg:{{u:{uuid.uuid4().hex}}}:idem:k"
    owner, intruder = claim("1" * 32, key), claim("2" * 32, key)
    assert store.claim(owner).existing is None
    store.release(intruder)
    assert not store.complete(intruder, b"x", 60_000)
    response = StoredResponse(201, (("content-type", "application/json"),), b'{"a": 1}\n')
    assert store.complete(owner, final_value(FINGERPRINT, response), 60_000)
    assert store.claim(intruder).existing.response == response

    short = f"tg:{{u:{uuid.uuid4().hex}}}:idem:k"
    assert store.claim(claim("3" * 32, short, lease_ms=100)).existing is None
    time.sleep(0.25)
    assert store.claim(claim("4" * 32, short)).existing is None


def test_the_limiter_makes_the_claim_in_the_same_call(gateway_redis) -> None:
    limiter = RedisSlidingWindowLimiter(gateway_redis)
    subject = fresh_subject(minute=2, hour=10)
    key = f"tg:{{{subject.partition}}}:idem:k"
    first = limiter.admit(subject, claim("1" * 32, key))
    assert first.claim is not None and first.claim.existing is None
    second = limiter.admit(subject, claim("2" * 32, key))
    assert second.claim.existing.fingerprint == FINGERPRINT
    refused = limiter.admit(subject, claim("3" * 32, key))
    assert (refused.status.allowed, refused.claim) == (False, None)
    elsewhere = limiter.admit(fresh_subject(), claim("4" * 32, key))
    assert elsewhere.claim is None


def test_scripts_are_loaded_again_after_a_script_flush(gateway_redis, redis_server) -> None:
    limiter = RedisSlidingWindowLimiter(gateway_redis)
    subject = fresh_subject()
    assert limiter.admit(subject).status.allowed
    plain = redis.Redis.from_url(redis_server.url)
    plain.script_flush()
    plain.close()
    assert limiter.admit(subject).status.window("minute").remaining == 3


def test_an_unreachable_redis_fails_fast_and_pauses() -> None:
    client = connect("redis://127.0.0.1:1/0", timeout_seconds=0.2)
    gateway_redis = GatewayRedis(client, pause_seconds=30)
    limiter = RedisSlidingWindowLimiter(gateway_redis)
    started = time.monotonic()
    with pytest.raises(RedisUnavailableError):
        limiter.admit(fresh_subject())
    with pytest.raises(RedisUnavailableError, match="paused"):
        limiter.admit(fresh_subject())
    assert time.monotonic() - started < 1.0
    client.close()
