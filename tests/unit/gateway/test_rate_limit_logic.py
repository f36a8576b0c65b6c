"""Rate limiting's pure parts: tiers, statuses, headers, client addresses, the in-process limiter."""

import threading

import falcon.testing
import pytest

from gateway.rate_limit.client_address import TrustedProxies
from gateway.rate_limit.client_address import client_address
from gateway.rate_limit.memory import InMemorySlidingWindowLimiter
from taskgate.rate_limit_tiers import BUILT_IN_TIERS
from taskgate.rate_limit_tiers import TierLimits
from taskgate.rate_limit_tiers import limits_for
from taskgate.rate_limit_tiers import parse_tiers
from taskgate.rate_limits.headers import rate_limit_headers
from taskgate.rate_limits.per_user import PerUserWindows
from taskgate.rate_limits.windows import RateLimitStatus
from taskgate.rate_limits.windows import RateLimitSubject
from taskgate.rate_limits.windows import WindowRule
from taskgate.rate_limits.windows import WindowStatus
from taskgate.rate_limits.windows import build_status
from taskgate.redis_keys import KeyNamer

MINUTE_AND_HOUR = (WindowRule("minute", 3), WindowRule("hour", 5))


def test_the_default_tier_is_60_a_minute_and_1000_an_hour() -> None:
    assert BUILT_IN_TIERS["default"] == TierLimits(per_minute=60, per_hour=1000)
    assert limits_for(BUILT_IN_TIERS, "free", 0, 0) == TierLimits(60, 1000)


def test_tiers_are_laid_over_the_default_and_key_overrides_win() -> None:
    tiers = parse_tiers('{"pro": {"minute": 600, "hour": 20000}, "default": {"minute": 10, "hour": 100}}')
    assert limits_for(tiers, "pro", 0, 0) == TierLimits(600, 20000)
    assert limits_for(tiers, "unknown", 0, 0) == TierLimits(10, 100)
    assert limits_for(tiers, "pro", 5, 0) == TierLimits(5, 20000)
    assert limits_for(tiers, "pro", 0, 7) == TierLimits(600, 7)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "nope",
        '{"pro": {"minute": 0, "hour": 5}}',
        '{"pro": {"minute": 5}}',
        '{"pro": {"minute": true, "hour": 5}}',
        '{" ": {"minute": 1, "hour": 1}}',
    ],
)
def test_malformed_tier_tables_are_refused(text) -> None:
    with pytest.raises(ValueError):
        parse_tiers(text)


def test_a_refusal_names_the_window_that_frees_a_slot_last() -> None:
    status = build_status(MINUTE_AND_HOUR, 1000.0, [3, 5], [1030.0, 2500.0], allowed=False)
    assert (status.allowed, status.limited_by, status.retry_after_seconds) == (False, "hour", 1500)
    assert [window.remaining for window in status.windows] == [0, 0]
    minute_only = build_status(MINUTE_AND_HOUR, 1000.0, [3, 2], [1000.2, 2500.0], allowed=False)
    assert (minute_only.limited_by, minute_only.retry_after_seconds) == ("minute", 1)


def test_the_headers_describe_every_window() -> None:
    status = RateLimitStatus(
        allowed=True,
        windows=(WindowStatus("minute", 60, 59, 1060.2), WindowStatus("hour", 1000, 990, 3000.0)),
        checked_at=1000.5,
    )
    assert rate_limit_headers(status) == {
        "X-RateLimit-Limit-Minute": "60",
        "X-RateLimit-Remaining-Minute": "59",
        "X-RateLimit-Limit-Hour": "1000",
        "X-RateLimit-Remaining-Hour": "990",
        "X-RateLimit-Reset": "1061",
        "RateLimit-Policy": '"minute";q=60;w=60, "hour";q=1000;w=3600',
        "RateLimit": '"minute";r=59;t=60, "hour";r=990;t=2000',
    }


def test_a_minute_only_subject_has_no_hour_headers() -> None:
    status = RateLimitStatus(
        allowed=True, windows=(WindowStatus("minute", 30, 29, 1060.0),), checked_at=1000.0
    )
    headers = rate_limit_headers(status)
    assert "X-RateLimit-Limit-Hour" not in headers
    assert headers["RateLimit-Policy"] == '"minute";q=30;w=60'


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def subject(counter: str = "c") -> RateLimitSubject:
    return RateLimitSubject(partition="u:p", counter=counter, rules=MINUTE_AND_HOUR)


