"""The pure parts of limiting direct gRPC callers: the refusal's metadata, the in-process windows."""

import asyncio

from orchestrator.call_limiter import InProcessCallLimiter
from orchestrator.call_limits import refusal_metadata
from taskgate import wire
from taskgate.rate_limit_tiers import parse_tiers
from taskgate.rate_limits.per_user import PerUserWindows
from taskgate.redis_keys import KeyNamer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_refusal_names_the_keys_window_and_carries_the_limit_fields() -> None:
    windows = PerUserWindows(KeyNamer("a-service-token-of-some-length"), parse_tiers("{}"))
    subject = windows.subject("tenant-1", "user-1", "default", "key-1", key_per_minute=2)
    limiter = InProcessCallLimiter(FakeClock())

    async def four_calls():
        return [await limiter.admit(subject) for _ in range(4)]

    statuses = asyncio.run(four_calls())
    assert [status.allowed for status in statuses] == [True, True, False, False]
    metadata = refusal_metadata(statuses[-1])
    assert all(key == key.lower() and isinstance(value, str) for key, value in metadata)
    fields = dict(metadata)
    assert fields[wire.ERROR_CODE] == wire.RATE_LIMITED
    assert fields[wire.RETRY_AFTER] == "60"
    assert (fields[wire.RATE_LIMIT_WINDOW], fields[wire.RATE_LIMIT_COUNTED_PER]) == ("minute", "api_key")
    assert (fields["x-ratelimit-limit-minute"], fields["x-ratelimit-remaining-minute"]) == ("2", "0")
    assert fields["x-ratelimit-remaining-hour"] == "998"
    assert fields["ratelimit-policy"] == '"minute";q=60;w=60, "hour";q=1000;w=3600, "key-minute";q=2;w=60'
