"""Per-account login throttling, kept in the store so every replica refuses the same email alike.

Before a password is checked, the email's refusal is read (one primary-key lookup): a refused
login is answered ``LoginThrottledError`` (RESOURCE_EXHAUSTED, ``login_throttled``, with
``retry-after``) without spending any argon2 time. A failed check counts one more consecutive
failure (``orchestrator.domain.login_throttle.LoginBackoff`` sets the refusal it reaches); a
success forgets them. An email with no account goes through exactly the same steps, so neither
the answers nor their timing say whether the account exists.

Logins already past the check when a refusal begins are still judged: a burst for one email can
exceed the threshold by the logins in flight, which the password hasher's bounded queue and the
gateway's per-address limits bound.
"""

import hashlib
import logging

from orchestrator.domain.login_throttle import LoginBackoff
from orchestrator.domain.login_throttle import retry_after_seconds
from orchestrator.errors import LoginThrottledError
from orchestrator.store.base import Store
from taskgate import account_rules

logger = logging.getLogger(__name__)

# How many failures are recorded between two sweeps of the emails forgotten for a day.
_SWEEP_EVERY = 1000


def email_key(email: str) -> str:
    """Return the key an email's failures are counted under: the SHA-256 of its normal form.

    An email that is not well formed (it can have no account) is counted as typed, trimmed and
    lower-cased, so that it is throttled like any other.
    """
    normalised = account_rules.normalise_email(email) or email.strip().lower()
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()


class LoginThrottle:
    """Refuses the logins of an email after consecutive failures, for a doubling delay."""

    def __init__(self, store: Store, backoff: LoginBackoff) -> None:
        self._store = store
        self._backoff = backoff
        self._recorded = 0

    async def check(self, key: str) -> None:
        """Raise LoginThrottledError while the email's logins are refused."""
        remaining = await self._store.login_refusal_seconds(key)
        if remaining > 0:
            raise LoginThrottledError(retry_after_seconds(remaining))

    async def failed(self, key: str) -> None:
        """Count a failed login of the email (the refusal it reaches applies to the next ones)."""
        failure = await self._store.record_login_failure(key, self._backoff)
        if failure.refused_seconds > 0 and failure.failures == self._backoff.after_failures:
            logger.warning("logins of an account are throttled after consecutive failures")
        self._recorded += 1
        if self._recorded % _SWEEP_EVERY == 0:
            await self._store.forget_login_failures()

    async def succeeded(self, key: str) -> None:
        """Forget the email's failures."""
        await self._store.clear_login_failures(key)
