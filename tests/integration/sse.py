"""A small Server-Sent Events reader for tests: frames exactly as they arrive on the wire."""

import dataclasses
import json
import threading

import httpx


@dataclasses.dataclass
class Frame:
    """One SSE frame (or comment) as received."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: str | None = None
    comment: str | None = None

    def json(self) -> dict:
        """Return the frame's data parsed as JSON."""
        return json.loads(self.data)


def parse_frames(lines):
    """Yield a Frame per blank-line-terminated block of SSE lines."""
    frame = Frame()
    seen = False
    for line in lines:
        if line == "":
            if seen:
                yield frame
            frame, seen = Frame(), False
            continue
        seen = True
        if line.startswith(":"):
            frame.comment = line[1:].strip()
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            frame.data = value if frame.data is None else frame.data + "\n" + value
        elif field in ("id", "event", "retry"):
            setattr(frame, field, value)
    if seen:
        yield frame


def read_stream(
    url: str, headers: dict, params: dict | None = None, stop_after: int | None = None, timeout: float = 60.0
) -> list[Frame]:
    """Read event frames from url until the server closes it or stop_after event frames arrived.

    ``timeout`` bounds each step (connecting, each read), not the whole stream; a stream that idles
    gets a ping every ten seconds (the orchestrator's default), so only a stuck server reaches it.
    """
    frames = []
    with httpx.stream("GET", url, headers=headers, params=params, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for frame in parse_frames(response.iter_lines()):
            if frame.event is None:
                continue
            frames.append(frame)
            if stop_after is not None and len(frames) >= stop_after:
                break
    return frames


class StreamFollower(threading.Thread):
    """Reads one stream in the background, keeping its event frames as they arrive.

    ``first_frame`` is set when the first event frame has arrived (or the stream has ended), so a
    test knows the stream is open; ``ended`` when the server closed it or the read failed
    (``error`` says how). ``timeout`` bounds each step, as in ``read_stream``.
    """

    def __init__(self, url: str, headers: dict, params: dict | None = None, timeout: float = 60.0) -> None:
        super().__init__(daemon=True, name=f"stream {params}")
        self.url, self.headers, self.params, self.timeout = url, headers, params, timeout
        self.frames: list[Frame] = []
        self.first_frame = threading.Event()
        self.ended = threading.Event()
        self.error: str | None = None

    @property
    def done(self) -> bool:
        """Whether the stream's last frame so far is the workflow's end, ``done``."""
        return bool(self.frames) and self.frames[-1].event == "done"

    def run(self) -> None:
        """Read event frames until the server closes the stream or a read fails."""
        try:
            with httpx.stream(
                "GET", self.url, headers=self.headers, params=self.params, timeout=self.timeout
            ) as response:
                if response.status_code != 200:
                    self.error = f"HTTP {response.status_code}"
                    return
                for frame in parse_frames(response.iter_lines()):
                    if frame.event is not None:
                        self.frames.append(frame)
                        self.first_frame.set()
        except httpx.HTTPError as ex:
            self.error = f"{type(ex).__name__}: {ex}"
        finally:
            self.first_frame.set()
            self.ended.set()
