"""Security headers on every response, each switched on or off by ``TASKGATE_SECURITY_HEADERS``."""

from collections.abc import Collection

import falcon

from gateway.rate_limit.client_address import TrustedProxies

_FIXED_HEADERS = {
    "content-type-options": ("X-Content-Type-Options", "nosniff"),
    "frame-options": ("X-Frame-Options", "DENY"),
    "referrer-policy": ("Referrer-Policy", "strict-origin-when-cross-origin"),
}
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    """Add the enabled headers: the fixed ones always, a CSP to pages, HSTS over TLS.

    ``enabled`` holds switch names (``gateway.settings.SECURITY_HEADERS``); ``html_policy`` is the
    Content-Security-Policy of the HTML the gateway serves. A resource with a policy of its own (a
    ``content_security_policy`` attribute: the console's) gets that one on every response instead.
    A request came over TLS when the server itself took it over TLS, or when a trusted proxy
    (``TASKGATE_TRUSTED_PROXIES``) says so with ``X-Forwarded-Proto: https``; anyone else's
    X-Forwarded-Proto is ignored.
    """

    def __init__(self, enabled: Collection[str], html_policy: str, trusted_proxies: TrustedProxies) -> None:
        self._headers = {name: value for switch, (name, value) in _FIXED_HEADERS.items() if switch in enabled}
        self._html_policy = html_policy
        self._csp = "csp" in enabled
        self._hsts = "hsts" in enabled
        self._trusted_proxies = trusted_proxies

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Set the headers; HSTS only over TLS, where browsers honour it."""
        resp.set_headers(self._headers)
        if self._csp:
            policy = getattr(resource, "content_security_policy", None)
            if policy is None and _is_html(resp.content_type):
                policy = self._html_policy
            if policy is not None:
                resp.set_header("Content-Security-Policy", policy)
        if self._hsts and self._over_tls(req):
            resp.set_header("Strict-Transport-Security", HSTS)

    def _over_tls(self, req: falcon.Request) -> bool:
        if req.scheme == "https":
            return True
        forwarded = req.get_header("X-Forwarded-Proto")
        if forwarded is None or not self._trusted_proxies.trusts(req.env.get("REMOTE_ADDR") or ""):
            return False
        # Each proxy appends its own; the last entry is the trusted peer's.
        return forwarded.rsplit(",", 1)[-1].strip().lower() == "https"


def _is_html(content_type: str | None) -> bool:
    """Return whether a Content-Type is HTML."""
    return (content_type or "").split(";", 1)[0].strip().lower() == "text/html"
