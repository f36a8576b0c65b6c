"""What a limiter counts and answers: the subject's windows in, the admission (and its status) out.

``WindowRule``, ``RateLimitSubject`` and ``build_status`` are written once in
``taskgate.rate_limits.windows`` (the orchestrator counts with them too) and are importable here.
"""

import dataclasses
from typing import Protocol

from gateway.idempotency.claims import ClaimOutcome
from gateway.idempotency.claims import PendingClaim
from gateway.rate_limit.status import RateLimitStatus
from taskgate.rate_limits.windows import RateLimitSubject
from taskgate.rate_limits.windows import WindowRule
from taskgate.rate_limits.windows import build_status

__all__ = ["Admission", "Limiter", "RateLimitSubject", "WindowRule", "build_status"]


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
