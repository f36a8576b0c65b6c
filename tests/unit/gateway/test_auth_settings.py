"""The gateway's identity settings: the JWT secret and issuer, and the development bypass."""

import pytest

from gateway.settings import GatewaySettings
from gateway.settings import SettingsError
from orchestrator.settings import OrchestratorSettings
from taskgate.jwt_secret import derive_from_service_token

TOKEN = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b"
STRONG = "5e8a1c3f7b9d2e4a6c8f0b1d3e5a7c9f"


def settings(**variables: str) -> GatewaySettings:
    return GatewaySettings.from_env({"TASKGATE_SERVICE_TOKEN": TOKEN, **variables})


@pytest.mark.parametrize("secret", ["your-256-bit-secret", "short-random-8f7e6d", "x" * 40, TOKEN])
def test_production_refuses_a_weak_well_known_or_reused_secret(secret):
    with pytest.raises(SettingsError, match="TASKGATE_JWT_SECRET") as refused:
        settings(TASKGATE_ENV="production", TASKGATE_JWT_SECRET=secret)
    assert secret not in str(refused.value)


def test_production_requires_a_secret_and_keeps_a_strong_one_out_of_the_repr():
    with pytest.raises(SettingsError, match="TASKGATE_JWT_SECRET is required"):
        settings(TASKGATE_ENV="production")
    value = settings(
        TASKGATE_ENV="production", TASKGATE_JWT_SECRET=STRONG, TASKGATE_JWT_ISSUER="https://id.example"
    )
    assert (value.jwt_secret, value.jwt_issuer) == (STRONG, "https://id.example")
    assert STRONG not in repr(value)


def test_dev_derives_the_same_secret_as_the_orchestrator():
    gateway = settings(TASKGATE_ENV="dev")
    orchestrator = OrchestratorSettings.from_env({"TASKGATE_SERVICE_TOKEN": TOKEN, "TASKGATE_ENV": "dev"})
    assert gateway.jwt_secret == orchestrator.jwt_secret == derive_from_service_token(TOKEN)
    assert (gateway.jwt_issuer, gateway.skip_auth) == ("taskgate", False)


@pytest.mark.parametrize("env", ["dev", "test"])
def test_the_bypass_is_allowed_in_dev_and_test(env):
    assert settings(TASKGATE_ENV=env, TASKGATE_SKIP_AUTH="1").skip_auth is True
    assert settings(TASKGATE_ENV=env, TASKGATE_SKIP_AUTH="0").skip_auth is False


def test_the_bypass_is_refused_loudly_elsewhere_and_must_be_a_switch():
    with pytest.raises(
        SettingsError, match="TASKGATE_SKIP_AUTH=1 is allowed only when TASKGATE_ENV is dev or test"
    ):
        settings(TASKGATE_ENV="production", TASKGATE_JWT_SECRET=STRONG, TASKGATE_SKIP_AUTH="true")
    assert (
        settings(TASKGATE_ENV="production", TASKGATE_JWT_SECRET=STRONG, TASKGATE_SKIP_AUTH="0").skip_auth
        is False
    )
    with pytest.raises(SettingsError, match="TASKGATE_SKIP_AUTH must be 1 or 0"):
        settings(TASKGATE_ENV="test", TASKGATE_SKIP_AUTH="maybe")
