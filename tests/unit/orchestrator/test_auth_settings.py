"""The orchestrator's identity settings: the JWT secret and issuer, and the development bypass."""

import pytest

from orchestrator.settings import OrchestratorSettings
from orchestrator.settings import SettingsError

TOKEN = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b"
STRONG = "5e8a1c3f7b9d2e4a6c8f0b1d3e5a7c9f"


def settings(**variables: str) -> OrchestratorSettings:
    return OrchestratorSettings.from_env({"TASKGATE_SERVICE_TOKEN": TOKEN, **variables})


@pytest.mark.parametrize("secret", [None, "changeme", "short-random-8f7e6d", "ab" * 20, TOKEN])
def test_production_refuses_a_missing_weak_or_reused_secret(secret):
    variables = {"TASKGATE_ENV": "production"} | ({"TASKGATE_JWT_SECRET": secret} if secret else {})
    with pytest.raises(SettingsError, match="TASKGATE_JWT_SECRET"):
        settings(**variables)


def test_a_strong_secret_and_an_issuer_are_read_and_kept_out_of_the_repr():
    value = settings(TASKGATE_ENV="production", TASKGATE_JWT_SECRET=STRONG, TASKGATE_JWT_ISSUER="issuer-1")
    assert (value.jwt_secret, value.jwt_issuer, value.skip_auth) == (STRONG, "issuer-1", False)
    assert STRONG not in repr(value)
    with pytest.raises(SettingsError, match="TASKGATE_JWT_ISSUER"):
        settings(TASKGATE_ENV="test", TASKGATE_JWT_ISSUER="i" * 257)


def test_the_bypass_is_for_dev_and_test_only():
    assert settings(TASKGATE_ENV="test", TASKGATE_SKIP_AUTH="1").skip_auth is True
    with pytest.raises(SettingsError, match="TASKGATE_SKIP_AUTH=1 is allowed only"):
        settings(TASKGATE_ENV="production", TASKGATE_JWT_SECRET=STRONG, TASKGATE_SKIP_AUTH="1")
