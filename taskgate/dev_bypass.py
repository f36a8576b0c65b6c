"""The fixed user of the development bypass (``TASKGATE_SKIP_AUTH=1``, dev and test only).

With the bypass on, the gateway serves a request that brings no credential as this user, and the
orchestrator makes sure the user's account exists when it starts, so ``/api/v1/auth/me`` and the
key routes work for it too. A request that does bring a credential is authenticated as usual.
"""

USER_ID = "dev-user"
TENANT_ID = "dev-tenant"
EMAIL = "dev-user@taskgate.local"
USERNAME = "dev"
ROLE = "owner"
TIER = "free"

NAME = "TASKGATE_SKIP_AUTH"
_SWITCH_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_ALLOWED_ENVIRONMENTS = ("dev", "test")


def enabled(raw: str | None, env: str) -> bool:
    """Read the switch (None when unset); raise ValueError, one line, when it is on outside dev/test."""
    if raw is None:
        return False
    value = _SWITCH_VALUES.get(raw.strip().lower())
    if value is None:
        raise ValueError(f"{NAME} must be 1 or 0")
    if value and env not in _ALLOWED_ENVIRONMENTS:
        raise ValueError(f"{NAME}=1 is allowed only when TASKGATE_ENV is dev or test, not {env}; unset it")
    return value
