"""OrchestratorSettings.from_env: defaults, validation, and errors that name the variable."""

import os

import pytest

from orchestrator.settings import OrchestratorSettings
from orchestrator.settings import SettingsError

TOKEN = "dev-token-0123456789"
STRONG_TOKEN = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b"
STRONG_SECRET = "3f9c1e7a5b2d4c6e8f0a1b3c5d7e9f1a"


def settings(**environ: str) -> OrchestratorSettings:
    return OrchestratorSettings.from_env({"TASKGATE_SERVICE_TOKEN": TOKEN, "TASKGATE_ENV": "test", **environ})


def test_defaults_follow_the_internals_document():
    result = OrchestratorSettings.from_env(
        {"TASKGATE_SERVICE_TOKEN": STRONG_TOKEN, "TASKGATE_JWT_SECRET": STRONG_SECRET}
    )
    assert result.env == "production"
    assert result.grpc_addr == "127.0.0.1:50052"
    assert result.admin_addr == "127.0.0.1:8081"
    assert result.database_url == "sqlite:///.taskgate/taskgate.db"
    assert result.worker_concurrency == 100
    assert result.worker_poll_seconds == 0.5
    assert result.sim_step_seconds == 0.2
    assert result.sse_ping_seconds == 10
    assert result.stream_buffer == 1000
    assert result.log_level == "INFO"


def test_values_are_read_and_converted():
    result = settings(
        TASKGATE_ENV="TEST",
        TASKGATE_GRPC_ADDR="0.0.0.0:0",
        TASKGATE_ADMIN_ADDR="[::1]:9000",
        TASKGATE_DATABASE_URL="sqlite:////var/lib/taskgate/db.sqlite",
        TASKGATE_WORKER_CONCURRENCY="8",
        TASKGATE_WORKER_POLL_SECONDS="600",
        TASKGATE_SIM_STEP_SECONDS="0",
        TASKGATE_SSE_PING_SECONDS="2.5",
        TASKGATE_STREAM_BUFFER="50",
        TASKGATE_LOG_LEVEL="debug",
    )
    assert result.env == "test"
    assert result.grpc_addr == "0.0.0.0:0"
    assert (result.admin_host, result.admin_port) == ("::1", 9000)
    assert result.database_url == "sqlite:////var/lib/taskgate/db.sqlite"
    assert result.worker_concurrency == 8
    assert result.worker_poll_seconds == 600
    assert result.sim_step_seconds == 0
    assert result.sse_ping_seconds == 2.5
    assert result.stream_buffer == 50
    assert result.log_level == "DEBUG"


def test_replicas_share_postgresql_and_redis():
    result = settings(
        TASKGATE_DATABASE_URL="postgresql://taskgate:secret@db:5432/taskgate",
        TASKGATE_REDIS_URL="redis://cache:6379/0",
        TASKGATE_REPLICA_ID="orchestrator-0",
        TASKGATE_LEASE_SECONDS="2",
        TASKGATE_WORKER_CONCURRENCY="0",
    )
    assert result.database_url == "postgresql://taskgate:secret@db:5432/taskgate"
    assert result.redis_url == "redis://cache:6379/0"
    assert result.replica_id == "orchestrator-0"
    assert result.lease_seconds == 2
    assert result.worker_concurrency == 0
    assert "secret" not in repr(result)


def test_replica_id_defaults_to_host_and_process():
    result = settings()
    assert result.replica_id.endswith(f"-{os.getpid()}")
    assert result.redis_url is None
    assert result.lease_seconds == 30


def test_missing_service_token_names_the_variable():
    with pytest.raises(SettingsError, match="TASKGATE_SERVICE_TOKEN"):
        OrchestratorSettings.from_env({})


def test_short_service_token_is_refused():
    with pytest.raises(SettingsError, match="TASKGATE_SERVICE_TOKEN must be at least 16"):
        settings(TASKGATE_SERVICE_TOKEN="short")


def test_production_needs_a_longer_service_token():
    with pytest.raises(SettingsError, match="at least 32"):
        settings(TASKGATE_ENV="production")
    strong = {"TASKGATE_SERVICE_TOKEN": STRONG_TOKEN, "TASKGATE_JWT_SECRET": STRONG_SECRET}
    assert settings(TASKGATE_ENV="production", **strong).env == "production"


def test_the_service_token_never_appears_in_the_repr():
    assert TOKEN not in repr(settings())


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TASKGATE_ENV", "staging"),
        ("TASKGATE_GRPC_ADDR", "localhost"),
        ("TASKGATE_ADMIN_ADDR", "127.0.0.1:99999"),
        ("TASKGATE_DATABASE_URL", "mysql://db/taskgate"),
        ("TASKGATE_REDIS_URL", "localhost:6379"),
        ("TASKGATE_REPLICA_ID", "has space"),
        ("TASKGATE_LEASE_SECONDS", "0.5"),
        ("TASKGATE_DATABASE_URL", "sqlite:///"),
        ("TASKGATE_WORKER_CONCURRENCY", "-1"),
        ("TASKGATE_WORKER_CONCURRENCY", "many"),
        ("TASKGATE_WORKER_POLL_SECONDS", "0"),
        ("TASKGATE_WORKER_POLL_SECONDS", "3601"),
        ("TASKGATE_SIM_STEP_SECONDS", "-1"),
        ("TASKGATE_SSE_PING_SECONDS", "nan"),
        ("TASKGATE_STREAM_BUFFER", "0"),
        ("TASKGATE_LOG_LEVEL", "LOUD"),
        ("TASKGATE_TASK_TIMEOUT_SECONDS", "0"),
        ("TASKGATE_TASK_TIMEOUT_SECONDS", "86401"),
        ("TASKGATE_TASK_TIMEOUT_SECONDS", "1.5"),
    ],
)
def test_malformed_values_are_refused_naming_the_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        settings(**{variable: value})


def test_the_task_timeout_defaults_to_ten_minutes_and_can_be_set():
    assert settings().task_timeout_seconds == 600
    assert settings(TASKGATE_TASK_TIMEOUT_SECONDS="30").task_timeout_seconds == 30


def test_the_per_user_cap_of_running_tasks_is_off_by_default_and_can_be_set():
    assert settings().max_running_per_user == 0
    assert settings(TASKGATE_MAX_RUNNING_PER_USER="5").max_running_per_user == 5
    for malformed in ("-1", "two", "1.5"):
        with pytest.raises(SettingsError, match="TASKGATE_MAX_RUNNING_PER_USER"):
            settings(TASKGATE_MAX_RUNNING_PER_USER=malformed)
