"""The policy for ``TASKGATE_JWT_SECRET``, shared by the gateway's and the orchestrator's settings.

Outside dev and test the secret must pass taskgate.secret_strength's rule (the service token
does too) and differ from the service token. In dev and test an unset secret is derived from the
service token, so the two services agree without configuration and ``taskgate run`` (which makes
a new service token each run) has a new one each run.
"""

import hashlib
import hmac

from taskgate import secret_strength
from taskgate.environment import RELAXED_ENVIRONMENTS
from taskgate.environment import SettingsError

NAME = "TASKGATE_JWT_SECRET"
_DERIVATION_LABEL = b"taskgate jwt secret v1"


def resolve(configured: str | None, env: str, service_token: str) -> str:
    """Return the secret to use, or raise SettingsError with one line naming the variable.

    ``configured`` is the variable's value (None when unset or blank).
    """
    if env in RELAXED_ENVIRONMENTS:
        if configured is None:
            return derive_from_service_token(service_token)
        return configured
    secret_strength.required_strong(NAME, configured, env)
    if hmac.compare_digest(configured.encode("utf-8"), service_token.encode("utf-8")):
        raise SettingsError(f"{NAME} must differ from TASKGATE_SERVICE_TOKEN")
    return configured


def derive_from_service_token(service_token: str) -> str:
    """Return the development secret both services compute from their shared service token."""
    return hmac.new(service_token.encode("utf-8"), _DERIVATION_LABEL, hashlib.sha256).hexdigest()
