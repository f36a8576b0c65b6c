"""The rate-limit and idempotency settings: defaults, parsing, and the values refused at start-up."""

import ipaddress
import secrets

import pytest

from gateway.settings import GatewaySettings
from gateway.settings import SettingsError
from taskgate.rate_limit_tiers import TierLimits
from tests.unit.gateway.fakes import SERVICE_TOKEN


def settings(**environ: str) -> GatewaySettings:
    return GatewaySettings.from_env(
        {"TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN, "TASKGATE_ENV": "test", **environ}
    )


def test_the_defaults() -> None:
    value = settings()
    assert value.redis_url is None
    assert value.redis_timeout_seconds == 0.5
    assert dict(value.rate_limit_tiers) == {"default": TierLimits(60, 1000)}
    assert (value.rate_limit_login_per_minute, value.rate_limit_refresh_per_minute) == (30, 60)
    assert (value.rate_limit_fail_closed, value.rate_limit_disabled) == (False, False)
    assert value.trusted_proxies.networks == ()
    assert value.idempotency_ttl_seconds == 86400


def test_every_variable_is_read() -> None:
    value = settings(
        TASKGATE_REDIS_URL="redis://:secret@redis:6379/2",
        TASKGATE_REDIS_TIMEOUT_SECONDS="0.2",
        TASKGATE_RATE_LIMIT_TIERS='{"pro": {"minute": 600, "hour": 20000}}',
        TASKGATE_RATE_LIMIT_LOGIN_PER_MINUTE="10",
        TASKGATE_RATE_LIMIT_REFRESH_PER_MINUTE="20",
        TASKGATE_RATE_LIMIT_FAIL_CLOSED="true",
        TASKGATE_RATE_LIMIT_DISABLED="1",
        TASKGATE_ENV="test",
        TASKGATE_TRUSTED_PROXIES="10.0.0.0/8, 2001:db8::/32",
        TASKGATE_IDEMPOTENCY_TTL_SECONDS="3600",
    )
    assert value.redis_url == "redis://:secret@redis:6379/2"
    assert "secret" not in repr(value)
    assert value.redis_timeout_seconds == 0.2
    assert value.rate_limit_tiers["pro"] == TierLimits(600, 20000)
    assert value.rate_limit_tiers["default"] == TierLimits(60, 1000)
    assert (value.rate_limit_login_per_minute, value.rate_limit_refresh_per_minute) == (10, 20)
    assert (value.rate_limit_fail_closed, value.rate_limit_disabled) == (True, True)
    assert value.trusted_proxies.networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert value.idempotency_ttl_seconds == 3600


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TASKGATE_REDIS_URL", "http://redis:6379"),
        ("TASKGATE_REDIS_TIMEOUT_SECONDS", "0"),
        ("TASKGATE_RATE_LIMIT_TIERS", '{"pro": {"minute": 0, "hour": 1}}'),
        ("TASKGATE_RATE_LIMIT_TIERS", "[1, 2]"),
        ("TASKGATE_RATE_LIMIT_LOGIN_PER_MINUTE", "0"),
        ("TASKGATE_RATE_LIMIT_REFRESH_PER_MINUTE", "lots"),
        ("TASKGATE_RATE_LIMIT_FAIL_CLOSED", "maybe"),
        ("TASKGATE_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
        ("TASKGATE_IDEMPOTENCY_TTL_SECONDS", "0"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name, value) -> None:
    with pytest.raises(SettingsError, match=name):
        settings(**{name: value})


def test_a_redis_password_is_never_echoed_in_an_error() -> None:
    with pytest.raises(SettingsError) as raised:
        settings(TASKGATE_REDIS_URL="http://user:hunter2@redis")
    assert "hunter2" not in str(raised.value)


def test_switching_the_limiter_off_is_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="TASKGATE_RATE_LIMIT_DISABLED"):
        settings(
            TASKGATE_ENV="production",
            TASKGATE_SERVICE_TOKEN=secrets.token_hex(32),
            TASKGATE_JWT_SECRET=secrets.token_hex(32),
            TASKGATE_RATE_LIMIT_DISABLED="1",
        )
