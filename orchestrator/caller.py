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
