"""``GET /metrics``: the gateway's Prometheus metrics, summed over every worker process."""

import hmac

import falcon

from gateway import metrics
from gateway.errors import ApiError


class MetricsResource:
    """Serve the Prometheus text exposition; with a token configured, only to ``Bearer <token>``.

    The route skips API-key authentication (a scraper holds no API key): without a token the
    metrics are public, which suits a gateway whose /metrics port is reachable only by the scraper.
    """

    public = True

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Return the metrics, or 401 when the configured token is not presented."""
        if self._token is not None and not self._token_presented(req):
            raise ApiError(401, "Metrics token required", "unauthorized")
        resp.data = metrics.exposition()
        resp.content_type = metrics.EXPOSITION_CONTENT_TYPE

    def _token_presented(self, req: falcon.Request) -> bool:
        scheme, _, credential = (req.get_header("Authorization") or "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), self._token)
