"""``GET /ui``: the web console, static files shipped in ``gateway/console`` and served as they are.

The files are read once, when the app is built, into a table keyed by their path below the
directory; a request is answered from that table alone, so no part of a URL ever reaches the file
system and nothing outside the directory (``..``, an absolute path, an encoded separator) can be
named. Every answer carries the console's own Content-Security-Policy (see docs/security.md,
"The web console"): scripts, styles and connections from this origin only, nothing inline.
"""

import dataclasses
import hashlib
import pathlib

import falcon

from gateway.errors import ApiError

CONSOLE_DIR = pathlib.Path(__file__).resolve().parent.parent / "console"
INDEX_FILE = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Files carry no version in their names, so a browser revalidates each one (a 304 when unchanged)
# rather than run a page whose modules come from two releases.
CACHE_CONTROL = "no-cache"


@dataclasses.dataclass(frozen=True)
class ConsoleFile:
    """One file of the console: its bytes, Content-Type and entity tag."""

    data: bytes
    content_type: str
    etag: str  # unquoted; Falcon quotes it in the header


def load_console_files(directory: pathlib.Path = CONSOLE_DIR) -> dict[str, ConsoleFile]:
    """Return the directory's servable files (known types only) keyed by their relative POSIX path."""
    files = {}
    for path in sorted(directory.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        data = path.read_bytes()
        etag = hashlib.sha256(data).hexdigest()[:32]
        files[path.relative_to(directory).as_posix()] = ConsoleFile(data, content_type, etag)
    return files


class ConsoleResource:
    """Serve ``/ui`` and ``/ui/`` as the console's index page and ``/ui/<file>`` as that file."""

    public = True
    content_security_policy = CONTENT_SECURITY_POLICY

    def __init__(self, directory: pathlib.Path = CONSOLE_DIR) -> None:
        self._files = load_console_files(directory)

    def on_get(self, req: falcon.Request, resp: falcon.Response, file: str = "") -> None:
        """Return the file, 304 when the client's copy is current, 404 for anything not shipped."""
        console_file = self._files.get(file or INDEX_FILE)
        if console_file is None:
            raise ApiError(404, "File not found", "not_found")
        resp.cache_control = [CACHE_CONTROL]
        resp.etag = console_file.etag
        if any(tag == "*" or tag == console_file.etag for tag in req.if_none_match or ()):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = console_file.content_type
        resp.data = console_file.data

    def on_head(self, req: falcon.Request, resp: falcon.Response, file: str = "") -> None:
        """Answer as ``GET`` would, headers only (the server sends no body for HEAD)."""
        self.on_get(req, resp, file)
