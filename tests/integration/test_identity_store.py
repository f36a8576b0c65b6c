"""The identity methods of the store, the same contract on SQLite and on a real PostgreSQL."""

import asyncio
import datetime

import pytest

from orchestrator.domain.accounts import NewAccount
from orchestrator.domain.accounts import NewApiKey
from orchestrator.domain.accounts import NewRefreshToken
from orchestrator.domain.accounts import RateLimitOverrides
from orchestrator.domain.accounts import RefreshOutcome
from orchestrator.domain.accounts import UserRecord
from orchestrator.errors import AlreadyExistsError
from taskgate.rfc3339 import utc_now
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import run

pytestmark = pytest.mark.integration

LATER = datetime.timedelta(days=30)


def account(email: str, token_hash: str = "refresh-1", key_hash: str = "key-hash-1") -> NewAccount:  # noqa: S107
    return NewAccount(
        email=email,
        username="ada",
        name="Ada",
        password_hash="argon2-hash",
        api_key=NewApiKey("default", "sk_12345678", key_hash),
        refresh_token=NewRefreshToken(token_hash, utc_now() + LATER),
    )


def test_an_account_is_stored_whole_or_not_at_all(database_url):
    async def scenario(store):
        user = await store.create_account(account("ada@example.com"))
        credentials = await store.find_user_credentials("ADA@example.com")
        assert (credentials.user, credentials.password_hash) == (user, "argon2-hash")
        assert user.name == "Ada" and (await store.get_user(user.id)) == user
        [(key, owner)] = await store.find_api_keys("sk_12345678")
        assert (key.user_id, key.tenant_id, owner.id) == (user.id, user.tenant_id, user.id)

        with pytest.raises(AlreadyExistsError):
            await store.create_account(account("Ada@Example.com", "refresh-2", "key-hash-2"))
        # The refused registration left no key behind.
        assert len(await store.find_api_keys("sk_12345678")) == 1

    run(database_url, scenario)


def test_refresh_tokens_rotate_once_and_a_reuse_revokes_the_family(database_url):
    async def scenario(store):
        user = await store.create_account(account("rot@example.com"))
        now = utc_now()
        second = await store.rotate_refresh_token("refresh-1", NewRefreshToken("refresh-2", now + LATER), now)
        assert (second.outcome, second.user.id) == (RefreshOutcome.ROTATED, user.id)

        reuse = await store.rotate_refresh_token("refresh-1", NewRefreshToken("refresh-3", now + LATER), now)
        assert reuse.outcome is RefreshOutcome.REUSED
        current = await store.rotate_refresh_token(
            "refresh-2", NewRefreshToken("refresh-4", now + LATER), now
        )
        assert current.outcome is RefreshOutcome.REVOKED
        unknown = await store.rotate_refresh_token("nope", NewRefreshToken("refresh-5", now + LATER), now)
        assert unknown.outcome is RefreshOutcome.UNKNOWN

        await store.create_refresh_token(
            user.id, NewRefreshToken("short-lived", now + datetime.timedelta(seconds=1))
        )
        later = now + datetime.timedelta(seconds=2)
        expired = await store.rotate_refresh_token(
            "short-lived", NewRefreshToken("refresh-6", later + LATER), later
        )
        assert expired.outcome is RefreshOutcome.EXPIRED

    run(database_url, scenario)


def test_two_rotations_of_one_token_at_once_are_one_use_and_one_reuse(database_url):
    async def scenario(store):
        await store.create_account(account("race@example.com"))
        now = utc_now()
        outcomes = await asyncio.gather(
            store.rotate_refresh_token("refresh-1", NewRefreshToken("left", now + LATER), now),
            store.rotate_refresh_token("refresh-1", NewRefreshToken("right", now + LATER), now),
        )
        assert sorted(o.outcome.value for o in outcomes) == ["reused", "rotated"]
        # The winner's new token went down with the family.
        winner = "left" if outcomes[0].outcome is RefreshOutcome.ROTATED else "right"
        after = await store.rotate_refresh_token(winner, NewRefreshToken("next", now + LATER), now)
        assert after.outcome is RefreshOutcome.REVOKED

    run(database_url, scenario)


def test_keys_are_listed_revoked_and_limited_within_their_owner_or_tenant(database_url):
    async def scenario(store):
        user = await store.create_account(account("keys@example.com"))
        other = await store.create_account(account("other@example.com", "refresh-o", "key-hash-o"))
        key = await store.create_api_key(
            user, NewApiKey("ci", "sk_abcdefgh", "hash-ci", description="d", scopes=("a:b",))
        )
        listed = await store.list_api_keys(user.id)
        assert [k.name for k in listed] == ["ci", "default"]
        assert (listed[0].description, listed[0].scopes) == ("d", ("a:b",))

        assert not await store.revoke_api_key(key.id, other.id, utc_now())
        assert await store.revoke_api_key(key.id, user.id, utc_now())
        first_revocation = (await store.list_api_keys(user.id))[0].revoked_at
        assert await store.revoke_api_key(key.id, user.id, utc_now() + LATER)
        assert (await store.list_api_keys(user.id))[0].revoked_at == first_revocation

        assert await store.get_tenant_api_key(key.id, other.tenant_id) is None
        assert await store.set_api_key_rate_limits(key.id, other.tenant_id, RateLimitOverrides(1, 2)) is None
        limited = await store.set_api_key_rate_limits(key.id, user.tenant_id, RateLimitOverrides(5, None))
        assert (limited.rate_limit_per_minute, limited.rate_limit_per_hour) == (5, None)
        [(found, _)] = await store.find_api_keys("sk_abcdefgh")
        assert found.rate_limit_per_minute == 5

    run(database_url, scenario)


def test_roles_are_set_by_email_and_fixed_users_are_made_once(database_url):
    async def scenario(store):
        user = await store.create_account(account("role@example.com"))
        assert (await store.set_user_role("ROLE@example.com", "admin")).role == "admin"
        assert (await store.get_user(user.id)).role == "admin"
        assert await store.set_user_role("nobody@example.com", "admin") is None

        fixed = UserRecord(
            "dev-user", "dev-tenant", "dev-user@taskgate.local", "dev", "owner", "free", utc_now()
        )
        await store.ensure_user(fixed)
        await store.ensure_user(fixed)
        assert (await store.get_user("dev-user")).role == "owner"

    run(database_url, scenario)
