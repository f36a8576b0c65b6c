"""The shared limiter: a sliding-window log per window in Redis, checked and counted by one script.

The windows are counted by ``taskgate.rate_limits.sliding_window``'s ``check_windows`` (the
orchestrator counts its direct gRPC callers with the same function, in the same keys), one
``EVALSHA`` per request: exact, and a refused request counts in no window.

When the request carries an idempotency key, its claim is made in the same script (after the
check, and only if the request is admitted), so such a request still costs one round trip here.
"""

import functools

from gateway.idempotency.claims import PendingClaim
from gateway.idempotency.redis_store import CLAIM_FUNCTION_LUA
from gateway.idempotency.redis_store import claim_outcome
from gateway.rate_limit.limiter import Admission
from gateway.redis_client import GatewayRedis
from gateway.redis_client import PackedCall
from taskgate.rate_limits.sliding_window import CHECK_WINDOWS_LUA
from taskgate.rate_limits.sliding_window import request_member
from taskgate.rate_limits.sliding_window import status_from_reply
from taskgate.rate_limits.sliding_window import window_call
from taskgate.rate_limits.windows import RateLimitSubject

# KEYS and ARGV as check_windows takes them, then (with a claim) KEYS[n+1]: the idempotency record
# to claim, and ARGV: the in-flight record and its lease in ms. Reply: check_windows' [, claim].
_LIMIT_AND_CLAIM_LUA = (
    CHECK_WINDOWS_LUA
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
_CACHED_SUBJECTS = 4096


class RedisSlidingWindowLimiter:
    """Exact sliding windows shared by every gateway (and the orchestrator), one EVALSHA per request."""

    def __init__(self, redis: GatewayRedis) -> None:
        self._redis = redis
        self._script = redis.script(_LIMIT_AND_CLAIM_LUA)
        # A caller's requests differ only in their member: the rest of the command is packed once.
        self._packed = functools.lru_cache(maxsize=_CACHED_SUBJECTS)(self._packed_call)

    def admit(self, subject: RateLimitSubject, claim: PendingClaim | None = None) -> Admission:
        """Count the request if every window has room, claiming its idempotency key in the same call.

        The claim is folded in only when its record shares the subject's hash tag (one slot).
        """
        call = window_call(subject)
        folded = claim is not None and claim.partition == subject.partition
        if folded:
            command = self._script.call(
                [*call.keys, claim.key],
                [request_member(), *call.arguments, claim.pending_value, claim.lease_ms],
            )
        else:
            command = self._packed(subject).command(request_member())
        reply = self._redis.run_packed(self._script, command)
        status = status_from_reply(subject, reply)
        if folded and status.allowed:
            return Admission(status=status, claim=claim_outcome(reply[2 * len(subject.rules) + 2]))
        return Admission(status=status)

    def _packed_call(self, subject: RateLimitSubject) -> PackedCall:
        call = window_call(subject)
        return self._script.packed_call(call.keys, call.arguments)
