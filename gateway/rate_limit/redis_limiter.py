"""The shared limiter: a sliding-window log per window in Redis, checked and counted by one script.

Each window of a subject is a sorted set of the requests it admitted, scored by the time Redis
gave them (milliseconds from ``TIME``, so every gateway counts on one clock). One script, one
round trip per request: drop the entries older than each window, count what is left, and if
every window has room add the request to all of them; a refused request adds nothing, so it costs
no budget. Scripts run one at a time, so N concurrent requests against a limit L admit exactly
min(N, L) whichever gateways they come through. The cost is memory: a window holds one entry per
admitted request (measured: ~32 bytes an entry while a set is a listpack, up to 128 entries, ~113
beyond), so a caller at the default 1000 an hour holds at most ~115 kB. Every key of a subject
shares a hash tag, so the script runs on Redis Cluster too.

When the request carries an idempotency key, its claim is made in the same script (after the
check, and only if the request is admitted), so such a request still costs one round trip here.
"""

import secrets

from gateway.idempotency.claims import PendingClaim
from gateway.idempotency.redis_store import CLAIM_FUNCTION_LUA
from gateway.idempotency.redis_store import claim_outcome
from gateway.rate_limit.limiter import Admission
from gateway.rate_limit.limiter import RateLimitSubject
from gateway.rate_limit.limiter import build_status
from gateway.redis_client import GatewayRedis

# KEYS[1..n]: the windows' sorted sets; KEYS[n+1] (optional): the idempotency record to claim.
# ARGV[1]: a member unique to this request; ARGV[2]: n; then per window its limit and its length
# in ms; then (with a claim) the in-flight record and its lease in ms.
# Reply: {allowed, now_ms, count_1, reset_ms_1, …, count_n, reset_ms_n[, claim]}, where count is
# the window's size after counting and reset when the entry whose expiry frees a slot leaves it.
_SLIDING_WINDOW_LUA = """
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

_LIMIT_AND_CLAIM_LUA = (
    _SLIDING_WINDOW_LUA
    + CLAIM_FUNCTION_LUA
    + """
local n = tonumber(ARGV[2])
local reply = check_windows(n, ARGV[1])
if #KEYS > n and reply[1] == 1 then
  reply[2 * n + 3] = claim_key(KEYS[n + 1], ARGV[2 * n + 3], ARGV[2 * n + 4])
end
return reply
"""
)


class RedisSlidingWindowLimiter:
    """Exact sliding windows shared by every gateway, one EVALSHA per request."""

    def __init__(self, redis: GatewayRedis) -> None:
        self._redis = redis
        self._script = redis.script(_LIMIT_AND_CLAIM_LUA)

    def admit(self, subject: RateLimitSubject, claim: PendingClaim | None = None) -> Admission:
        """Count the request if every window has room, claiming its idempotency key in the same call.

        The claim is folded in only when its record shares the subject's hash tag (one slot).
        """
        keys = [subject.key(rule) for rule in subject.rules]
        args: list[str | int | bytes] = [secrets.token_hex(8), len(subject.rules)]
        for rule in subject.rules:
            args += [rule.limit, rule.seconds * 1000]
        folded = claim is not None and claim.partition == subject.partition
        if folded:
            keys.append(claim.key)
            args += [claim.pending_value, claim.lease_ms]
        reply = self._redis.run(self._script, keys, args)
        allowed = reply[0] == 1
        count = len(subject.rules)
        status = build_status(
            subject.rules,
            reply[1] / 1000,
            [int(reply[2 * i + 2]) for i in range(count)],
            [int(reply[2 * i + 3]) / 1000 for i in range(count)],
            allowed,
        )
        if folded and allowed:
            return Admission(status=status, claim=claim_outcome(reply[2 * count + 2]))
        return Admission(status=status)
