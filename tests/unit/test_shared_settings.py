"""Both services read the shared variables alike, however oddly they are written."""

import pytest

from gateway.settings import GatewaySettings
from orchestrator.settings import OrchestratorSettings
from taskgate.environment import SettingsError
from taskgate.jwt_secret import derive_from_service_token

TOKEN = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b"
STRONG = "5e8a1c3f7b9d2e4a6c8f0b1d3e5a7c9f"
SHARED_FIELDS = (
    "env",
    "service_token",
    "log_level",
    "jwt_secret",
    "jwt_issuer",
    "skip_auth",
    "redis_url",
    "stream_write_timeout_seconds",
)


def both(environ: dict[str, str]) -> tuple[GatewaySettings, OrchestratorSettings]:
    return GatewaySettings.from_env(environ), OrchestratorSettings.from_env(environ)


def shared_values(settings: GatewaySettings | OrchestratorSettings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in SHARED_FIELDS}


def test_an_oddly_written_production_environment_reads_the_same_in_both_services() -> None:
    gateway, orchestrator = both(
        {
            # A token mounted from a file ends with a newline; the other values carry stray spaces.
            "TASKGATE_SERVICE_TOKEN": f"{TOKEN}\n",
            "TASKGATE_ENV": " production ",
            "TASKGATE_JWT_SECRET": f"  {STRONG}  ",
            "TASKGATE_JWT_ISSUER": "\thttps://id.example\r\n",
            "TASKGATE_LOG_LEVEL": " warning\n",
            "TASKGATE_SKIP_AUTH": " 0 ",
            "TASKGATE_REDIS_URL": " redis://cache:6379/0\n",
            "TASKGATE_STREAM_WRITE_TIMEOUT_SECONDS": " 12.5\n",
        }
    )

    assert (
        shared_values(gateway)
        == shared_values(orchestrator)
        == {
            "env": "production",
            "service_token": TOKEN,
            "log_level": "WARNING",
            "jwt_secret": STRONG,
            "jwt_issuer": "https://id.example",
            "skip_auth": False,
            "redis_url": "redis://cache:6379/0",
            "stream_write_timeout_seconds": 12.5,
        }
    )


def test_a_token_with_a_trailing_newline_derives_the_same_jwt_secret_in_both_services() -> None:
    gateway, orchestrator = both({"TASKGATE_SERVICE_TOKEN": f"{TOKEN}\n", "TASKGATE_ENV": " dev\n"})

    assert gateway.service_token == orchestrator.service_token == TOKEN
    assert gateway.jwt_secret == orchestrator.jwt_secret == derive_from_service_token(TOKEN)
    assert (
        both({"TASKGATE_SERVICE_TOKEN": TOKEN, "TASKGATE_ENV": "test"})[1].jwt_secret
        == orchestrator.jwt_secret
    )


def test_the_development_bypass_reads_the_same_in_both_services() -> None:
    gateway, orchestrator = both(
        {"TASKGATE_SERVICE_TOKEN": TOKEN, "TASKGATE_ENV": "test", "TASKGATE_SKIP_AUTH": " on\n"}
    )
    assert gateway.skip_auth is orchestrator.skip_auth is True


def test_blank_values_are_unset_in_both_services() -> None:
    gateway, orchestrator = both(
        {
            "TASKGATE_SERVICE_TOKEN": TOKEN,
            "TASKGATE_ENV": " ",
            "TASKGATE_JWT_SECRET": f"{STRONG}\n",
            "TASKGATE_JWT_ISSUER": "  ",
            "TASKGATE_LOG_LEVEL": "",
            "TASKGATE_REDIS_URL": " \n",
        }
    )
    assert shared_values(gateway) == shared_values(orchestrator)
    # A blank TASKGATE_ENV is the default: production.
    assert (gateway.env, gateway.jwt_issuer, gateway.log_level, gateway.redis_url) == (
        "production",
        "taskgate",
        "INFO",
        None,
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"TASKGATE_SERVICE_TOKEN": " \n", "TASKGATE_ENV": "dev"},
            "TASKGATE_SERVICE_TOKEN is required (at least 16 characters)",
        ),
        (
            {"TASKGATE_SERVICE_TOKEN": " \n"},
            "TASKGATE_SERVICE_TOKEN is required when TASKGATE_ENV=production",
        ),
        # Padding does not make a short token long enough.
        (
            {"TASKGATE_SERVICE_TOKEN": f"  {'s' * 15}\n", "TASKGATE_ENV": "test"},
            "TASKGATE_SERVICE_TOKEN must be at least 16 characters",
        ),
        (
            {
                "TASKGATE_SERVICE_TOKEN": f"{TOKEN[:20]}\n",
                "TASKGATE_ENV": "production",
                "TASKGATE_JWT_SECRET": STRONG,
            },
            "TASKGATE_SERVICE_TOKEN must be at least 32 bytes",
        ),
        (
            {
                "TASKGATE_SERVICE_TOKEN": TOKEN,
                "TASKGATE_ENV": "production",
                "TASKGATE_JWT_SECRET": f" {TOKEN}\n",
            },
            "TASKGATE_JWT_SECRET must differ from TASKGATE_SERVICE_TOKEN",
        ),
        (
            {
                "TASKGATE_SERVICE_TOKEN": TOKEN,
                "TASKGATE_ENV": "production",
                "TASKGATE_JWT_SECRET": STRONG,
                "TASKGATE_SKIP_AUTH": "1",
            },
            "TASKGATE_SKIP_AUTH=1 is allowed only when TASKGATE_ENV is dev or test, not production; unset it",
        ),
        (
            {"TASKGATE_SERVICE_TOKEN": TOKEN, "TASKGATE_ENV": "test", "TASKGATE_SKIP_AUTH": "maybe"},
            "TASKGATE_SKIP_AUTH must be 1 or 0",
        ),
        (
            {"TASKGATE_SERVICE_TOKEN": TOKEN, "TASKGATE_ENV": "test", "TASKGATE_REDIS_URL": "http://cache"},
            "TASKGATE_REDIS_URL must be a URL",
        ),
        (
            {
                "TASKGATE_SERVICE_TOKEN": TOKEN,
                "TASKGATE_ENV": "test",
                "TASKGATE_STREAM_WRITE_TIMEOUT_SECONDS": "0",
            },
            "TASKGATE_STREAM_WRITE_TIMEOUT_SECONDS must be a number at least 0.1 and at most 3600",
        ),
    ],
)
def test_both_services_refuse_a_bad_shared_value_with_the_same_line(
    variables: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as from_gateway:
        GatewaySettings.from_env(variables)
    with pytest.raises(SettingsError) as from_orchestrator:
        OrchestratorSettings.from_env(variables)
    assert str(from_gateway.value) == str(from_orchestrator.value)
    assert str(from_gateway.value).startswith(message)
    assert "\n" not in str(from_gateway.value)
    assert TOKEN not in str(from_gateway.value)
