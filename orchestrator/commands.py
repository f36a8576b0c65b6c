"""The orchestrator's commands that change state without serving: migrate, API keys, roles.

``taskgate/cli.py`` runs them. Each opens the migrated store, acts through the engines the
composition root builds (``orchestrator.app.open_account_engines``), so a key made here is
checked, hashed and stored exactly as one made through the API, and closes the store again.
Engine errors (``orchestrator.errors``) reach the caller with their public message.
"""

import asyncio

from orchestrator.app import open_account_engines
from orchestrator.backends import open_migrated_store
from orchestrator.caller import Caller
from orchestrator.domain.accounts import UserRecord
from orchestrator.engine.api_keys import KeyRequest
from orchestrator.settings import OrchestratorSettings


def migrate(settings: OrchestratorSettings) -> None:
    """Apply the store's pending schema migrations."""

    async def open_and_close() -> None:
        store = await open_migrated_store(settings)
        await store.close()

    asyncio.run(open_and_close())


def create_api_key(settings: OrchestratorSettings, email: str, name: str) -> str:
    """Create a new API key for the user with ``email`` (created if absent) and return the key."""

    async def create() -> str:
        async with open_account_engines(settings) as engines:
            user = await engines.accounts.find_or_create_user(email)
            created = await engines.api_keys.create_key(_acting_as(user), KeyRequest(name))
            return created.api_key

    return asyncio.run(create())


def ensure_api_key(settings: OrchestratorSettings, email: str, api_key: str, name: str = "dev") -> None:
    """Make sure the user with ``email`` exists and that ``api_key`` is a stored key (theirs if new)."""

    async def ensure() -> None:
        async with open_account_engines(settings) as engines:
            user = await engines.accounts.find_or_create_user(email)
            await engines.api_keys.adopt_key(_acting_as(user), api_key, KeyRequest(name))

    asyncio.run(ensure())


def set_user_role(settings: OrchestratorSettings, email: str, role: str) -> UserRecord:
    """Give the user with ``email`` a role (user, admin or owner); UserNotFoundError if there is none."""

    async def update() -> UserRecord:
        async with open_account_engines(settings) as engines:
            return await engines.accounts.set_role(email, role)

    return asyncio.run(update())


def _acting_as(user: UserRecord) -> Caller:
    """Return the caller an operator's command acts as when it changes this user's keys."""
    return Caller(user.id, user.tenant_id, user.role, user.tier)
