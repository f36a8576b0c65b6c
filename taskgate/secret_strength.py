"""The strength rule for the secrets a real deployment brings: the service token and the JWT secret.

Outside dev and test each is required, at least 32 bytes, and not a value anyone could guess: a
well-known default, a placeholder, or a string with almost no variety. Both services read both
secrets through ``required_strong``, so they refuse the same values with the same line, which
names the variable and never quotes the value.
"""

from taskgate.environment import SettingsError

MIN_BYTES = 32
_MIN_DISTINCT_CHARACTERS = 10
# Defaults shipped by frameworks, tutorials and sample configs, and tell-tale placeholder words.
_WELL_KNOWN = frozenset(
    {
        "your-256-bit-secret",
        "your-secret-key",
        "secret",
        "secretkey",
        "jwt-secret",
        "jwtsecret",
        "service-token",
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
HOW_TO_MAKE_ONE = f"use at least {MIN_BYTES} random bytes, e.g. openssl rand -hex 32"


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


def required_strong(name: str, value: str | None, env: str) -> str:
    """Return the value of the secret ``name``, or raise SettingsError when it is unset or weak.

    ``value`` is the variable's value (None when unset or blank); ``env`` the environment whose
    rules apply (any but dev and test), named in the message because it may be the default.
    """
    if value is None:
        raise SettingsError(
            f"{name} is required when TASKGATE_ENV={env} ({HOW_TO_MAKE_ONE}); "
            "for development set TASKGATE_ENV=dev, as taskgate run does"
        )
    problem = weakness(value)
    if problem is not None:
        raise SettingsError(f"{name} {problem} when TASKGATE_ENV={env}; {HOW_TO_MAKE_ONE}")
    return value
