"""Names of the Redis keys both services share: keyed hashes only, grouped by caller with a hash tag.

No caller identifier (user id, API-key id, client address, idempotency key) appears in a key
name: each is an HMAC-SHA256 under the service token, so reading Redis reveals nothing, and a
client address cannot be recovered by hashing the whole address space. Every key of one caller
carries the same hash tag (``{u:<digest>}``; ``{ip:<digest>}`` for per-address limits), so on
Redis Cluster they live in one slot and a script may touch the rate-limit windows and the
idempotency record of a request together. The orchestrator names the rate-limit windows of its
direct gRPC callers with the same namer (keyed with the same service token), so a user's HTTP and
gRPC calls count in the same keys.
"""

import hashlib
import hmac

KEY_PREFIX = "tg"
_DIGEST_HEX_CHARS = 32


class KeyNamer:
    """Build key names from caller identifiers, hashed with a secret every service shares."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def digest(self, *parts: str) -> str:
        """Return a 128-bit keyed hash (hex) of the parts, unambiguous however they are split."""
        message = "".join(f"{len(part)}:{part}" for part in parts).encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:_DIGEST_HEX_CHARS]

    def user_partition(self, tenant_id: str, user_id: str) -> str:
        """Return the hash tag grouping every key of one user."""
        return "u:" + self.digest("user", tenant_id, user_id)

    def address_partition(self, address: str) -> str:
        """Return the hash tag grouping the per-address limits of one client address."""
        return "ip:" + self.digest("ip", address)

    @staticmethod
    def key(partition: str, *parts: str) -> str:
        """Return ``tg:{<partition>}:<parts…>``."""
        return ":".join((KEY_PREFIX, "{" + partition + "}", *parts))
