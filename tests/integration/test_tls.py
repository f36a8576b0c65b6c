"""TLS between the gateway and the orchestrator, with certificates made for the test.

One stack requires client certificates (mutual TLS): a task runs and streams through the gateway
over it, and every connection without the CA's client certificate is refused, on gRPC and on the
admin server. One orchestrator serves TLS without requiring client certificates: a service
calls it directly with TLS and an API key. Misconfigured TLS stops either service at start-up.
"""

import datetime
import json
import socket
import ssl
import subprocess
import urllib.parse

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from websockets.sync.client import connect

from taskgate.access_tokens import AccessClaims
from taskgate.access_tokens import issue_access_token
from taskgate.jwt_secret import derive_from_service_token
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from taskgate.orchestrator.v1.common_pb2 import TASK_STATUS_COMPLETED
from tests.integration.processes import REPO
from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import Stack
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import free_port
from tests.integration.processes import taskgate_command
from tests.integration.processes import wait_until
from tests.integration.sse import read_stream
from tests.tls_certificates import Certificates
from tests.tls_certificates import KeyPair
from tests.tls_certificates import issue_certificates

# Generous bounds for a loaded machine; every wait ends as soon as its condition holds.
SETTLE_SECONDS = 60.0


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    return issue_certificates(tmp_path_factory.mktemp("certificates"))


def _server_env(certificates: Certificates) -> dict[str, str]:
    return {
        "TASKGATE_TLS_CERT_FILE": str(certificates.server.cert),
        "TASKGATE_TLS_KEY_FILE": str(certificates.server.key),
    }


def _channel_credentials(certificates: Certificates, client: KeyPair | None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=certificates.ca.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )


def _ssl_context(certificates: Certificates, client: KeyPair | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificates.ca))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


def _orchestrator(env: dict, tmp_path, certificates: Certificates, client: KeyPair | None) -> Orchestrator:
    return Orchestrator(
        env=env,
        grpc_addr=env["TASKGATE_GRPC_ADDR"],
        admin_url=env["TASKGATE_ADMIN_URL"],
        log_path=tmp_path / "orchestrator.log",
        grpc_credentials=_channel_credentials(certificates, client),
    )


@pytest.fixture(scope="module")
def mutual_tls_stack(tmp_path_factory, certificates):
    """An orchestrator requiring client certificates, and a gateway holding one."""
    tmp_path = tmp_path_factory.mktemp("mutual-tls")
    env = base_env(
        tmp_path,
        TASKGATE_ENV="test",
        **_server_env(certificates),
        TASKGATE_TLS_CA_FILE=str(certificates.ca),
        TASKGATE_TLS_REQUIRE_CLIENT_CERT="1",
        TASKGATE_TLS_CLIENT_CERT_FILE=str(certificates.client.cert),
        TASKGATE_TLS_CLIENT_KEY_FILE=str(certificates.client.key),
    )
    env["TASKGATE_ADMIN_URL"] = env["TASKGATE_ADMIN_URL"].replace("http://", "https://")
    orchestrator = _orchestrator(env, tmp_path, certificates, certificates.client).start()
    gateway = Gateway(
        env=env, url="http://" + env["TASKGATE_GATEWAY_BIND"], log_path=tmp_path / "gateway.log"
    )
    stack = Stack(env=env, orchestrator=orchestrator, gateway=gateway)
    try:
        gateway.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def tls_orchestrator(tmp_path_factory, certificates):
    """An orchestrator serving TLS that accepts clients without a certificate."""
    tmp_path = tmp_path_factory.mktemp("server-tls")
    env = base_env(tmp_path, TASKGATE_ENV="test", **_server_env(certificates))
    env["TASKGATE_ADMIN_URL"] = env["TASKGATE_ADMIN_URL"].replace("http://", "https://")
    orchestrator = _orchestrator(env, tmp_path, certificates, None).start()
    yield orchestrator
    orchestrator.stop()


def _health_status(address: str, credentials: grpc.ChannelCredentials | None, **options) -> grpc.StatusCode:
    """Call gRPC health over a new channel (TLS with credentials); return the call's status code."""
    if credentials is None:
        channel = grpc.insecure_channel(address)
    else:
        channel = grpc.secure_channel(address, credentials, options=tuple(options.items()))
    with channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=SETTLE_SECONDS)
        except grpc.RpcError as ex:
            return ex.code()
    return grpc.StatusCode.OK


