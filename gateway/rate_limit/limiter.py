"""What a gateway limiter answers: the admission (the status after counting, and the idempotency claim).

What it counts against (``RateLimitSubject``, its ``WindowRule``s) and the status it builds are
``taskgate.rate_limits.windows``, which the orchestrator counts with too.
"""

import dataclasses
from typing import Protocol

from gateway.idempotency.claims import ClaimOutcome
from gateway.idempotency.claims import PendingClaim
from taskgate.rate_limits.windows import RateLimitStatus
from taskgate.rate_limits.windows import RateLimitSubject


@dataclasses.dataclass(frozen=True)
class Admission:
    """A limiter's answer: the status after counting, and the idempotency claim made with it.

    ``claim`` is None when the limiter did not make the claim (it cannot fold one, or the request
    was refused); the idempotency middleware then makes it itself if the request carries a key.
    """

    status: RateLimitStatus
    claim: ClaimOutcome | None = None


class Limiter(Protocol):
    """Counts a request against its subject's windows, exactly, and says whether it may go on."""

    def admit(self, subject: RateLimitSubject, claim: PendingClaim | None = None) -> Admission:
        """Count the request if every window has room; raise RedisUnavailableError if it cannot tell."""
