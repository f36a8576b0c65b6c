"""What an API key's fields may hold, checked alike by the gateway (400) and the orchestrator.

A scope is 1..64 characters: a lower-case letter, then a-z 0-9 and ``: . _ -``; the whole value
must match, so ``"read\n"`` is not a scope.
"""

import re
from collections.abc import Sequence

MAX_NAME_CHARACTERS = 100
MAX_DESCRIPTION_CHARACTERS = 500
MAX_SCOPES = 20
SCOPES_RULE = f"at most {MAX_SCOPES} names of 1..64 characters: a-z first, then a-z 0-9 : . _ -"
# A rate-limit override per minute or per hour.
MAX_RATE_LIMIT = 1_000_000_000
# A key's own budgets (as a tier's, taskgate/rate_limit_tiers.py): tokens per minute, USD per day.
MAX_TOKENS_PER_MINUTE = 1_000_000_000
MAX_USD_PER_DAY = 1_000_000.0
_SCOPE = re.compile(r"[a-z][a-z0-9:._\-]{0,63}")


def valid_scopes(scopes: Sequence[object]) -> bool:
    """Return whether a list of scopes is short enough and each one is a well-formed scope."""
    return len(scopes) <= MAX_SCOPES and all(
        isinstance(scope, str) and _SCOPE.fullmatch(scope) is not None for scope in scopes
    )
