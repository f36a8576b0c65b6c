"""The usage ledger and the cap on API keys, on both databases: windows, parallel writes, exact caps."""

import asyncio
import dataclasses
import datetime

import pytest

from orchestrator.domain.accounts import NewApiKey
from orchestrator.domain.budgets import UsageWindows
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.errors import ApiKeyLimitError
from tests.integration.store_fixtures import Owner
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import frozen_clock as frozen_clock
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run
from tests.integration.store_fixtures import start_task

# One second before midnight of the last day of a year: the next second ends a minute and a day.
LAST_SECOND = datetime.datetime(2030, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


def api_key(name: str, expires_at: datetime.datetime | None = None) -> NewApiKey:
    return NewApiKey(name, f"pfx-{name}", f"hash-{name}", expires_at=expires_at)


async def finish_with(store, owner: Owner, task_id: str, usage: TokenUsage, api_key_id: str = "") -> None:
    """Submit, claim and complete a task of ``owner`` with this usage, submitted with that key."""
    task = dataclasses.replace(
        new_task(task_id, owner, session_id=f"session-{task_id}"), api_key_id=api_key_id
    )
    claimed = await start_task(store, task, worker=f"worker-{task_id}")
    outcome = TaskOutcome(TaskStatus.COMPLETED, "done", "", usage)
    assert await store.finish_task(task_id, claimed.claim, outcome, ()) is not None


def test_usage_counts_in_its_minute_and_day_per_user_and_per_key(database_url, frozen_clock):
    frozen_clock.now = LAST_SECOND.replace(second=30)

    async def scenario(store):
        user = await store.create_user("ledger@example.com", "ledger")
        other = await store.create_user("other@example.com", "other")
        key = await store.create_api_key(user, api_key("first"))
        owner, stranger = Owner(user.id, user.tenant_id), Owner(other.id, other.tenant_id)

        await finish_with(store, owner, "by-key", TokenUsage(100, 50, 0.25), key.id)
        await finish_with(store, owner, "by-token", TokenUsage(10, 20, 0.5))
        await finish_with(store, stranger, "stranger", TokenUsage(1000, 1000, 9.0))
        # Nothing used: nothing recorded, and nothing fails.
        await finish_with(store, owner, "idle", TokenUsage())

        usage = await store.budget_usage(user.id, key.id, frozen_clock.now)
        assert (usage.tier, usage.user_tokens, usage.key_tokens) == ("free", 180, 150)
        assert usage.user_cost == pytest.approx(0.75) and usage.key_cost == pytest.approx(0.25)
        assert (usage.key_tokens_per_minute, usage.key_usd_per_day) == (None, None)
        # Another user's key id reads no key; a missing user reads no tier.
        assert (await store.budget_usage(other.id, key.id, frozen_clock.now)).key_tokens == 0
        assert (await store.budget_usage("nobody", "", frozen_clock.now)).tier is None

        # The last second of the minute and the day still counts; the next starts both afresh.
        at_end = await store.budget_usage(user.id, key.id, LAST_SECOND)
        assert (at_end.user_tokens, at_end.key_tokens) == (180, 150)
        next_day = LAST_SECOND + datetime.timedelta(seconds=1)
        fresh = await store.budget_usage(user.id, key.id, next_day)
        assert (fresh.user_tokens, fresh.user_cost, fresh.key_tokens, fresh.key_cost) == (0, 0.0, 0, 0.0)

        # A minute later the same day: the tokens are gone, the cost stays.
        frozen_clock.now = LAST_SECOND.replace(hour=12, minute=0, second=59)
        await finish_with(store, owner, "noon", TokenUsage(7, 0, 1.0), key.id)
        noon = await store.budget_usage(user.id, key.id, frozen_clock.now)
        later = await store.budget_usage(user.id, key.id, frozen_clock.now + datetime.timedelta(seconds=1))
        assert (noon.user_tokens, later.user_tokens) == (7, 0)
        assert later.user_cost == pytest.approx(1.75) and later.key_cost == pytest.approx(1.25)

        by_key = await store.key_usage(user.id, frozen_clock.now)
        assert by_key[key.id][0] == 7 and by_key[key.id][1] == pytest.approx(1.25)
        assert by_key[""][0] == 0 and by_key[""][1] == pytest.approx(0.5)

    run(database_url, scenario)


def test_tasks_finishing_at_once_all_count(database_url, frozen_clock):
    frozen_clock.now = LAST_SECOND.replace(hour=9, second=0)
    count = 12

    async def scenario(store):
        user = await store.create_user("busy@example.com", "busy")
        key = await store.create_api_key(user, api_key("busy"))
        owner = Owner(user.id, user.tenant_id)
        claims = []
        for index in range(count):
            task = dataclasses.replace(
                new_task(f"task-{index}", owner, session_id=f"session-{index}"), api_key_id=key.id
            )
            claims.append(await start_task(store, task, worker=f"worker-{index}"))
        outcome = TaskOutcome(TaskStatus.COMPLETED, "done", "", TokenUsage(3, 2, 0.125))
        finished = await asyncio.gather(
            *(store.finish_task(task.task_id, task.claim, outcome, ()) for task in claims)
        )
        assert all(events is not None for events in finished)
        usage = await store.budget_usage(user.id, key.id, frozen_clock.now)
        assert (usage.user_tokens, usage.key_tokens) == (5 * count, 5 * count)
        assert usage.user_cost == pytest.approx(0.125 * count)

    run(database_url, scenario)


def test_the_ledger_keeps_only_what_budgets_read(database_url, frozen_clock):
    frozen_clock.now = LAST_SECOND.replace(hour=8)

    async def scenario(store):
        user = await store.create_user("old@example.com", "old")
        owner = Owner(user.id, user.tenant_id)
        await finish_with(store, owner, "early", TokenUsage(4, 0, 0.5))
        frozen_clock.now += datetime.timedelta(hours=2)
        await finish_with(store, owner, "late", TokenUsage(6, 0, 0.5))
        # The earlier minute's row was dropped by the later finish; the day's cost is whole.
        early = await store.budget_usage(user.id, "", LAST_SECOND.replace(hour=8))
        late = await store.budget_usage(user.id, "", frozen_clock.now)
        assert (early.user_tokens, late.user_tokens) == (0, 6)
        assert late.user_cost == pytest.approx(1.0)

    run(database_url, scenario)


def test_parallel_creates_leave_exactly_the_cap_of_active_keys(database_url):
    cap = 5

    async def scenario(store):
        user = await store.create_user("keys@example.com", "keys")
        now = datetime.datetime.now(datetime.UTC)
        # Revoked and expired keys do not count (the store takes any expiry; the engine checks it).
        revoked = await store.create_api_key(user, api_key("revoked"), cap)
        await store.revoke_api_key(revoked.id, user.id, now)
        await store.create_api_key(user, api_key("expired", now - datetime.timedelta(seconds=1)), cap)

        results = await asyncio.gather(
            *(store.create_api_key(user, api_key(f"key-{index}"), cap) for index in range(cap + 5)),
            return_exceptions=True,
        )
        refused = [result for result in results if isinstance(result, ApiKeyLimitError)]
        assert len(refused) == 5, results
        keys = await store.list_api_keys(user.id)
        assert sum(key.is_usable(datetime.datetime.now(datetime.UTC)) for key in keys) == cap
        # 0 means no cap.
        await store.create_api_key(user, api_key("uncapped"))

    run(database_url, scenario)


def test_windows_of_an_instant():
    windows = UsageWindows.at(datetime.datetime(2030, 5, 6, 7, 8, 9, 123, tzinfo=datetime.UTC))
    assert windows.minute_start == datetime.datetime(2030, 5, 6, 7, 8, tzinfo=datetime.UTC)
    assert windows.minute_end == datetime.datetime(2030, 5, 6, 7, 9, tzinfo=datetime.UTC)
    assert windows.day_end == datetime.datetime(2030, 5, 7, tzinfo=datetime.UTC)
