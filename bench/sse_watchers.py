"""A load generator of Server-Sent Events watchers: thousands of streams on one asyncio loop.

``bench.stream_watchers`` runs it in a process of its own (``multiprocessing``), so parsing
thousands of frames a second neither delays nor is delayed by the bench's own work. Each watcher
is an ``asyncio.Protocol`` (no task, no stream reader per connection): it sends one HTTP/1.1
``GET``, reads the head, undoes chunked transfer encoding, splits SSE frames and, for each
``thread.message.delta``, parses the data JSON and takes the latency from the event's
``timestamp`` (written by the orchestrator when it records the event; same host, same clock) to
the moment the bytes were handed to the loop. It also checks that every watcher's ids arrive in
order without gap or duplicate.

The process follows a fixed plan and reports to its parent over a pipe: ``progress`` while it opens
the watchers (at ``connect_rate`` a second) and waits until every one is streaming and has received
a live delta (less than a second old: replay and backlog are behind it), ``window-start``, then
``window-end`` with a summary; it keeps every stream open until the parent sends ``close`` (the
parent reads the servers' counters meanwhile).
"""

import array
import asyncio
import calendar
import collections
import contextlib
import dataclasses
import json
import math
import resource
import time
from multiprocessing.connection import Connection
from typing import Any

DELTA_EVENT = b"thread.message.delta"
DONE_EVENT = b"done"
ERROR_EVENT = b"error"
PROGRESS_SECONDS = 1.0
# A watcher counts as receiving once a delta reaches it less than this long after it was written:
# it has caught up with its replay and any backlog, and is following live events.
CAUGHT_UP_MS = 1000.0
LAG_TICK_SECONDS = 0.01
SLOT_SECONDS = 0.1
CLOSE_TIMEOUT_SECONDS = 120.0
_MAX_HEAD_BYTES = 64 * 1024
_SECONDS_AT: dict[bytes, int] = {}


@dataclasses.dataclass(frozen=True)
class WatcherPlan:
    """What the load generator does: whom to connect to, with which requests, and for how long."""

    host: str
    port: int
    requests: list[bytes]
    # Per watcher: its workflow, and the id it resumes after (its request's Last-Event-ID; 0: none).
    workflows: list[str]
    resume_ids: list[int]
    connect_rate: float
    ready_timeout: float
    warmup_seconds: float
    window_seconds: float


def stream_request(host: str, port: int, target: str, headers: dict[str, str]) -> bytes:
    """Return the bytes of one SSE ``GET`` request."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def epoch_seconds(timestamp: bytes) -> float:
    """Return the Unix time of an RFC 3339 UTC timestamp with milliseconds (``…T03:04:05.678Z``)."""
    prefix = timestamp[:19]
    seconds = _SECONDS_AT.get(prefix)
    if seconds is None:
        seconds = calendar.timegm(time.strptime(prefix.decode("ascii"), "%Y-%m-%dT%H:%M:%S"))
        _SECONDS_AT[prefix] = seconds
    return seconds + int(timestamp[20:23]) / 1000


def percentile(ordered: list[float] | array.array, fraction: float) -> float | None:
    """Return the nearest-rank percentile of sorted values, None when there are none."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Tally:
    """What every watcher of the process has seen; latencies only inside the measuring window."""

    def __init__(self) -> None:
        self.streaming = 0
        self.receiving = 0
        self.failed = 0
        self.refused: collections.Counter[int] = collections.Counter()
        self.ended = 0
        self.lost = 0
        self.gaps = 0
        self.duplicates = 0
        self.error_frames = 0
        self.open_ms: list[float] = []
        self.in_window = False
        self.frames = 0
        self.bytes = 0
        self.latencies_ms = array.array("d")
        self.lag_ms = array.array("d")
        self.window_started = 0.0
        self.per_slot: collections.Counter[int] = collections.Counter()

    def start_window(self) -> None:
        """Start counting deliveries and latencies afresh."""
        self.frames = 0
        self.bytes = 0
        self.latencies_ms = array.array("d")
        self.lag_ms = array.array("d")
        self.per_slot = collections.Counter()
        self.window_started = time.time()
        self.in_window = True

    def summary(self, seconds: float) -> dict[str, Any]:
        """Return the window's figures (and the whole run's ordering and connection counts)."""
        latencies = sorted(self.latencies_ms)
        lags = sorted(self.lag_ms)
        opened = sorted(self.open_ms)
        slots = max(1, int(seconds / SLOT_SECONDS))
        mean_per_slot = len(latencies) / slots
        return {
            "seconds": seconds,
            "deliveries": len(latencies),
            # How bursty deliveries were: the busiest 100 ms against the mean.
            "burst": max(self.per_slot.values(), default=0) / mean_per_slot if mean_per_slot else None,
            "frames": self.frames,
            "bytes": self.bytes,
            "p50_ms": percentile(latencies, 0.50),
            "p95_ms": percentile(latencies, 0.95),
            "p99_ms": percentile(latencies, 0.99),
            "max_ms": latencies[-1] if latencies else None,
            "streaming": self.streaming,
            "receiving": self.receiving,
            "failed": self.failed,
            "refused": dict(self.refused),
            "ended": self.ended,
            "lost": self.lost,
            "gaps": self.gaps,
            "duplicates": self.duplicates,
            "error_frames": self.error_frames,
            "open_p50_ms": percentile(opened, 0.50),
            "open_p99_ms": percentile(opened, 0.99),
            "lag_p99_ms": percentile(lags, 0.99),
            "lag_max_ms": lags[-1] if lags else None,
        }


