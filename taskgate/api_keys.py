"""API-key format: generation, normalisation and the stored hash.

A key is ``sk_`` followed by 64 lower-case hex characters. Only its SHA-256 hash and a short
lookup prefix are stored; a presented key is found by prefix and compared by hash in constant time.
Keys in the Shannon form ``sk-shannon-<rest>`` are accepted and normalised to ``sk_<rest>``.
"""

import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "sk_"
SHANNON_PREFIX = "sk-shannon-"
LOOKUP_PREFIX_LENGTH = 8
_KEY_PATTERN = re.compile(r"^sk_[0-9a-f]{64}$")


def generate_api_key() -> str:
    """Return a new random API key."""
    return KEY_PREFIX + secrets.token_hex(32)


def normalise_api_key(raw: str) -> str | None:
    """Return the canonical form of a presented key, or None when it is not a well-formed key."""
    key = raw.strip()
    if key.startswith(SHANNON_PREFIX):
        key = KEY_PREFIX + key[len(SHANNON_PREFIX) :]
    key = KEY_PREFIX + key[len(KEY_PREFIX) :].lower() if key.startswith(KEY_PREFIX) else key
    return key if _KEY_PATTERN.match(key) else None


def lookup_prefix(key: str) -> str:
    """Return the short, non-secret prefix a stored key is found by."""
    return key[: len(KEY_PREFIX) + LOOKUP_PREFIX_LENGTH]


def hash_api_key(key: str) -> str:
    """Return the hex SHA-256 of a canonical key; keys are random, so no salt or KDF is needed."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    """Compare a canonical key with a stored hash in constant time."""
    return hmac.compare_digest(hash_api_key(key), stored_hash)
