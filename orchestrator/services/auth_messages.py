"""Converting accounts, tokens, API keys and budgets to the AuthService's protobuf messages."""

import datetime

from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.domain.accounts import UserRecord
from orchestrator.domain.budgets import Budget
from orchestrator.domain.budgets import CallerBudgets
from orchestrator.domain.budgets import UsageWindows
from orchestrator.domain.budgets import key_budgets
from orchestrator.services.messages import timestamp
from orchestrator.tokens import TokenPair
from taskgate.orchestrator.v1 import auth_pb2


def token_pair_to_proto(tokens: TokenPair) -> auth_pb2.TokenPair:
    """Return the TokenPair message of an access token and its refresh token."""
    return auth_pb2.TokenPair(
        access_token=tokens.access_token, refresh_token=tokens.refresh_token, expires_in=tokens.expires_in
    )


def budgets_to_proto(budgets: tuple[Budget, Budget]) -> auth_pb2.UsageBudgets:
    """Return the UsageBudgets message of a token budget per minute and a cost budget per day."""
    tokens, cost = budgets
    return auth_pb2.UsageBudgets(tokens_per_minute=_budget(tokens), usd_per_day=_budget(cost))


def _budget(budget: Budget) -> auth_pb2.Budget:
    return auth_pb2.Budget(limit=budget.limit, used=budget.used, resets_at=timestamp(budget.resets_at))


def api_key_to_proto(
    key: ApiKeyRecord, now: datetime.datetime, budgets: tuple[Budget, Budget] | None = None
) -> auth_pb2.ApiKey:
    """Return the ApiKey message of a stored key (never its hash); active means usable at ``now``.

    ``budgets``: the key's own budgets with its usage (the key list's); otherwise its limits alone.
    """
    if budgets is None:
        budgets = key_budgets(key.tokens_per_minute, key.usd_per_day, 0, 0.0, UsageWindows.at(now))
    return auth_pb2.ApiKey(
        id=key.id,
        name=key.name,
        description=key.description,
        key_prefix=key.key_prefix,
        scopes=key.scopes,
        created_at=timestamp(key.created_at),
        last_used_at=timestamp(key.last_used_at),
        expires_at=timestamp(key.expires_at),
        is_active=key.is_usable(now),
        rate_limit_per_minute=key.rate_limit_per_minute or 0,
        rate_limit_per_hour=key.rate_limit_per_hour or 0,
        budgets=budgets_to_proto(budgets),
    )


def current_user_to_proto(user: UserRecord, budgets: CallerBudgets) -> auth_pb2.GetCurrentUserResponse:
    """Return the GetCurrentUser answer describing an account, with the caller's budgets."""
    return auth_pb2.GetCurrentUserResponse(
        budgets=budgets_to_proto(budgets.user),
        key_budgets=budgets_to_proto(budgets.key) if budgets.key is not None else None,
        user_id=user.id,
        tenant_id=user.tenant_id,
        email=user.email,
        username=user.username,
        role=user.role,
        tier=user.tier,
        name=user.name,
    )
