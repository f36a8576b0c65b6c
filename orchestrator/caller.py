"""Who is calling: the authenticated principal every read and write is scoped to."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Caller:
    """An authenticated caller: a user of a tenant, reached through the gateway or an API key."""

    user_id: str
    tenant_id: str
    role: str = "user"
    tier: str = "free"
    api_key_id: str = ""
    # What the API key allows and its rate-limit overrides (0: the tier's); unset for other callers.
    scopes: tuple[str, ...] = ()
    rate_limit_per_minute: int = 0
    rate_limit_per_hour: int = 0