def test_the_in_process_limiter_slides_and_refusals_cost_nothing() -> None:
    clock = FakeClock()
    limiter = InMemorySlidingWindowLimiter(clock)
    admitted = []
    for _ in range(5):
        admitted.append(limiter.admit(subject()).status.allowed)
        clock.now += 1
    assert admitted == [True, True, True, False, False]
    refused = limiter.admit(subject()).status
    assert (refused.limited_by, refused.retry_after_seconds) == ("minute", 55)
    clock.now = 1_000_000.0 + 60.0
    status = limiter.admit(subject()).status
    assert status.allowed
    assert [window.remaining for window in status.windows] == [0, 1]
    assert status.window("minute").reset_at == 1_000_000.0 + 61.0
    clock.now += 2
    limiter.admit(subject())
    hour = limiter.admit(subject()).status
    assert (hour.allowed, hour.limited_by) == (False, "hour")
    assert hour.retry_after_seconds == 3600 - 62
    assert limiter.admit(subject("other")).status.allowed


def test_the_in_process_limiter_is_exact_under_threads() -> None:
    limiter = InMemorySlidingWindowLimiter()
    rules = (WindowRule("minute", 25), WindowRule("hour", 1000))
    results = []
    barrier = threading.Barrier(40)

    def hit():
        barrier.wait()
        results.append(limiter.admit(RateLimitSubject("u:p", "c", rules)).status.allowed)

    threads = [threading.Thread(target=hit) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 25


def request(remote_addr: str, forwarded: str | None = None) -> falcon.Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    environ = falcon.testing.create_environ("/api/v1/auth/login", method="POST", headers=headers)
    environ["REMOTE_ADDR"] = remote_addr
    return falcon.Request(environ)


def test_forwarded_addresses_are_ignored_from_an_untrusted_peer() -> None:
    trusted = TrustedProxies.parse("10.0.0.0/8")
    assert client_address(request("203.0.113.9", "198.51.100.1"), trusted) == "203.0.113.9"
    assert client_address(request("10.1.2.3", "198.51.100.1"), TrustedProxies()) == "10.1.2.3"


def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() -> None:
    trusted = TrustedProxies.parse("10.0.0.0/8, 192.168.1.1")
    assert client_address(request("10.0.0.5", "198.51.100.7"), trusted) == "198.51.100.7"
    # The client prepended a forged hop; the proxies appended the real one after it.
    assert (
        client_address(request("10.0.0.5", "1.2.3.4, 198.51.100.7, 192.168.1.1"), trusted) == "198.51.100.7"
    )
    assert client_address(request("10.0.0.5", "10.9.9.9, 10.0.0.6"), trusted) == "10.9.9.9"
    assert client_address(request("10.0.0.5", "[2001:db8::1]:443"), trusted) == "2001:db8::1"
    assert client_address(request("10.0.0.5", "198.51.100.7:5123"), trusted) == "198.51.100.7"
    assert client_address(request("10.0.0.5", "unknown"), trusted) == "10.0.0.5"
    assert client_address(request("10.0.0.5"), trusted) == "10.0.0.5"


def test_a_unix_socket_peer_is_trusted_only_when_listed() -> None:
    assert client_address(request("", "198.51.100.7"), TrustedProxies.parse("unix")) == "198.51.100.7"
    assert client_address(request("", "198.51.100.7"), TrustedProxies.parse("10.0.0.0/8")) == ""


def test_a_malformed_proxy_list_is_refused() -> None:
    with pytest.raises(ValueError):
        TrustedProxies.parse("10.0.0.0/8, not-a-network")


def test_key_names_hide_identifiers_and_group_a_caller_in_one_slot() -> None:
    namer = KeyNamer("a-service-token-of-some-length")
    partition = namer.user_partition("tenant-1", "user-1")
    key = KeyNamer.key(partition, "rl", namer.digest("api-key", "key-1"), "minute")
    assert "user-1" not in key and "key-1" not in key
    assert key.startswith("tg:{u:") and key.count("{") == 1
    assert namer.digest("ab", "c") != namer.digest("a", "bc")
    assert KeyNamer("another-service-token-here").user_partition("tenant-1", "user-1") != partition


def per_user() -> PerUserWindows:
    tiers = parse_tiers('{"pro": {"minute": 10, "hour": 100}}')
    return PerUserWindows(KeyNamer("a-service-token-of-some-length"), tiers)


def test_every_credential_of_a_user_counts_in_the_users_windows() -> None:
    windows = per_user()
    by_token = windows.subject("tenant-1", "user-1", "pro")
    by_key = windows.subject("tenant-1", "user-1", "pro", "key-1")
    by_other_key = windows.subject("tenant-1", "user-1", "pro", "key-2")
    assert by_token == by_key == by_other_key
    assert [(rule.name, rule.limit, rule.counted_per) for rule in by_key.rules] == [
        ("minute", 10, "user"),
        ("hour", 100, "user"),
    ]
    assert by_key.key(by_key.rules[0]) != by_key.key(by_key.rules[1])
    other_user = windows.subject("tenant-1", "user-2", "pro", "key-1")
    assert other_user.partition != by_key.partition
    assert windows.subject("tenant-1", "user-1", "unknown").rules[0].limit == 60


def test_a_keys_own_lower_limit_is_a_window_of_its_own_inside_the_users() -> None:
    windows = per_user()
    subject = windows.subject("tenant-1", "user-1", "pro", "key-1", key_per_minute=3, key_per_hour=500)
    assert [(rule.name, rule.limit, rule.counted_per) for rule in subject.rules] == [
        ("minute", 10, "user"),
        ("hour", 100, "user"),
        ("minute", 3, "api_key"),
    ]
    user_minute, key_minute = subject.key(subject.rules[0]), subject.key(subject.rules[2])
    assert user_minute != key_minute
    assert key_minute.startswith(f"tg:{{{subject.partition}}}:rl:")
    other_key = windows.subject("tenant-1", "user-1", "pro", "key-2", key_per_minute=3)
    assert other_key.key(other_key.rules[2]) != key_minute


def test_a_sub_limit_refusal_counts_in_no_window_and_names_the_key() -> None:
    clock = FakeClock()
    limiter = InMemorySlidingWindowLimiter(clock)
    windows = per_user()
    limited_key = windows.subject("tenant-1", "user-1", "pro", "key-1", key_per_minute=2)
    free_key = windows.subject("tenant-1", "user-1", "pro", "key-2")
    assert [limiter.admit(limited_key).status.allowed for _ in range(3)] == [True, True, False]
    refused = limiter.admit(limited_key).status
    assert (refused.limited_by, refused.limited_per) == ("minute", "api_key")
    assert refused.window("minute").remaining == 0
    assert [window.policy for window in refused.windows] == ["minute", "hour", "key-minute"]
    # The user's minute holds the two admitted requests only: eight left for the other key.
    assert [limiter.admit(free_key).status.allowed for _ in range(9)] == [True] * 8 + [False]
    user_refusal = limiter.admit(limited_key).status
    assert user_refusal.limited_per == "user"
    headers = rate_limit_headers(user_refusal)
    assert headers["X-RateLimit-Limit-Minute"] == "10"
    assert headers["RateLimit-Policy"] == '"minute";q=10;w=60, "hour";q=100;w=3600, "key-minute";q=2;w=60'


def test_the_headers_show_the_window_with_less_left() -> None:
    status = RateLimitStatus(
        allowed=True,
        windows=(
            WindowStatus("minute", 60, 50, 1060.0, "user"),
            WindowStatus("hour", 1000, 990, 3000.0, "user"),
            WindowStatus("minute", 5, 1, 1030.0, "api_key"),
        ),
        checked_at=1000.0,
    )
    headers = rate_limit_headers(status)
    assert (headers["X-RateLimit-Limit-Minute"], headers["X-RateLimit-Remaining-Minute"]) == ("5", "1")
    assert headers["X-RateLimit-Reset"] == "1030"
    assert headers["X-RateLimit-Remaining-Hour"] == "990"
    assert headers["RateLimit"] == '"minute";r=50;t=60, "hour";r=990;t=2000, "key-minute";r=1;t=30'
