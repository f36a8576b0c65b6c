"""What an API key's fields may hold, checked alike by the gateway (400) and the orchestrator.

A key's scopes are names of ``taskgate.scopes.ALL_SCOPES``, each at most once; an unknown name is
refused, so a misspelt scope cannot create a key that silently grants nothing. A key created
without scopes has full access.
"""

from collections.abc import Sequence

from taskgate.scopes import ALL_SCOPES
from taskgate.scopes import is_known_scope

MAX_NAME_CHARACTERS = 100
MAX_DESCRIPTION_CHARACTERS = 500
MAX_SCOPES = len(ALL_SCOPES)
SCOPES_RULE = f"distinct names among {', '.join(ALL_SCOPES)} (none: full access)"
# A rate-limit override per minute or per hour.
MAX_RATE_LIMIT = 1_000_000_000


def valid_scopes(scopes: Sequence[object]) -> bool:
    """Return whether a list of scopes names only known scopes, each once."""
    return (
        len(scopes) <= MAX_SCOPES
        and all(is_known_scope(scope) for scope in scopes)
        and len(set(scopes)) == len(scopes)
    )
