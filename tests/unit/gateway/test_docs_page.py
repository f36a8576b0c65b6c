"""``GET /docs``: a self-contained page of every operation, escaped, allowed by its own CSP."""

import base64
import hashlib
import html
import json
import re

from gateway.resources.docs_page import CONTENT_SECURITY_POLICY
from gateway.resources.docs_page import render_page
from gateway.resources.openapi import OPENAPI_PATH
from tests.unit.gateway.test_openapi import documented_operations


def test_the_page_is_public_html_listing_every_operation(client) -> None:
    response = client.simulate_get("/docs", headers={"X-API-Key": ""})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = html.unescape(response.text)
    for path, method in documented_operations(json.loads(OPENAPI_PATH.read_text())):
        assert f'<span class="method">{method}</span> <code>{path}</code>' in page, (method, path)


def test_the_page_loads_nothing_from_anywhere(client) -> None:
    page = client.simulate_get("/docs").text.lower()
    for marker in ("<script", "<link", "<img", "<iframe", "src=", "@import", "url("):
        assert marker not in page


def test_the_policy_allows_exactly_the_inline_stylesheet(client) -> None:
    page = client.simulate_get("/docs").text
    (stylesheet,) = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(stylesheet.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'none';")
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


def test_text_from_the_document_is_escaped() -> None:
    document = {
        "openapi": "3.1.0",
        "info": {"title": "<script>alert(1)</script>", "version": "1"},
        "paths": {
            "/x/{id}": {
                "get": {
                    "summary": "<img src=x onerror=alert(1)>",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"pattern": "<b>"}}
                    ],
                    "responses": {"200": {"description": "ok & fine"}},
                }
            }
        },
        "components": {"schemas": {"Thing": {"type": "object", "properties": {"a<b": {"type": "string"}}}}},
    }
    page = render_page(document)
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "ok &amp; fine" in page


def test_parameters_responses_and_schemas_are_described() -> None:
    page = html.unescape(render_page(json.loads(OPENAPI_PATH.read_text())))
    assert "integer (≥ 1, ≤ 100, default 20)" in page
    assert '<a href="#schema-SubmitTaskRequest">SubmitTaskRequest</a>' in page
    assert '<h3 id="schema-Error">Error</h3>' in page
    assert "X-API-Key (header) or Authorization: Bearer" in page
