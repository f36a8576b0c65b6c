"""GatewaySettings: defaults, parsing and the errors that name the bad variable."""

import pytest

from gateway.settings import GatewaySettings
from gateway.settings import SettingsError

TOKEN = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b"
STRONG_SECRET = "3f9c1e7a5b2d4c6e8f0a1b3c5d7e9f1a"


def settings(**variables: str) -> GatewaySettings:
    return GatewaySettings.from_env({"TASKGATE_SERVICE_TOKEN": TOKEN, "TASKGATE_ENV": "test", **variables})


def test_defaults_match_the_documented_ones() -> None:
    value = GatewaySettings.from_env({"TASKGATE_SERVICE_TOKEN": TOKEN, "TASKGATE_JWT_SECRET": STRONG_SECRET})
    assert value.env == "production"
    assert value.bind == "127.0.0.1:8080"
    assert value.workers == 1
    assert value.worker_class == "gevent"
    assert value.orchestrator_addr == "127.0.0.1:50052"
    assert value.admin_url == "http://127.0.0.1:8081"
    assert value.api_key_cache_seconds == 5
    assert value.upstream_timeout_seconds == 10
    assert value.max_body_bytes == 1048576
    assert value.log_level == "INFO"


def test_every_variable_is_read() -> None:
    value = settings(
        TASKGATE_ENV="production",
        TASKGATE_JWT_SECRET=STRONG_SECRET,
        TASKGATE_REDIS_URL="redis://cache:6379/0",
        TASKGATE_GATEWAY_BIND="0.0.0.0:9000",
        TASKGATE_GATEWAY_WORKERS="4",
        TASKGATE_GATEWAY_WORKER_CLASS="gthread",
        TASKGATE_GATEWAY_THREADS="8",
        TASKGATE_ORCHESTRATOR_ADDR="orchestrator:50052",
        TASKGATE_ADMIN_URL="https://orchestrator:8081/",
        TASKGATE_API_KEY_CACHE_SECONDS="0",
        TASKGATE_UPSTREAM_TIMEOUT_SECONDS="2.5",
        TASKGATE_MAX_BODY_BYTES="2048",
        TASKGATE_LOG_LEVEL="debug",
    )
    assert (value.env, value.bind, value.workers, value.worker_class, value.threads) == (
        "production",
        "0.0.0.0:9000",
        4,
        "gthread",
        8,
    )
    assert value.orchestrator_addr == "orchestrator:50052"
    assert value.admin_url == "https://orchestrator:8081"
    assert (value.api_key_cache_seconds, value.upstream_timeout_seconds, value.max_body_bytes) == (
        0,
        2.5,
        2048,
    )
    assert value.log_level == "DEBUG"


def test_unix_socket_bind_is_accepted() -> None:
    assert settings(TASKGATE_GATEWAY_BIND="unix:/run/gateway.sock").bind == "unix:/run/gateway.sock"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TASKGATE_ENV", "staging"),
        ("TASKGATE_GATEWAY_BIND", "localhost"),
        ("TASKGATE_GATEWAY_BIND", "unix:"),
        ("TASKGATE_GATEWAY_WORKERS", "0"),
        ("TASKGATE_GATEWAY_WORKERS", "two"),
        ("TASKGATE_GATEWAY_WORKER_CLASS", "sync"),
        ("TASKGATE_GATEWAY_THREADS", "-1"),
        ("TASKGATE_ORCHESTRATOR_ADDR", "orchestrator:port"),
        ("TASKGATE_ORCHESTRATOR_ADDR", "orchestrator:70000"),
        ("TASKGATE_ADMIN_URL", "ftp://orchestrator:8081"),
        ("TASKGATE_ADMIN_URL", "http://orchestrator:x"),
        ("TASKGATE_API_KEY_CACHE_SECONDS", "-1"),
        ("TASKGATE_API_KEY_CACHE_SECONDS", "nan"),
        ("TASKGATE_UPSTREAM_TIMEOUT_SECONDS", "0"),
        ("TASKGATE_UPSTREAM_TIMEOUT_SECONDS", "soon"),
        ("TASKGATE_MAX_BODY_BYTES", "0"),
        ("TASKGATE_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        settings(**{name: value})


def test_the_service_token_is_required() -> None:
    with pytest.raises(SettingsError, match="TASKGATE_SERVICE_TOKEN is required"):
        GatewaySettings.from_env({})


def test_the_service_token_must_be_longer_outside_dev_and_test() -> None:
    sixteen = "s" * 16
    assert GatewaySettings.from_env({"TASKGATE_SERVICE_TOKEN": sixteen, "TASKGATE_ENV": "test"}).env == "test"
    with pytest.raises(SettingsError, match="at least 32") as raised:
        GatewaySettings.from_env({"TASKGATE_SERVICE_TOKEN": sixteen, "TASKGATE_ENV": "production"})
    assert sixteen not in str(raised.value)
    with pytest.raises(SettingsError, match="at least 16"):
        settings(TASKGATE_SERVICE_TOKEN="short")


def test_the_service_token_is_not_in_the_repr() -> None:
    assert TOKEN not in repr(settings())


def test_without_redis_the_gateway_runs_one_worker_and_refuses_more() -> None:
    assert settings().workers == 1
    assert settings(TASKGATE_GATEWAY_WORKERS="1", TASKGATE_GATEWAY_WORKER_CLASS="gthread").workers == 1
    with pytest.raises(SettingsError) as refused:
        settings(TASKGATE_GATEWAY_WORKERS="2")
    message = str(refused.value)
    assert message.startswith("TASKGATE_GATEWAY_WORKERS=2 needs TASKGATE_REDIS_URL")
    assert "unset TASKGATE_GATEWAY_WORKERS" in message and "\n" not in message
    # Switching the limiter off leaves the idempotency records in the worker: still one.
    with pytest.raises(SettingsError, match="needs TASKGATE_REDIS_URL"):
        settings(TASKGATE_GATEWAY_WORKERS="3", TASKGATE_RATE_LIMIT_DISABLED="1")


def test_with_redis_the_gateway_runs_two_workers_unless_told_otherwise() -> None:
    redis = {"TASKGATE_REDIS_URL": "redis://cache:6379/0"}
    assert settings(**redis).workers == 2
    assert settings(**redis, TASKGATE_GATEWAY_WORKERS="1").workers == 1
    assert settings(**redis, TASKGATE_GATEWAY_WORKERS="8").workers == 8
