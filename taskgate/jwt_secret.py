"""The policy for ``TASKGATE_JWT_SECRET``, shared by the gateway's and the orchestrator's settings.

Outside dev and test the secret is required, at least 32 bytes, and not a value anyone could
guess: a well-known default, a placeholder, or a string with almost no variety. In dev and test an
unset secret is derived from the service token, so the two services agree without configuration
and ``taskgate run`` (which makes a new service token each run) has a new one each run.
"""

import hashlib
import hmac

from taskgate.environment import RELAXED_ENVIRONMENTS

NAME = "TASKGATE_JWT_SECRET"
MIN_BYTES = 32
_MIN_DISTINCT_CHARACTERS = 10
_DERIVATION_LABEL = b"taskgate jwt secret v1"
# Defaults shipped by frameworks, tutorials and sample configs, and tell-tale placeholder words.
_WELL_KNOWN = frozenset(
    {
        "your-256-bit-secret",
        "your-secret-key",
        "secret",
        "secretkey",
        "jwt-secret",
        "jwtsecret",
        "changeme",
        "development-only-secret-change-in-production",
        "taskgate",
        "shannon",
    }
)
_PLACEHOLDER_WORDS = (
    "changeme",
    "change-me",
    "change_me",
    "change-in-production",
    "change_in_production",
    "replace-me",
    "replace_me",
    "your-256-bit-secret",
    "your-secret",
    "your_secret",
    "development-only",
    "not-a-secret",
    "insecure",
    "example",
    "placeholder",
)


def weakness(secret: str) -> str | None:
    """Return why a secret is unfit outside dev/test (a phrase to complete a sentence), or None."""
    lowered = secret.strip().lower()
    if lowered in _WELL_KNOWN or any(word in lowered for word in _PLACEHOLDER_WORDS):
        return "is a well-known or placeholder value"
    if len(secret.encode("utf-8")) < MIN_BYTES:
        return f"must be at least {MIN_BYTES} bytes"
    if len(set(secret)) < _MIN_DISTINCT_CHARACTERS:
        return "has too little variety to be random"
    return None


def resolve(configured: str | None, env: str, service_token: str) -> str:
    """Return the secret to use, or raise ValueError with one line naming the variable.

    ``configured`` is the variable's value (None when unset or blank).
    """
    if env in RELAXED_ENVIRONMENTS:
        if configured is None:
            return derive_from_service_token(service_token)
        return configured
    if configured is None:
        raise ValueError(f"{NAME} is required when TASKGATE_ENV={env} (e.g. openssl rand -hex 32)")
    problem = weakness(configured)
    if problem is not None:
        raise ValueError(
            f"{NAME} {problem}; use at least {MIN_BYTES} random bytes, e.g. openssl rand -hex 32"
        )
    if hmac.compare_digest(configured.encode("utf-8"), service_token.encode("utf-8")):
        raise ValueError(f"{NAME} must differ from TASKGATE_SERVICE_TOKEN")
    return configured


def derive_from_service_token(service_token: str) -> str:
    """Return the development secret both services compute from their shared service token."""
    return hmac.new(service_token.encode("utf-8"), _DERIVATION_LABEL, hashlib.sha256).hexdigest()
