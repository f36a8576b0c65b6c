"""Security headers on every response."""

import falcon

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
_HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    """Add the fixed security headers, and HSTS when the request came over TLS."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Set the headers; HSTS only for https, where browsers honour it."""
        resp.set_headers(_HEADERS)
        if req.scheme == "https":
            resp.set_header("Strict-Transport-Security", _HSTS)