def test_a_task_runs_and_streams_through_the_gateway_over_mutual_tls(mutual_tls_stack):
    key = create_api_key(mutual_tls_stack.env, "tls@example.com")
    headers = {"X-API-Key": key}
    with httpx.Client(base_url=mutual_tls_stack.url, headers=headers, timeout=SETTLE_SECONDS) as client:
        # Readiness asks the orchestrator's gRPC health over the gateway's TLS channel.
        assert client.get("/readyz").status_code == 200
        submitted = client.post("/api/v1/tasks", json={"query": "What is 2+2?"})
        assert submitted.status_code == 200, submitted.text
        task_id = submitted.json()["task_id"]

        # The SSE proxy's upstream is the admin server over https with the gateway's certificate.
        frames = read_stream(
            mutual_tls_stack.url + "/api/v1/stream/sse",
            headers,
            params={"workflow_id": task_id},
            timeout=SETTLE_SECONDS,
        )
        assert frames[-1].event == "done"
        assert client.get(f"/api/v1/tasks/{task_id}").json()["status"] == "COMPLETED"

        # So is the WebSocket relay's.
        query = urllib.parse.urlencode({"workflow_id": task_id})
        url = mutual_tls_stack.url.replace("http://", "ws://", 1) + "/api/v1/stream/ws?" + query
        with connect(url, additional_headers=headers, open_timeout=SETTLE_SECONDS) as ws:
            messages = []
            while not messages or messages[-1]["type"] != "STREAM_END":
                messages.append(json.loads(ws.recv(timeout=SETTLE_SECONDS)))
        assert [message["type"] for message in messages] == [
            event["type"]
            for event in client.get(f"/api/v1/tasks/{task_id}/events", params={"limit": 200}).json()["events"]
        ]


def test_a_gateway_whose_certificate_the_orchestrator_refuses_answers_503(
    mutual_tls_stack, certificates, tmp_path
):
    env = dict(
        mutual_tls_stack.env,
        TASKGATE_GATEWAY_BIND=f"127.0.0.1:{free_port()}",
        TASKGATE_TLS_CLIENT_CERT_FILE=str(certificates.other_client.cert),
        TASKGATE_TLS_CLIENT_KEY_FILE=str(certificates.other_client.key),
    )
    gateway = Gateway(
        env=env, url="http://" + env["TASKGATE_GATEWAY_BIND"], log_path=tmp_path / "gateway.log"
    )
    gateway.start()
    try:
        # An access token is checked in the gateway, so the stream request reaches the admin client.
        claims = AccessClaims(user_id="usr_tls", tenant_id="ten_tls", role="user", tier="default")
        secret = derive_from_service_token(mutual_tls_stack.service_token)
        token, _ = issue_access_token(claims, secret, "taskgate", datetime.datetime.now(datetime.UTC))
        with httpx.Client(base_url=gateway.url, timeout=SETTLE_SECONDS) as client:
            assert client.get("/readyz").status_code == 503
            api_call = client.get("/api/v1/tasks", headers={"X-API-Key": "sk_" + "1" * 64})
            stream = client.get(
                "/api/v1/stream/sse",
                params={"workflow_id": "wf_0123456789abcdef"},
                headers={"Authorization": f"Bearer {token}"},
            )
        for response in (api_call, stream):
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "unavailable"
        assert "admin stream server connection failed before its answer" in gateway.log_path.read_text()
    finally:
        gateway.stop()


def test_grpc_refuses_every_client_without_the_cas_certificate(mutual_tls_stack, certificates):
    assert "tls=mutual" in mutual_tls_stack.orchestrator.log_path.read_text()
    address = mutual_tls_stack.orchestrator.grpc_addr
    refused = grpc.StatusCode.UNAVAILABLE
    assert _health_status(address, None) == refused
    assert _health_status(address, _channel_credentials(certificates, None)) == refused
    assert _health_status(address, _channel_credentials(certificates, certificates.other_client)) == refused
    assert (
        _health_status(address, _channel_credentials(certificates, certificates.client)) == grpc.StatusCode.OK
    )


