"""A small chat-completions server (the OpenAI streaming protocol) for the runner's tests.

It answers by the last user message: ``flaky…`` a 429 then the answer, ``broken…`` a 503 every
time, ``refuse…`` a 400, ``hang…`` nothing for ``hang_seconds`` (until the server stops), ``slow…``
a slow stream of 30 words 0.3 s apart, anything else a short streamed answer with usage.
"""

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator

DELTAS = ["Hello", " from", " the model."]
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
SLOW_WORDS = 30
SLOW_DELAY_SECONDS = 0.3


class ChatServer(http.server.ThreadingHTTPServer):
    """A chat-completions server whose behaviour each test picks with the user's message."""

    daemon_threads = True

    def __init__(self, hang_seconds: float) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.hang_seconds = hang_seconds
        # Set when the server stops, so that requests still hanging end with it.
        self.released = threading.Event()
        self.requests: list[tuple[dict, dict]] = []
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """The base URL a client of the chat completions API is given."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def record(self, body: dict, headers: dict) -> int:
        """Keep a request and return how many times its query has been asked."""
        query = body["messages"][-1]["content"]
        with self.lock:
            self.requests.append((body, headers))
            self.calls[query] = self.calls.get(query, 0) + 1
            return self.calls[query]

    def bodies_for(self, query: str) -> list[dict]:
        """Return the request bodies whose last user message was ``query``."""
        with self.lock:
            return [body for body, _ in self.requests if body["messages"][-1]["content"] == query]


class ChatHandler(http.server.BaseHTTPRequestHandler):
    """Speak the streamed chat completions protocol (HTTP/1.0: the body ends with the connection)."""

    server: ChatServer

    def log_message(self, format: str, *args) -> None:
        """Keep the test output quiet."""

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        count = self.server.record(body, dict(self.headers))
        query = body["messages"][-1]["content"]
        if self.path != "/v1/chat/completions":
            self._error(404, "no such path")
        elif query.startswith("flaky") and count == 1:
            self._error(429, "slow down", {"Retry-After": "0"})
        elif query.startswith("broken"):
            self._error(503, "overloaded")
        elif query.startswith("refuse"):
            self._error(400, "this model does not take such requests")
        elif query.startswith("hang"):
            self.server.released.wait(self.server.hang_seconds)
        else:
            self._stream(body, slow=query.startswith("slow"))

    def _error(self, status: int, message: str, headers: dict | None = None) -> None:
        payload = json.dumps({"error": {"message": message, "type": "test", "code": None}}).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, body: dict, slow: bool) -> None:
        """Stream the answer's deltas (a slow one: 30 words, 0.3 s apart), then usage when asked."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        deltas = [f" word{index}" for index in range(SLOW_WORDS)] if slow else DELTAS
        try:
            for delta in deltas:
                self._data(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "model": body["model"],
                        "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}],
                    }
                )
                time.sleep(SLOW_DELAY_SECONDS if slow else 0)
            self._data(
                {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
            )
            if body.get("stream_options", {}).get("include_usage"):
                usage = {
                    "prompt_tokens": PROMPT_TOKENS,
                    "completion_tokens": COMPLETION_TOKENS,
                    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                }
                self._data(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "model": body["model"],
                        "choices": [],
                        "usage": usage,
                    }
                )
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            return

    def _data(self, chunk: dict) -> None:
        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.flush()


@contextlib.contextmanager
def serving_chat(hang_seconds: float) -> Iterator[ChatServer]:
    """Serve chat completions on a free port in a background thread until the block ends."""
    server = ChatServer(hang_seconds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