class Watcher(asyncio.Protocol):
    """One SSE client connection: request, head, chunked body, frames, latency and order checks."""

    def __init__(self, tally: Tally, request: bytes, workflow: str, resume_id: int) -> None:
        self.tally = tally
        self.request = request
        self.workflow = workflow
        self.started = time.perf_counter()
        self.transport: asyncio.Transport | None = None
        self.head: bytearray | None = bytearray()
        self.chunked = False
        self.raw = bytearray()
        self.chunk_left = 0
        self.crlf_left = 0
        self.text = bytearray()
        self.last_id = resume_id
        self.streaming = False
        self.receiving = False
        self.finished = False
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the request."""
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        """Parse what arrived; the receive time of every frame in it is now."""
        now = time.time()
        tally = self.tally
        if tally.in_window:
            tally.bytes += len(data)
        if self.head is not None:
            data = self._read_head(data)
            if not data:
                return
        if self.chunked:
            data = self._dechunk(data)
        text = self.text
        text += data
        start = 0
        while (end := text.find(b"\n\n", start)) >= 0:
            self._frame(text[start:end], now)
            start = end + 2
        if start:
            del text[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        """Count a stream the server ended (after ``done``) or lost (without it)."""
        if self.streaming:
            self.tally.streaming -= 1
        if self.receiving:
            self.tally.receiving -= 1
        if self.closing:
            return
        if self.finished:
            self.tally.ended += 1
        else:
            self.tally.lost += 1

    def close(self) -> None:
        """Close the connection on purpose (not counted as lost)."""
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def _read_head(self, data: bytes) -> bytes:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > _MAX_HEAD_BYTES:
                self._refuse(0)
            return b""
        head, rest = bytes(self.head[:end]), bytes(self.head[end + 4 :])
        self.head = None
        status_line, _, fields = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status != 200:
            self._refuse(status)
            return b""
        self.chunked = b"transfer-encoding: chunked" in fields.lower()
        self.streaming = True
        self.tally.streaming += 1
        self.tally.open_ms.append((time.perf_counter() - self.started) * 1000)
        return rest

    def _refuse(self, status: int) -> None:
        self.tally.refused[status] += 1
        self.close()

    def _dechunk(self, data: bytes) -> bytearray:
        raw = self.raw
        raw += data
        out = bytearray()
        position, size = 0, len(raw)
        while position < size:
            if self.chunk_left:
                take = min(self.chunk_left, size - position)
                out += raw[position : position + take]
                position += take
                self.chunk_left -= take
                if not self.chunk_left:
                    self.crlf_left = 2
            elif self.crlf_left:
                take = min(self.crlf_left, size - position)
                position += take
                self.crlf_left -= take
            else:
                line_end = raw.find(b"\r\n", position)
                if line_end < 0:
                    break
                chunk_size = int(bytes(raw[position:line_end]).split(b";", 1)[0], 16)
                position = line_end + 2
                if chunk_size == 0:
                    position = size
                    break
                self.chunk_left = chunk_size
        del raw[:position]
        return out

    def _frame(self, frame: bytearray, now: float) -> None:
        tally = self.tally
        if frame[:1] == b":":
            return
        ident = event = data = None
        for line in frame.split(b"\n"):
            if line.startswith(b"data: "):
                data = line[6:]
            elif line.startswith(b"id: "):
                ident = int(line[4:])
            elif line.startswith(b"event: "):
                event = bytes(line[7:])
        if ident is not None:
            if ident > self.last_id + 1:
                tally.gaps += 1
            elif ident <= self.last_id:
                tally.duplicates += 1
            self.last_id = max(self.last_id, ident)
        if tally.in_window:
            tally.frames += 1
        if event == DELTA_EVENT:
            latency_ms = (now - epoch_seconds(json.loads(data)["timestamp"].encode("ascii"))) * 1000
            if tally.in_window:
                tally.latencies_ms.append(latency_ms)
                tally.per_slot[int((now - tally.window_started) / SLOT_SECONDS)] += 1
            if not self.receiving and latency_ms < CAUGHT_UP_MS:
                self.receiving = True
                tally.receiving += 1
        elif event == DONE_EVENT:
            self.finished = True
        elif event == ERROR_EVENT:
            tally.error_frames += 1


def run(connection: Connection, plan: WatcherPlan) -> None:
    """Process entry point: follow the plan, reporting over ``connection``."""
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        asyncio.run(_follow(connection, plan))
    connection.close()


def _raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _follow(connection: Connection, plan: WatcherPlan) -> None:
    _raise_open_files_limit(len(plan.requests) + 256)
    loop = asyncio.get_running_loop()
    tally = Tally()
    watchers: list[Watcher] = []
    close_asked = asyncio.Event()

    def on_command() -> None:
        try:
            command = connection.recv()
        except EOFError:
            command = "close"
        if command == "close":
            close_asked.set()

    loop.add_reader(connection.fileno(), on_command)
    lag_ticker = loop.create_task(_measure_lag(tally))
    total = len(plan.requests)
    started = time.monotonic()
    last_report = started
    openings: set[asyncio.Task[None]] = set()
    for index, request in enumerate(plan.requests):
        delay = started + index / plan.connect_rate - time.monotonic()
        if delay > 0.002:
            await asyncio.sleep(delay)
        watcher = Watcher(tally, request, plan.workflows[index], plan.resume_ids[index])
        opening = loop.create_task(_open(loop, plan, watcher, watchers))
        openings.add(opening)
        opening.add_done_callback(openings.discard)
        if time.monotonic() - last_report >= PROGRESS_SECONDS:
            last_report = time.monotonic()
            connection.send(("progress", _progress(tally, index + 1, total)))
    if openings:
        await asyncio.gather(*openings)
    deadline = time.monotonic() + plan.ready_timeout
    while time.monotonic() < deadline and not close_asked.is_set():
        unsettled = total - tally.failed - sum(tally.refused.values()) - tally.ended - tally.lost
        if tally.receiving >= unsettled:
            break
        if time.monotonic() - last_report >= PROGRESS_SECONDS:
            last_report = time.monotonic()
            connection.send(("progress", _progress(tally, total, total)))
        await asyncio.sleep(0.1)
    connection.send(("ready", _progress(tally, total, total)))
    await _sleep_unless(close_asked, plan.warmup_seconds)
    tally.start_window()
    window_started = time.monotonic()
    connection.send(("window-start", None))
    await _sleep_unless(close_asked, plan.window_seconds)
    tally.in_window = False
    summary = tally.summary(time.monotonic() - window_started)
    # Where each workflow's watchers got to (the least of them): the next phase resumes there.
    last_ids: dict[str, int] = {}
    for watcher in watchers:
        if watcher.streaming:
            last_ids[watcher.workflow] = min(last_ids.get(watcher.workflow, watcher.last_id), watcher.last_id)
    connection.send(("window-end", {**summary, "last_ids": last_ids}))
    await _sleep_unless(close_asked, CLOSE_TIMEOUT_SECONDS)
    lag_ticker.cancel()
    loop.remove_reader(connection.fileno())
    for watcher in watchers:
        watcher.close()
    await asyncio.sleep(0.5)


async def _open(
    loop: asyncio.AbstractEventLoop, plan: WatcherPlan, watcher: Watcher, watchers: list[Watcher]
) -> None:
    try:
        await loop.create_connection(lambda: watcher, plan.host, plan.port)
    except OSError:
        watcher.tally.failed += 1
        return
    watchers.append(watcher)


async def _measure_lag(tally: Tally) -> None:
    """Record how late the loop wakes for a 10 ms timer: the load generator's own delay."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(LAG_TICK_SECONDS)
        if tally.in_window:
            tally.lag_ms.append((time.perf_counter() - asked - LAG_TICK_SECONDS) * 1000)


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _progress(tally: Tally, asked: int, total: int) -> dict[str, int]:
    return {
        "asked": asked,
        "total": total,
        "streaming": tally.streaming,
        "receiving": tally.receiving,
        "failed": tally.failed + sum(tally.refused.values()),
        "ended": tally.ended + tally.lost,
    }
