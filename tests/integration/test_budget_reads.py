"""When a submission reads the usage ledger: a key without budgets once, a key with them every time."""

import dataclasses

import pytest

from orchestrator.caller import Caller
from orchestrator.domain.accounts import NewApiKey
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.engine.budgets import BudgetEngine
from orchestrator.errors import BudgetExceededError
from taskgate.rate_limit_tiers import BUILT_IN_TIERS
from tests.integration.store_fixtures import Owner
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run
from tests.integration.store_fixtures import start_task

pytestmark = pytest.mark.integration


class CountedReads:
    """The store's budget read, counted (``BudgetEngine`` asks nothing else of the store here)."""

    def __init__(self, store) -> None:
        self.store = store
        self.reads = 0

    async def budget_usage(self, *args):
        self.reads += 1
        return await self.store.budget_usage(*args)


def test_a_key_without_budgets_is_read_once_and_a_key_with_them_at_every_submission(database_url):
    async def scenario(store):
        user = await store.create_user("reads@example.com", "reads")
        plain = await store.create_api_key(user, NewApiKey("plain", "pfx-plain", "hash-plain"))
        capped = await store.create_api_key(
            user, NewApiKey("capped", "pfx-capped", "hash-capped", tokens_per_minute=10)
        )
        counted = CountedReads(store)
        budgets = BudgetEngine(counted, BUILT_IN_TIERS)  # no tier has a budget
        by_plain = Caller(user.id, user.tenant_id, api_key_id=plain.id)
        by_capped = Caller(user.id, user.tenant_id, api_key_id=capped.id)

        for _ in range(3):
            await budgets.admit(by_plain)
        assert counted.reads == 1
        for _ in range(3):
            await budgets.admit(by_capped)
        assert counted.reads == 4
        # The same key id with another user is read on its own (it names no key of theirs).
        await budgets.admit(Caller("someone-else", user.tenant_id, api_key_id=plain.id))
        assert counted.reads == 5

        # The capped key's budget still binds once its usage is recorded.
        task = new_task("spent", Owner(user.id, user.tenant_id))
        task = dataclasses.replace(task, api_key_id=capped.id)
        claimed = await start_task(store, task)
        outcome = TaskOutcome(TaskStatus.COMPLETED, "done", "", TokenUsage(20, 0, 0.0))
        assert await store.finish_task(task.task_id, claimed.claim, outcome, ()) is not None
        with pytest.raises(BudgetExceededError):
            await budgets.admit(by_capped)
        await budgets.admit(by_plain)
        assert counted.reads == 6

    run(database_url, scenario)
