"""Names of the gateway's Redis keys: written once in ``taskgate.redis_keys`` for both services."""

from taskgate.redis_keys import KEY_PREFIX
from taskgate.redis_keys import KeyNamer

__all__ = ["KEY_PREFIX", "KeyNamer"]