def test_the_admin_server_refuses_every_client_without_the_cas_certificate(mutual_tls_stack, certificates):
    admin_url = mutual_tls_stack.orchestrator.admin_url
    with pytest.raises(httpx.HTTPError):
        httpx.get(admin_url.replace("https://", "http://") + "/health", timeout=SETTLE_SECONDS)
    for client in (None, certificates.other_client):
        with pytest.raises(httpx.HTTPError):
            httpx.get(
                admin_url + "/health", verify=_ssl_context(certificates, client), timeout=SETTLE_SECONDS
            )
    allowed = httpx.get(
        admin_url + "/health", verify=_ssl_context(certificates, certificates.client), timeout=SETTLE_SECONDS
    )
    assert allowed.status_code == 200
    # A stream needs the service token on top of the certificate.
    refused = httpx.get(
        admin_url + "/stream/sse",
        params={"workflow_id": "wf_unknown"},
        verify=_ssl_context(certificates, certificates.client),
        timeout=SETTLE_SECONDS,
    )
    assert refused.status_code == 401


def test_a_service_calls_grpc_directly_with_tls_and_its_api_key(tls_orchestrator, certificates):
    assert "tls=on" in tls_orchestrator.log_path.read_text()
    key = create_api_key(tls_orchestrator.env, "service@example.com")
    metadata = (("x-api-key", key),)
    with grpc.secure_channel(tls_orchestrator.grpc_addr, _channel_credentials(certificates, None)) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        submitted = tasks.SubmitTask(
            tasks_pb2.SubmitTaskRequest(query="What is 6*7?"), metadata=metadata, timeout=SETTLE_SECONDS
        ).task

        def finished():
            request = tasks_pb2.GetTaskRequest(task_id=submitted.task_id)
            task = tasks.GetTask(request, metadata=metadata, timeout=SETTLE_SECONDS).task
            return task if task.status == TASK_STATUS_COMPLETED else None

        assert wait_until(finished, timeout=SETTLE_SECONDS, what="the task to complete").result
    # Without TLS, or expecting another name than the certificate's, the connection is refused.
    assert _health_status(tls_orchestrator.grpc_addr, None) == grpc.StatusCode.UNAVAILABLE
    other_name = {"grpc.ssl_target_name_override": "orchestrator.example"}
    credentials = _channel_credentials(certificates, None)
    assert (
        _health_status(tls_orchestrator.grpc_addr, credentials, **other_name) == grpc.StatusCode.UNAVAILABLE
    )


def test_the_admin_server_verifies_as_the_certificate_names_it(tls_orchestrator, certificates):
    admin_url = tls_orchestrator.admin_url
    response = httpx.get(
        admin_url + "/health", verify=_ssl_context(certificates, None), timeout=SETTLE_SECONDS
    )
    assert response.status_code == 200
    parts = urllib.parse.urlsplit(admin_url)
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=SETTLE_SECONDS) as sock,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        _ssl_context(certificates, None).wrap_socket(sock, server_hostname="orchestrator.example")


@pytest.mark.parametrize(
    ("service", "variables", "named"),
    [
        ("orchestrator", {"TASKGATE_TLS_KEY_FILE": "server.key"}, "TASKGATE_TLS_KEY_FILE is set without"),
        (
            "orchestrator",
            {"TASKGATE_TLS_CERT_FILE": "absent.crt", "TASKGATE_TLS_KEY_FILE": "server.key"},
            "cannot read",
        ),
        ("gateway", {"TASKGATE_TLS_CA_FILE": "ca.crt"}, "TASKGATE_ADMIN_URL is http"),
        (
            "gateway",
            {"TASKGATE_TLS_CLIENT_CERT_FILE": "gateway.crt"},
            "TASKGATE_TLS_CLIENT_CERT_FILE is set without",
        ),
    ],
    ids=["key without certificate", "missing file", "CA with http", "certificate without key"],
)
def test_misconfigured_tls_stops_the_service_at_start_up(tmp_path, certificates, service, variables, named):
    directory = certificates.ca.parent
    env = base_env(
        tmp_path, TASKGATE_ENV="test", **{name: str(directory / file) for name, file in variables.items()}
    )
    if service == "gateway" and "TASKGATE_TLS_CA_FILE" not in variables:
        env["TASKGATE_ADMIN_URL"] = env["TASKGATE_ADMIN_URL"].replace("http://", "https://")

    result = subprocess.run(
        taskgate_command(service), env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    output = (result.stdout + result.stderr).strip()
    assert len(output.splitlines()) == 1, output
    assert named in output and "Traceback" not in output
