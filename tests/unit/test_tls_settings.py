"""Reading the TASKGATE_TLS_* settings: what turns TLS on, and every misconfiguration refused at start-up."""

import pytest

from gateway.settings import GatewaySettings
from orchestrator.settings import OrchestratorSettings
from taskgate.environment import SettingsError
from taskgate.tls import ClientTls
from taskgate.tls import ServerTls
from tests.tls_certificates import issue_certificates

TOKEN = "service-token-0123456789abcdef"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return issue_certificates(tmp_path_factory.mktemp("tls"))


def _orchestrator(**variables: str) -> OrchestratorSettings:
    return OrchestratorSettings.from_env(
        {"TASKGATE_ENV": "test", "TASKGATE_SERVICE_TOKEN": TOKEN, **variables}
    )


def _gateway(**variables: str) -> GatewaySettings:
    return GatewaySettings.from_env({"TASKGATE_ENV": "test", "TASKGATE_SERVICE_TOKEN": TOKEN, **variables})


def test_plaintext_unless_configured() -> None:
    assert _orchestrator().tls is None
    assert _gateway().tls is None


def test_the_orchestrator_serves_tls_with_a_pair_and_requires_client_certificates_on_demand(
    certificates,
) -> None:
    pair = {
        "TASKGATE_TLS_CERT_FILE": str(certificates.server.cert),
        "TASKGATE_TLS_KEY_FILE": str(certificates.server.key),
    }
    # A CA file alone (shared with the gateway, say) does not turn mutual TLS on.
    served = _orchestrator(**pair, TASKGATE_TLS_CA_FILE=str(certificates.ca)).tls
    assert served == ServerTls(str(certificates.server.cert), str(certificates.server.key))
    assert not served.requires_client_cert

    mutual = _orchestrator(
        **pair, TASKGATE_TLS_CA_FILE=str(certificates.ca), TASKGATE_TLS_REQUIRE_CLIENT_CERT="1"
    ).tls
    assert mutual.requires_client_cert
    assert mutual.client_ca_file == str(certificates.ca)
    # Both forms load: the admin server's context and the gRPC credentials.
    mutual.ssl_context()
    mutual.grpc_credentials()


def test_the_gateway_speaks_tls_with_an_https_admin_url(certificates) -> None:
    https = {"TASKGATE_ADMIN_URL": "https://127.0.0.1:8081"}
    assert _gateway(**https).tls == ClientTls()
    mutual = _gateway(
        **https,
        TASKGATE_TLS_CA_FILE=str(certificates.ca),
        TASKGATE_TLS_CLIENT_CERT_FILE=str(certificates.client.cert),
        TASKGATE_TLS_CLIENT_KEY_FILE=str(certificates.client.key),
    ).tls
    assert mutual == ClientTls(
        str(certificates.ca), str(certificates.client.cert), str(certificates.client.key)
    )
    assert mutual.ssl_context().check_hostname
    mutual.grpc_credentials()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"TASKGATE_TLS_KEY_FILE": "server.key"},
            "TASKGATE_TLS_KEY_FILE is set without TASKGATE_TLS_CERT_FILE",
        ),
        (
            {"TASKGATE_TLS_CERT_FILE": "server.crt"},
            "TASKGATE_TLS_CERT_FILE is set without TASKGATE_TLS_KEY_FILE",
        ),
        ({"TASKGATE_TLS_REQUIRE_CLIENT_CERT": "1"}, "needs TLS: set TASKGATE_TLS_CERT_FILE"),
        (
            {
                "TASKGATE_TLS_CERT_FILE": "server.crt",
                "TASKGATE_TLS_KEY_FILE": "server.key",
                "TASKGATE_TLS_REQUIRE_CLIENT_CERT": "1",
            },
            "TASKGATE_TLS_REQUIRE_CLIENT_CERT=1 needs TASKGATE_TLS_CA_FILE",
        ),
        (
            {"TASKGATE_TLS_CERT_FILE": "missing.crt", "TASKGATE_TLS_KEY_FILE": "server.key"},
            "TASKGATE_TLS_CERT_FILE: cannot read",
        ),
        (
            {"TASKGATE_TLS_CERT_FILE": "server.crt", "TASKGATE_TLS_KEY_FILE": "gateway.key"},
            "must be a PEM certificate and the PEM private key that belongs to it",
        ),
        ({"TASKGATE_TLS_CA_FILE": "server.key"}, "TASKGATE_TLS_CA_FILE must hold PEM CA certificates"),
        ({"TASKGATE_TLS_REQUIRE_CLIENT_CERT": "maybe"}, "TASKGATE_TLS_REQUIRE_CLIENT_CERT must be 1 or 0"),
    ],
)
def test_orchestrator_misconfigurations_are_refused(certificates, variables, message) -> None:
    with pytest.raises(SettingsError, match=message):
        _orchestrator(**_in_directory(certificates.ca.parent, variables))


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"TASKGATE_TLS_CA_FILE": "ca.crt"}, "TASKGATE_TLS_CA_FILE is set but TASKGATE_ADMIN_URL is http"),
        (
            {
                "TASKGATE_ADMIN_URL": "https://orchestrator:8081",
                "TASKGATE_TLS_CLIENT_KEY_FILE": "gateway.key",
            },
            "TASKGATE_TLS_CLIENT_KEY_FILE is set without TASKGATE_TLS_CLIENT_CERT_FILE",
        ),
        (
            {
                "TASKGATE_ADMIN_URL": "https://orchestrator:8081",
                "TASKGATE_TLS_CLIENT_CERT_FILE": "gateway.crt",
                "TASKGATE_TLS_CLIENT_KEY_FILE": "intruder.key",
            },
            "must be a PEM certificate and the PEM private key that belongs to it",
        ),
        (
            {"TASKGATE_ADMIN_URL": "https://orchestrator:8081", "TASKGATE_TLS_CA_FILE": "nowhere/ca.crt"},
            "TASKGATE_TLS_CA_FILE: cannot read",
        ),
    ],
)
def test_gateway_misconfigurations_are_refused(certificates, variables, message) -> None:
    with pytest.raises(SettingsError, match=message):
        _gateway(**_in_directory(certificates.ca.parent, variables))


def _in_directory(directory, variables: dict[str, str]) -> dict[str, str]:
    """Make the file variables' values paths under the certificates' directory."""
    return {
        name: str(directory / value) if name.endswith("_FILE") else value for name, value in variables.items()
    }
