"""Settings of the gateway's edge: CORS origins, security header switches, the metrics token."""

import pytest

from gateway.settings import SECURITY_HEADERS
from gateway.settings import GatewaySettings
from gateway.settings import SettingsError

TOKEN = "t" * 32


def settings(**variables: str) -> GatewaySettings:
    return GatewaySettings.from_env({"TASKGATE_SERVICE_TOKEN": TOKEN, "TASKGATE_ENV": "test", **variables})


def test_defaults_no_origin_every_header_no_metrics_token() -> None:
    value = settings()
    assert value.cors_origins == ()
    assert value.security_headers == frozenset(SECURITY_HEADERS)
    assert value.metrics_token is None


def test_origins_are_a_lower_case_comma_list_without_duplicates() -> None:
    value = settings(
        TASKGATE_CORS_ORIGINS=" https://App.example.com/ ,http://localhost:3000,https://app.example.com"
    )
    assert value.cors_origins == ("https://app.example.com", "http://localhost:3000")


def test_dev_adds_the_gateway_s_own_origins() -> None:
    value = settings(TASKGATE_ENV="dev", TASKGATE_CORS_ORIGINS="https://app.example.com")
    assert value.cors_origins == ("http://localhost:8080", "http://127.0.0.1:8080", "https://app.example.com")


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "null",
        "app.example.com",
        "ftp://app.example.com",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "https://app.example.com:0",
    ],
)
def test_anything_but_an_origin_is_refused(origin) -> None:
    with pytest.raises(SettingsError, match="TASKGATE_CORS_ORIGINS"):
        settings(TASKGATE_CORS_ORIGINS=origin)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("all", set(SECURITY_HEADERS)),
        ("ALL", set(SECURITY_HEADERS)),
        ("none", set()),
        ("hsts, csp", {"hsts", "csp"}),
        ("frame-options", {"frame-options"}),
    ],
)
def test_security_header_switches(value, expected) -> None:
    assert settings(TASKGATE_SECURITY_HEADERS=value).security_headers == expected


def test_an_unknown_security_header_switch_is_refused() -> None:
    with pytest.raises(SettingsError, match="TASKGATE_SECURITY_HEADERS.*'x-xss-protection'"):
        settings(TASKGATE_SECURITY_HEADERS="hsts,x-xss-protection")


def test_the_metrics_token_is_read_kept_out_of_repr_and_must_be_long_enough() -> None:
    value = settings(TASKGATE_METRICS_TOKEN="m" * 16)
    assert value.metrics_token == "m" * 16
    assert "m" * 16 not in repr(value)
    with pytest.raises(SettingsError, match="TASKGATE_METRICS_TOKEN must be at least 16 characters"):
        settings(TASKGATE_METRICS_TOKEN="short")
