"""The operator's account commands, through the engines on a real SQLite store: keys, users, roles."""

import asyncio
import secrets

import pytest

from orchestrator import commands
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import UserNotFoundError
from orchestrator.identity import ApiKeyAuthenticator
from orchestrator.settings import OrchestratorSettings
from orchestrator.store import open_store
from taskgate.api_keys import generate_api_key
from taskgate.api_keys import normalise_api_key


@pytest.fixture()
def settings(tmp_path) -> OrchestratorSettings:
    database_url = f"sqlite:///{tmp_path / 'taskgate.db'}"
    return OrchestratorSettings(secrets.token_urlsafe(32), env="test", database_url=database_url)


def callers_of(settings: OrchestratorSettings, *keys: str) -> list:
    """Return who each key authenticates as (None for a key that does not)."""

    async def look_up():
        store = await open_store(settings.database_url)
        authenticator = ApiKeyAuthenticator(store)
        try:
            return [await authenticator.authenticate(key) for key in keys]
        finally:
            await authenticator.close()
            await store.close()

    return asyncio.run(look_up())


def test_a_created_key_authenticates_as_one_user_per_email_whatever_its_case(settings):
    first = commands.create_api_key(settings, "Ada@Example.com", "laptop")
    second = commands.create_api_key(settings, "ada@example.com", "server")

    assert normalise_api_key(first) == first and first != second
    ada, again = callers_of(settings, first, second)
    assert ada is not None and again is not None
    assert (again.user_id, again.tenant_id, ada.role) == (ada.user_id, ada.tenant_id, "user")


@pytest.mark.parametrize(
    ("email", "name", "field"),
    [("not an email", "cli", "email"), ("ada@example.com", " ", "name")],
    ids=["bad email", "blank name"],
)
def test_a_key_request_the_api_would_refuse_is_refused_here_too(settings, email, name, field):
    with pytest.raises(InvalidArgumentError) as refused:
        commands.create_api_key(settings, email, name)

    assert refused.value.field == field


def test_a_role_is_set_on_an_existing_user_only(settings):
    key = commands.create_api_key(settings, "grace@example.com", "cli")

    user = commands.set_user_role(settings, "GRACE@example.com", "admin")

    assert user.role == "admin"
    assert callers_of(settings, key)[0].role == "admin"
    with pytest.raises(UserNotFoundError):
        commands.set_user_role(settings, "nobody@example.com", "admin")
    with pytest.raises(InvalidArgumentError) as refused:
        commands.set_user_role(settings, "grace@example.com", "superuser")
    assert refused.value.field == "role"


def test_ensuring_a_chosen_key_stores_it_once(settings):
    key = generate_api_key()

    commands.ensure_api_key(settings, "dev@taskgate.local", key)
    commands.ensure_api_key(settings, "dev@taskgate.local", key.upper().replace("SK_", "sk_"))

    caller = callers_of(settings, key)[0]
    assert caller is not None

    async def keys_of_the_user():
        store = await open_store(settings.database_url)
        try:
            return await store.list_api_keys(caller.user_id)
        finally:
            await store.close()

    assert [record.name for record in asyncio.run(keys_of_the_user())] == ["dev"]
    with pytest.raises(InvalidArgumentError):
        commands.ensure_api_key(settings, "dev@taskgate.local", "sk_not-a-key")
