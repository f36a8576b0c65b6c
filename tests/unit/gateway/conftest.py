"""Fixtures: the gateway app wired with in-memory fakes instead of the orchestrator."""

import falcon.testing
import pytest

from gateway.app import Dependencies
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.unit.gateway.fakes import API_KEY
from tests.unit.gateway.fakes import SERVICE_TOKEN
from tests.unit.gateway.fakes import FakeAdminStream
from tests.unit.gateway.fakes import FakeOrchestrator


@pytest.fixture
def settings() -> GatewaySettings:
    return GatewaySettings.from_env(
        {"TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN, "TASKGATE_ENV": "test", "TASKGATE_MAX_BODY_BYTES": "4096"}
    )


@pytest.fixture
def orchestrator() -> FakeOrchestrator:
    return FakeOrchestrator()


@pytest.fixture
def admin_stream() -> FakeAdminStream:
    return FakeAdminStream()


@pytest.fixture
def client(settings, orchestrator, admin_stream) -> falcon.testing.TestClient:
    deps = Dependencies.from_settings(settings, orchestrator=orchestrator, admin_stream=admin_stream)
    return falcon.testing.TestClient(create_app(settings, deps), headers={"X-API-Key": API_KEY})
