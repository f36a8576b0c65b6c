"""``GET /openapi.json``: the OpenAPI 3.1 description of the routes this gateway serves."""

import pathlib

import falcon

OPENAPI_PATH = pathlib.Path(__file__).resolve().parent.parent / "openapi.json"


class OpenApiResource:
    """Serve the packaged ``gateway/openapi.json`` document, read once."""

    public = True

    def __init__(self, document_path: pathlib.Path = OPENAPI_PATH) -> None:
        self._document = document_path.read_bytes()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Return the document."""
        resp.data = self._document
        resp.content_type = falcon.MEDIA_JSON
