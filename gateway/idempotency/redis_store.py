"""Idempotency records in Redis: claim, complete and release, each one atomic script.

A claim is "GET, and SET with a lease if there was nothing" in one script, so of concurrent
requests with one key exactly one finds nothing and owns the key. Completing and releasing compare
the stored value with the owner's in-flight record first, so a request whose lease has run out
(and whose key someone else has claimed since) can no longer touch it.
"""

from gateway.idempotency.claims import ClaimOutcome
from gateway.idempotency.claims import PendingClaim
from gateway.idempotency.records import parse_record
from gateway.redis_client import GatewayRedis

# Shared with the rate limiter, which makes the claim in its own script to save a round trip.
CLAIM_FUNCTION_LUA = """
local function claim_key(key, value, lease_ms)
  local existing = redis.call('GET', key)
  if existing then
    return existing
  end
  redis.call('SET', key, value, 'PX', lease_ms)
  return ''
end
"""

_CLAIM_LUA = CLAIM_FUNCTION_LUA + "return claim_key(KEYS[1], ARGV[1], ARGV[2])\n"

_COMPLETE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def claim_outcome(reply: bytes) -> ClaimOutcome:
    """Return the outcome of a claim from the script's reply (empty: claimed; else the record found)."""
    return ClaimOutcome(existing=parse_record(reply) if reply else None)


class RedisIdempotencyStore:
    """Idempotency records shared by every gateway through Redis."""

    def __init__(self, redis: GatewayRedis) -> None:
        self._redis = redis
        self._claim = redis.script(_CLAIM_LUA)
        self._complete = redis.script(_COMPLETE_LUA)
        self._release = redis.script(_RELEASE_LUA)

    def claim(self, claim: PendingClaim) -> ClaimOutcome:
        """Own the key, or return the record already under it."""
        reply = self._redis.run(self._claim, [claim.key], [claim.pending_value, claim.lease_ms])
        return claim_outcome(reply)

    def complete(self, claim: PendingClaim, value: bytes, ttl_ms: int) -> bool:
        """Replace this request's in-flight record with its final one; False if it no longer owns it."""
        return self._redis.run(self._complete, [claim.key], [claim.pending_value, value, ttl_ms]) == 1

    def release(self, claim: PendingClaim) -> None:
        """Remove this request's in-flight record (the response is not kept), if it still owns it."""
        self._redis.run(self._release, [claim.key], [claim.pending_value])
