"""The web console as a real gunicorn gateway serves it: its page and files, headers and 404s."""

import http.client
import json
import urllib.parse

import httpx
import pytest

from gateway.resources.console import CONSOLE_DIR
from gateway.resources.console import CONTENT_SECURITY_POLICY
from gateway.resources.docs_page import CONTENT_SECURITY_POLICY as DOCS_POLICY
from tests.integration.processes import free_port
from tests.integration.processes import start_gateway

SHIPPED = sorted(
    path.relative_to(CONSOLE_DIR).as_posix() for path in CONSOLE_DIR.rglob("*") if path.is_file()
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A gateway alone: serving the console needs no orchestrator and no credential."""
    gateway = start_gateway(
        tmp_path_factory.mktemp("console"),
        TASKGATE_ORCHESTRATOR_ADDR=f"127.0.0.1:{free_port()}",
        TASKGATE_GATEWAY_WORKERS="1",
    )
    yield gateway
    gateway.stop()


def raw_get(gateway, path: str) -> tuple[int, dict, bytes]:
    """GET a path exactly as written (no client normalises its dots or escapes away)."""
    address = urllib.parse.urlsplit(gateway.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/ui", "/ui/"])
def test_the_page_is_served_without_credentials_under_the_consoles_policy(gateway, path) -> None:
    response = httpx.get(gateway.url + path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.text == (CONSOLE_DIR / "index.html").read_text()
    assert '<script type="module" src="/ui/js/app.js"></script>' in response.text


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ui/console.css", "text/css; charset=utf-8"),
        ("/ui/js/app.js", "text/javascript; charset=utf-8"),
        ("/ui/js/pages/tasks.js", "text/javascript; charset=utf-8"),
    ],
)
def test_a_file_has_its_type_and_is_revalidated_by_its_etag(gateway, path, content_type) -> None:
    response = httpx.get(gateway.url + path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.content == (CONSOLE_DIR / path.removeprefix("/ui/")).read_bytes()
    etag = response.headers["ETag"]
    again = httpx.get(gateway.url + path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    assert httpx.get(gateway.url + path, headers={"If-None-Match": '"stale"'}).status_code == 200
    head = httpx.head(gateway.url + path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"] == content_type and head.headers["ETag"] == etag


def test_every_shipped_file_is_served(gateway) -> None:
    assert "index.html" in SHIPPED
    for name in SHIPPED:
        response = httpx.get(f"{gateway.url}/ui/{name}")
        assert response.status_code == 200, name
        assert response.content == (CONSOLE_DIR / name).read_bytes(), name


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../openapi.json",
        "/ui/%2e%2e/openapi.json",
        "/ui/..%2fopenapi.json",
        "/ui/js/../../openapi.json",
        "/ui/../resources/console.py",
        "/ui/%2e%2e/%2e%2e/pyproject.toml",
        "/ui//etc/passwd",
        "/ui/%2fetc%2fpasswd",
        "/ui/js/app.js%00.html",
        "/ui/./index.html",
        "/ui/missing.js",
        "/ui/js/",
    ],
)
def test_anything_but_a_shipped_file_is_the_contracts_404(gateway, path) -> None:
    status, headers, body = raw_get(gateway, path)
    assert status == 404
    document = json.loads(body)
    assert document["code"] == "not_found"
    assert document["error"] == "File not found"
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_docs_page_keeps_its_own_policy(gateway) -> None:
    response = httpx.get(gateway.url + "/docs")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == DOCS_POLICY
    assert "Content-Security-Policy" not in httpx.get(gateway.url + "/health").headers
