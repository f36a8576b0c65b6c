"""The identity methods test_identity_store.py leaves out, the same contract on SQLite and on PostgreSQL.

Users made without a password, lookups by email, keys' use and expiry, and the order of a user's keys.
"""

import dataclasses
import datetime

import pytest

from orchestrator.domain.accounts import NewAccount
from orchestrator.domain.accounts import NewApiKey
from orchestrator.domain.accounts import NewRefreshToken
from orchestrator.domain.accounts import UserRecord
from orchestrator.errors import AlreadyExistsError
from taskgate.rfc3339 import utc_now
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import frozen_clock as frozen_clock
from tests.integration.store_fixtures import run

pytestmark = pytest.mark.integration


def test_a_user_without_a_password_is_created_once_and_found_by_any_case_of_its_email(database_url):
    async def scenario(store):
        before = utc_now()
        user = await store.create_user("Grace@Example.com", "grace")
        assert (user.email, user.username, user.role, user.tier, user.name) == (
            "Grace@Example.com",
            "grace",
            "user",
            "free",
            "",
        )
        assert user.id and user.tenant_id and user.id != user.tenant_id
        assert before <= user.created_at <= utc_now()
        assert await store.get_user(user.id) == user
        assert await store.find_user_by_email("grace@example.COM") == user
        credentials = await store.find_user_credentials("GRACE@example.com")
        assert (credentials.user, credentials.password_hash) == (user, None)
        assert await store.find_user_by_email("nobody@example.com") is None
        assert await store.find_user_credentials("nobody@example.com") is None
        assert await store.get_user("no-such-user") is None

        with pytest.raises(AlreadyExistsError):
            await store.create_user("grace@EXAMPLE.com", "grace-again")
        admin = await store.create_user("root@example.com", "root", role="admin", tier="pro")
        assert (admin.role, admin.tier) == ("admin", "pro") and admin.tenant_id != user.tenant_id
        assert await store.get_user(admin.id) == admin

        # A fixed user whose email is taken already is not made again under its own id.
        taken = UserRecord("fixed-id", "fixed-tenant", "GRACE@example.com", "dev", "owner", "free", utc_now())
        await store.ensure_user(taken)
        assert await store.get_user("fixed-id") is None
        assert (await store.find_user_by_email("grace@example.com")).id == user.id

    run(database_url, scenario)


def test_a_keys_use_and_expiry_are_stored_and_a_hash_is_stored_once(database_url):
    async def scenario(store):
        user = await store.create_user("keys@example.com", "keys")
        expires_at = utc_now() + datetime.timedelta(days=7)
        key = await store.create_api_key(
            user, NewApiKey("ci", "sk_ci123456", "hash-ci", expires_at=expires_at)
        )
        assert (key.user_id, key.tenant_id, key.name, key.key_prefix, key.key_hash) == (
            user.id,
            user.tenant_id,
            "ci",
            "sk_ci123456",
            "hash-ci",
        )
        assert (key.expires_at, key.last_used_at, key.revoked_at, key.description, key.scopes) == (
            expires_at,
            None,
            None,
            "",
            (),
        )
        assert key.is_usable(utc_now()) and not key.is_usable(expires_at)
        assert await store.list_api_keys(user.id) == [key]

        used_at = utc_now()
        await store.touch_api_key(key.id, used_at)
        await store.touch_api_key("no-such-key", used_at)
        [(found, owner)] = await store.find_api_keys("sk_ci123456")
        assert found == dataclasses.replace(key, last_used_at=used_at) and owner == user
        assert await store.list_api_keys(user.id) == [found]
        assert await store.get_tenant_api_key(key.id, user.tenant_id) == found
        assert await store.find_api_keys("sk_unknown") == []

        with pytest.raises(AlreadyExistsError):
            await store.create_api_key(user, NewApiKey("copy", "sk_other12", "hash-ci"))
        assert await store.find_api_keys("sk_other12") == []
        assert await store.list_api_keys("no-such-user") == []

    run(database_url, scenario)


def test_keys_made_in_one_instant_are_listed_latest_made_first(database_url, frozen_clock):
    async def scenario(store):
        account = NewAccount(
            email="many@example.com",
            username="many",
            name="Many",
            password_hash="argon2-hash",
            api_key=NewApiKey("default", "sk_default", "hash-default"),
            refresh_token=NewRefreshToken("refresh-many", utc_now() + datetime.timedelta(days=30)),
        )
        user = await store.create_account(account)
        for name in ("first", "second", "third", "fourth"):
            await store.create_api_key(user, NewApiKey(name, f"sk_{name}", f"hash-{name}"))
        keys = await store.list_api_keys(user.id)
        assert len({key.created_at for key in keys}) == 1
        assert [key.name for key in keys] == ["fourth", "third", "second", "first", "default"]

    run(database_url, scenario)
