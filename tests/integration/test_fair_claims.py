"""Fair claims through real gRPC, on SQLite and PostgreSQL: one user's backlog does not hold back
another user's first task by more than one claim, and the per-user cap keeps slots for others.
"""

import asyncio

import pytest

from taskgate.orchestrator.v1.common_pb2 import TASK_STATUS_QUEUED
from taskgate.orchestrator.v1.common_pb2 import TASK_STATUS_RUNNING
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.turn_client import ENDLESS_STEP_SECONDS
from tests.integration.turn_client import TaskClient
from tests.integration.turn_client import new_api_key
from tests.integration.turn_client import serving
from tests.integration.turn_client import settings_for

pytestmark = pytest.mark.integration

BACKLOG = 200


def users_of(database_url: str, scenario, **settings) -> None:
    """Run a scenario with two users' clients of an orchestrator serving in this process (2 workers)."""

    async def main() -> None:
        async with serving(settings_for(database_url, **settings)) as orchestrator:
            address = f"127.0.0.1:{orchestrator.grpc_port}"
            clients = []
            for email in ("a@example.com", "b@example.com"):
                _, key = await new_api_key(orchestrator, email)
                clients.append(TaskClient.connect(address, key))
            try:
                await scenario(*clients)
            finally:
                # The tasks still running are handed back at once rather than run to their end.
                await orchestrator.pool.stop()
                for client in clients:
                    await client.close()

    asyncio.run(main())


def test_a_users_first_task_is_claimed_before_more_of_another_users_backlog(database_url):
    async def scenario(alice, bob):
        backlog = [
            await alice.submit(f"What is {n}+1?", step_seconds=ENDLESS_STEP_SECONDS) for n in range(BACKLOG)
        ]
        # Both workers run Alice's oldest tasks, and will until one of them is cancelled.
        for task in backlog[:2]:
            await alice.wait_for(task.task_id, TASK_STATUS_RUNNING)
        first_of_bob = await bob.submit("What is 1+1?", step_seconds=ENDLESS_STEP_SECONDS)

        await alice.cancel(backlog[0].task_id)

        # The one slot freed goes to Bob, not to the next of Alice's 198 queued tasks.
        await bob.wait_for(first_of_bob.task_id, TASK_STATUS_RUNNING)
        assert await alice.with_status(TASK_STATUS_RUNNING) == (1, [backlog[1].task_id])
        assert (await alice.with_status(TASK_STATUS_QUEUED))[0] == BACKLOG - 2

    users_of(database_url, scenario)


def test_a_user_at_the_cap_leaves_the_other_slots_to_others(database_url):
    async def scenario(alice, bob):
        backlog = [await alice.submit(f"What is {n}+1?", step_seconds=ENDLESS_STEP_SECONDS) for n in range(4)]
        await alice.wait_for(backlog[0].task_id, TASK_STATUS_RUNNING)
        first_of_bob = await bob.submit("What is 1+1?", step_seconds=ENDLESS_STEP_SECONDS)

        # A second worker is free all along, but Alice holds her one running task.
        await bob.wait_for(first_of_bob.task_id, TASK_STATUS_RUNNING)
        assert await alice.with_status(TASK_STATUS_RUNNING) == (1, [backlog[0].task_id])
        assert (await alice.with_status(TASK_STATUS_QUEUED))[0] == 3

    users_of(database_url, scenario, max_running_per_user=1)
