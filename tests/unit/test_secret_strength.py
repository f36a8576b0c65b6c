"""The one strength rule for the secrets a real deployment brings: the service token and the JWT secret."""

import pytest

from gateway.settings import GatewaySettings
from orchestrator.settings import OrchestratorSettings
from taskgate import jwt_secret
from taskgate import secret_strength
from taskgate.environment import SettingsError

STRONG = "5e8a1c3f7b9d2e4a6c8f0b1d3e5a7c9f"
OTHER_STRONG = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b"
WEAK = [
    "your-256-bit-secret",
    "secret",
    "service-token",
    "changeme-changeme-changeme-changeme",
    "development-only-secret-change-in-production",
    "this-is-my-placeholder-jwt-secret-value",
    "a" * 64,
    "abababababababababababababababababab",
    "0123456701234567012345670123456701234567",
    "short-but-random-9f8e7d",
]


@pytest.mark.parametrize("secret", WEAK)
def test_weak_or_well_known_values_are_refused_for_either_secret_without_quoting_them(secret):
    assert secret_strength.weakness(secret) is not None
    for name in ("TASKGATE_SERVICE_TOKEN", "TASKGATE_JWT_SECRET"):
        with pytest.raises(SettingsError) as refused:
            secret_strength.required_strong(name, secret, "production")
        message = str(refused.value)
        assert message.startswith(f"{name} ") and "openssl rand -hex 32" in message
        assert secret not in message and "\n" not in message


def test_a_strong_value_is_kept_and_a_missing_one_is_required_naming_the_environment():
    assert secret_strength.weakness(STRONG) is None
    assert secret_strength.required_strong("TASKGATE_SERVICE_TOKEN", STRONG, "production") == STRONG
    with pytest.raises(SettingsError) as refused:
        secret_strength.required_strong("TASKGATE_SERVICE_TOKEN", None, "production")
    assert str(refused.value).startswith("TASKGATE_SERVICE_TOKEN is required when TASKGATE_ENV=production")
    assert "TASKGATE_ENV=dev" in str(refused.value)


@pytest.mark.parametrize("read", [GatewaySettings.from_env, OrchestratorSettings.from_env])
@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "TASKGATE_SERVICE_TOKEN is required when TASKGATE_ENV=production"),
        (
            {"TASKGATE_SERVICE_TOKEN": "changeme-" + OTHER_STRONG, "TASKGATE_JWT_SECRET": STRONG},
            "TASKGATE_SERVICE_TOKEN is a well-known or placeholder value",
        ),
        (
            {"TASKGATE_SERVICE_TOKEN": "x" * 40, "TASKGATE_JWT_SECRET": STRONG},
            "TASKGATE_SERVICE_TOKEN has too little variety to be random",
        ),
        (
            {"TASKGATE_SERVICE_TOKEN": OTHER_STRONG[:20], "TASKGATE_JWT_SECRET": STRONG},
            "TASKGATE_SERVICE_TOKEN must be at least 32 bytes",
        ),
        (
            {"TASKGATE_SERVICE_TOKEN": OTHER_STRONG},
            "TASKGATE_JWT_SECRET is required when TASKGATE_ENV=production",
        ),
    ],
    ids=["nothing", "placeholder token", "repeated token", "short token", "no jwt secret"],
)
def test_with_no_environment_named_both_services_apply_production_rules(read, variables, message):
    with pytest.raises(SettingsError) as refused:
        read(variables)
    assert str(refused.value).startswith(message)
    assert OTHER_STRONG[:20] not in str(refused.value)


@pytest.mark.parametrize("read", [GatewaySettings.from_env, OrchestratorSettings.from_env])
def test_the_default_environment_is_production(read):
    settings = read({"TASKGATE_SERVICE_TOKEN": OTHER_STRONG, "TASKGATE_JWT_SECRET": STRONG})
    assert (settings.env, settings.service_token, settings.jwt_secret) == ("production", OTHER_STRONG, STRONG)
    # dev and test keep the relaxed rule for a developer's memorable token.
    relaxed = read({"TASKGATE_SERVICE_TOKEN": "memorable-token-1", "TASKGATE_ENV": "dev"})
    assert relaxed.jwt_secret == jwt_secret.derive_from_service_token("memorable-token-1")
