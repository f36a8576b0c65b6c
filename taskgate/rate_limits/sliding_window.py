"""Counting sliding windows exactly, written once for both services: in Redis and in process.

**In Redis.** Each window of a subject is a sorted set of the requests it admitted, scored by the
time Redis gave them (milliseconds from ``TIME``, so every process counts on one clock). One
script, one round trip per request: drop the entries older than each window, count what is left,
and if every window has room add the request to all of them; a refused request adds nothing, so
it costs no budget and counts in no window (neither the user's nor a key's). Scripts run one at a
time, so N concurrent requests against a limit L admit exactly min(N, L) whichever gateway,
worker or orchestrator they come through. The cost is memory: a window holds one entry per
admitted request (measured: ~32 bytes an entry while a set is a listpack, up to 128 entries, ~113
beyond). Every key of a subject shares a hash tag, so the script runs on Redis Cluster too.

The gateway's script adds an idempotency claim after the check (``gateway.rate_limit.
redis_limiter``); the orchestrator runs ``ADMIT_LUA``. Both count with ``CHECK_WINDOWS_LUA``.

**In process** (``SlidingWindowLog``): the same windows as a log of request times per window under
one lock, for a process without Redis; exact within that process only.
"""

import collections
import dataclasses
import functools
import itertools
import os
import secrets
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence

from taskgate.rate_limits.windows import WINDOW_SECONDS
from taskgate.rate_limits.windows import RateLimitStatus
from taskgate.rate_limits.windows import RateLimitSubject
from taskgate.rate_limits.windows import build_status

# KEYS[1..n]: the windows' sorted sets. ARGV[1]: a member unique to this request; ARGV[2]: n; then
# per window its limit and its length in ms.
# check_windows returns {allowed, now_ms, count_1, reset_ms_1, …, count_n, reset_ms_n}, where count
# is the window's size after counting and reset when the entry whose expiry frees a slot leaves it.
CHECK_WINDOWS_LUA = """
local function check_windows(n, member)
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local counts = {}
  local allowed = 1
  for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - tonumber(ARGV[2 * i + 2]))
    counts[i] = redis.call('ZCARD', KEYS[i])
    if counts[i] >= tonumber(ARGV[2 * i + 1]) then
      allowed = 0
    end
  end
  local reply = {allowed, now}
  for i = 1, n do
    local limit = tonumber(ARGV[2 * i + 1])
    local span = tonumber(ARGV[2 * i + 2])
    if allowed == 1 then
      redis.call('ZADD', KEYS[i], now, member)
      redis.call('PEXPIRE', KEYS[i], span)
      counts[i] = counts[i] + 1
    end
    local index = math.max(counts[i] - limit, 0)
    local edge = redis.call('ZRANGE', KEYS[i], index, index, 'WITHSCORES')
    local reset = now
    if edge[2] then
      reset = tonumber(edge[2]) + span
    end
    reply[2 * i + 1] = counts[i]
    reply[2 * i + 2] = reset
  end
  return reply
end
"""

# The windows alone, for a caller with nothing else to do in the same round trip.
ADMIT_LUA = CHECK_WINDOWS_LUA + "return check_windows(tonumber(ARGV[2]), ARGV[1])\n"

_SWEEP_EVERY = 1000
_LONGEST_WINDOW = max(WINDOW_SECONDS.values())
_CACHED_SUBJECTS = 4096


class _RequestMembers:
    """Names for counted requests, unique across processes: a random prefix per process, then a count.

    Cheaper than random bytes per request (a system call each); a forked child draws a new prefix.
    The prefix is fixed-length (48 random bits), so prefix and count never run into each other.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):x}"


_MEMBERS = _RequestMembers()


def request_member() -> str:
    """Return the name of one counted request in the windows: unique across processes and calls."""
    return _MEMBERS.next()


@dataclasses.dataclass(frozen=True)
class WindowCall:
    """How ``check_windows`` counts a subject: its windows' keys, and the arguments after the member."""

    keys: tuple[str, ...]
    arguments: tuple[int, ...]


@functools.lru_cache(maxsize=_CACHED_SUBJECTS)
def window_call(subject: RateLimitSubject) -> WindowCall:
    """Return the KEYS and the ARGV after the member that check and count a subject's windows."""
    arguments = [len(subject.rules)]
    for rule in subject.rules:
        arguments += [rule.limit, rule.seconds * 1000]
    return WindowCall(tuple(subject.key(rule) for rule in subject.rules), tuple(arguments))


def status_from_reply(subject: RateLimitSubject, reply: Sequence) -> RateLimitStatus:
    """Return the status ``check_windows`` answered (the first 2 + 2n items of the reply)."""
    count = len(subject.rules)
    return build_status(
        subject.rules,
        int(reply[1]) / 1000,
        [int(reply[2 * i + 2]) for i in range(count)],
        [int(reply[2 * i + 3]) / 1000 for i in range(count)],
        reply[0] == 1,
    )


class SlidingWindowLog:
    """The windows in process: a log per window of the request times still in it, under one lock."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str, str], collections.deque[float]] = {}
        self._checks = 0

    def admit(self, subject: RateLimitSubject) -> RateLimitStatus:
        """Count the request in every window if each has room; a refused request counts in none."""
        with self._lock:
            now = self._clock()
            logs = [
                self._logs.setdefault(
                    (subject.partition, subject.counter_of(rule), rule.name), collections.deque()
                )
                for rule in subject.rules
            ]
            for rule, log in zip(subject.rules, logs, strict=True):
                while log and log[0] <= now - rule.seconds:
                    log.popleft()
            allowed = all(len(log) < rule.limit for rule, log in zip(subject.rules, logs, strict=True))
            counts, resets = [], []
            for rule, log in zip(subject.rules, logs, strict=True):
                if allowed:
                    log.append(now)
                counts.append(len(log))
                resets.append(log[max(len(log) - rule.limit, 0)] + rule.seconds if log else now)
            self._checks += 1
            if self._checks % _SWEEP_EVERY == 0:
                self._sweep(now)
        return build_status(subject.rules, now, counts, resets, allowed)

    def _sweep(self, now: float) -> None:
        """Forget the logs with nothing left in any window, so memory follows the active callers."""
        for key in [key for key, log in self._logs.items() if not log or log[-1] <= now - _LONGEST_WINDOW]:
            del self._logs[key]
