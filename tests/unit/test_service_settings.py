"""The fields both services' settings carry are declared once, with the defaults the environment gives."""

import dataclasses

from orchestrator.settings import OrchestratorSettings
from taskgate.environment import Environment
from taskgate.service_settings import ServiceSettings
from taskgate.shared_settings import SharedSettings

TOKEN = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b"
JWT_SECRET = "5e8a1c3f7b9d2e4a6c8f0b1d3e5a7c9f"


def names(cls: type) -> list[str]:
    return [field.name for field in dataclasses.fields(cls)]


def test_the_declared_fields_are_the_ones_read_from_the_environment() -> None:
    assert sorted(names(ServiceSettings)) == sorted(names(SharedSettings))
    assert names(OrchestratorSettings)[: len(names(ServiceSettings))] == names(ServiceSettings)


def test_the_declared_defaults_are_what_an_unset_environment_reads() -> None:
    shared = SharedSettings.from_env(
        Environment({"TASKGATE_SERVICE_TOKEN": TOKEN, "TASKGATE_JWT_SECRET": JWT_SECRET})
    )
    declared = ServiceSettings(service_token=TOKEN)
    # The JWT secret is required in production (the default environment), not defaulted.
    for name in ("env", "log_level", "jwt_issuer", "skip_auth", "redis_url", "stream_write_timeout_seconds"):
        assert getattr(declared, name) == getattr(shared, name), name


def test_the_orchestrator_takes_every_shared_value() -> None:
    environ = {
        "TASKGATE_SERVICE_TOKEN": TOKEN,
        "TASKGATE_ENV": "test",
        "TASKGATE_LOG_LEVEL": "debug",
        "TASKGATE_JWT_ISSUER": "x",
    }
    shared = SharedSettings.from_env(Environment(environ))
    settings = OrchestratorSettings.from_env(environ)
    assert {name: getattr(settings, name) for name in names(SharedSettings)} == dataclasses.asdict(shared)
