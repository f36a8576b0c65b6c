"""Per-account login throttling: how long an email is refused after consecutive failed logins.

The first ``after_failures - 1`` failures cost nothing more than their answer; the failure that
reaches ``after_failures`` refuses the email's logins for ``base_seconds``, and each further one
doubles that, up to ``max_seconds``. A success forgets the failures. The delay is the same for an
email that has an account and one that has not, so it reveals nothing.
"""

import dataclasses
import math

# Failures are consecutive until a success, or until this long passes without one (a day): an
# account someone mistyped into yesterday starts afresh, while a slow guesser stays at the cap.
FORGET_AFTER_SECONDS = 86_400.0


@dataclasses.dataclass(frozen=True)
class LoginBackoff:
    """The refusal that follows a number of consecutive failures: doubling from a base to a cap."""

    after_failures: int = 5
    base_seconds: float = 2.0
    max_seconds: float = 900.0

    def delay_after(self, failures: int) -> float:
        """Return how long logins are refused after ``failures`` consecutive failures (0: not refused)."""
        if failures < self.after_failures:
            return 0.0
        doublings = failures - self.after_failures
        # Past ~60 doublings any base exceeds any cap; stop before 2**n grows without need.
        if doublings >= 64 or self.base_seconds * 2**doublings >= self.max_seconds:
            return self.max_seconds
        return self.base_seconds * 2**doublings


@dataclasses.dataclass(frozen=True)
class LoginFailure:
    """A failed login as recorded: the consecutive failures so far and the refusal it started."""

    failures: int
    refused_seconds: float


def retry_after_seconds(seconds: float) -> int:
    """Return a wait as the whole seconds of a ``Retry-After`` (at least 1, never early)."""
    return max(1, math.ceil(seconds))
