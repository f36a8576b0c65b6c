"""``GET /docs``: the API as one self-contained HTML page, rendered on the server from openapi.json.

The page loads nothing (no script, no font, no CDN): one inline stylesheet, allowed by its hash in
the page's Content-Security-Policy, and plain HTML in which every text from the document is escaped.
"""

import base64
import hashlib
import html
import json
import pathlib
import string
from typing import Any

import falcon

from gateway.resources.openapi import OPENAPI_PATH

TEMPLATE_PATH = pathlib.Path(__file__).resolve().with_name("docs_page.html")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_REFERENCE_DEPTH = 8
_STYLESHEET = (
    "body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:64rem;padding:1rem 2rem;color:#1d1d1f}"
    "code{font:13px ui-monospace,monospace}h1 small{color:#666;font-size:.6em}"
    "nav ul{columns:2;padding-left:1.2rem}"
    "section.operation{border-top:1px solid #ddd;padding:.5rem 0}"
    "table{border-collapse:collapse;margin:.3rem 0 .8rem}"
    "th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}"
    ".method{display:inline-block;min-width:4.5rem;font-weight:600;text-transform:uppercase}"
    ".auth{color:#555}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLESHEET.encode()).digest()).decode()
# The policy of every HTML response (gateway.middleware.security_headers): this page's stylesheet,
# nothing else, and no framing.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


class DocsPageResource:
    """Serve the page rendered once from the packaged ``gateway/openapi.json``."""

    public = True

    def __init__(self, document_path: pathlib.Path = OPENAPI_PATH) -> None:
        self._page = render_page(json.loads(document_path.read_text())).encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Return the page."""
        resp.data = self._page
        resp.content_type = falcon.MEDIA_HTML


def render_page(document: dict[str, Any]) -> str:
    """Return the HTML page of an OpenAPI document: its operations by tag, then its schemas."""
    operations = list(_operations(document))
    info = document.get("info", {})
    return string.Template(TEMPLATE_PATH.read_text()).substitute(
        title=_text(info.get("title", "API")),
        version=_text(info.get("version", "")),
        description=_text(info.get("description", "")),
        openapi_version=_text(document.get("openapi", "")),
        stylesheet=_STYLESHEET,
        contents=_contents(operations),
        operations="\n".join(_operation(document, *operation) for operation in operations),
        schemas="\n".join(
            _schema_section(name, schema)
            for name, schema in document.get("components", {}).get("schemas", {}).items()
        ),
    )


def _operations(document: dict[str, Any]):
    """Yield (path, method, operation) in the document's order."""
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def _anchor(path: str, method: str) -> str:
    return "op-" + method + "-" + "".join(c if c.isalnum() else "-" for c in path).strip("-")


def _contents(operations) -> str:
    items = "".join(
        f'<li><a href="#{_anchor(path, method)}"><span class="method">{method}</span>'
        f"<code>{_text(path)}</code></a></li>"
        for path, method, _ in operations
    )
    return f"<ul>{items}</ul>"


def _operation(document: dict[str, Any], path: str, method: str, operation: dict[str, Any]) -> str:
    parts = [
        f'<section class="operation" id="{_anchor(path, method)}">',
        f'<h3><span class="method">{method}</span> <code>{_text(path)}</code></h3>',
        f"<p>{_text(operation.get('summary', ''))}</p>",
    ]
    if operation.get("description"):
        parts.append(f"<p>{_text(operation['description'])}</p>")
    parts.append(f'<p class="auth">Authentication: {_text(_security(document, operation))}</p>')
    parameters = [_resolve(document, parameter) for parameter in operation.get("parameters", [])]
    if parameters:
        rows = [
            [
                f"<code>{_text(parameter.get('name', ''))}</code>",
                _text(parameter.get("in", "")),
                "yes" if parameter.get("required") else "no",
                _schema_text(parameter.get("schema", {})),
                _text(parameter.get("description", "")),
            ]
            for parameter in parameters
        ]
        parts.append("<h4>Parameters</h4>" + _table(("name", "in", "required", "type", "description"), rows))
    body = _resolve(document, operation.get("requestBody", {}))
    if body.get("content"):
        required = "required" if body.get("required") else "optional"
        parts.append(f"<h4>Request body ({required})</h4>{_content(body['content'])}")
    responses = {
        status: _resolve(document, answer) for status, answer in operation.get("responses", {}).items()
    }
    rows = [
        [_text(status), _text(answer.get("description", "")), _content(answer.get("content", {}))]
        for status, answer in responses.items()
    ]
    parts.append("<h4>Responses</h4>" + _table(("status", "meaning", "body"), rows))
    parts.append("</section>")
    return "\n".join(parts)


def _table(headings: tuple[str, ...], rows: list[list[str]]) -> str:
    """Return an HTML table of cells that are already HTML."""
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _security(document: dict[str, Any], operation: dict[str, Any]) -> str:
    requirements = operation.get("security", document.get("security", []))
    if not requirements:
        return "none"
    schemes = document.get("components", {}).get("securitySchemes", {})
    names = []
    for requirement in requirements:
        for name in requirement:
            scheme = schemes.get(name, {})
            if scheme.get("type") == "apiKey":
                names.append(f"{scheme.get('name')} ({scheme.get('in')})")
            elif scheme.get("type") == "http":
                names.append(f"Authorization: {str(scheme.get('scheme', '')).capitalize()}")
            else:
                names.append(name)
    return " or ".join(names)


def _content(content: dict[str, Any]) -> str:
    return "<br>".join(
        f"<code>{_text(media_type)}</code>: {_schema_text(entry.get('schema', {}))}"
        for media_type, entry in content.items()
    )


def _schema_section(name: str, schema: dict[str, Any]) -> str:
    parts = [f'<h3 id="schema-{_text(name)}">{_text(name)}</h3>']
    if schema.get("description"):
        parts.append(f"<p>{_text(schema['description'])}</p>")
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        rows = [
            [
                f"<code>{_text(field)}</code>",
                "yes" if field in required else "no",
                _schema_text(value),
                _text(value.get("description", "")),
            ]
            for field, value in properties.items()
        ]
        parts.append(_table(("field", "required", "type", "description"), rows))
    else:
        parts.append(f"<p>{_schema_text(schema)}</p>")
    return "\n".join(parts)


def _schema_text(schema: dict[str, Any]) -> str:
    """Describe a schema in one line of HTML: its type (a link for a named schema) and limits."""
    reference = schema.get("$ref")
    if isinstance(reference, str):
        name = reference.rsplit("/", 1)[-1]
        return f'<a href="#schema-{_text(name)}">{_text(name)}</a>'
    for combinator in ("oneOf", "anyOf", "allOf"):
        if combinator in schema:
            return " | ".join(_schema_text(option) for option in schema[combinator])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " | ".join(kind)
    if kind == "array" or "items" in schema:
        text = f"{_text(kind)} of {_schema_text(schema.get('items', {}))}"
    else:
        text = _text(kind)
    limits = [
        f"{label} {_text(json.dumps(schema[key]))}"
        for key, label in (
            ("enum", "one of"),
            ("const", "always"),
            ("minimum", "≥"),
            ("maximum", "≤"),
            ("minLength", "length ≥"),
            ("maxLength", "length ≤"),
            ("pattern", "matching"),
            ("default", "default"),
        )
        if key in schema
    ]
    return text + (f" ({', '.join(limits)})" if limits else "")


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) to what it names, a few levels at most."""
    for _ in range(_MAX_REFERENCE_DEPTH):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            break
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target
    return node if isinstance(node, dict) else {}


def _text(value: object) -> str:
    return html.escape(str(value))
