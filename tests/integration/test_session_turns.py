"""A session's concurrent turns (``multitask_strategy``) through real gRPC: each strategy on one
replica (SQLite and PostgreSQL) and across two replicas (PostgreSQL and Redis, one a real process).

enqueue: the new turn runs after the active one, seeing its answer. reject: refused while a turn is
active. interrupt: the active turns are cancelled, keeping their events, and the new one runs after
them. rollback: the same, and the cancelled turns leave the session's history.
"""

import asyncio
import contextlib
import dataclasses

import psycopg
import pytest

from orchestrator.domain.turns import INTERRUPTED_REASON
from orchestrator.domain.turns import ROLLED_BACK_REASON
from orchestrator.errors import SessionBusyError
from orchestrator.settings import OrchestratorSettings
from taskgate.orchestrator.v1.common_pb2 import TASK_STATUS_CANCELLED
from taskgate.orchestrator.v1.common_pb2 import TASK_STATUS_COMPLETED
from taskgate.orchestrator.v1.common_pb2 import TASK_STATUS_RUNNING
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.turn_client import ENDLESS_STEP_SECONDS
from tests.integration.turn_client import TaskClient
from tests.integration.turn_client import new_api_key
from tests.integration.turn_client import serving
from tests.integration.turn_client import settings_for

pytestmark = pytest.mark.integration

EMAIL = "turns@example.com"
# Long enough for a turn submitted to the other replica to find this one still running.
SLOW_STEP_SECONDS = 0.3


def on_one_replica(database_url: str, scenario) -> None:
    """Run a scenario with a client of an orchestrator serving in this process."""

    async def main() -> None:
        async with serving(settings_for(database_url)) as orchestrator:
            _, key = await new_api_key(orchestrator, EMAIL)
            address = f"127.0.0.1:{orchestrator.grpc_port}"
            client = TaskClient.connect(address, key)
            try:
                await scenario(client, orchestrator)
            finally:
                await client.close()

    asyncio.run(main())


async def wait_for_watchers(orchestrator, count: int) -> None:
    """Wait until this many streams follow events on the orchestrator's bus."""
    while orchestrator.bus.watcher_count() < count:
        await asyncio.sleep(0.01)


def test_enqueue_runs_each_turn_after_the_one_before_seeing_its_answer(database_url):
    async def scenario(client, orchestrator):
        first = await client.submit("What is 2+2?", step_seconds=0.05)
        second = await client.submit("And doubled?", session_id=first.session_id)
        third = await client.submit("And tripled?", session_id=first.session_id, strategy="enqueue")
        turns = [await client.wait_for(turn.task_id) for turn in (first, second, third)]

        assert [turn.status for turn in turns] == [TASK_STATUS_COMPLETED] * 3
        assert await client.ran_after(second.task_id, first.task_id)
        assert await client.ran_after(third.task_id, second.task_id)
        assert [await client.history_turns(turn.task_id) for turn in turns] == [0, 1, 2]

    on_one_replica(database_url, scenario)


def test_reject_refuses_a_turn_while_the_session_has_one_running(database_url):
    async def scenario(client, orchestrator):
        first = await client.submit("Plan the trip", step_seconds=ENDLESS_STEP_SECONDS)
        await client.wait_for(first.task_id, TASK_STATUS_RUNNING)

        with pytest.raises(SessionBusyError):
            await client.submit("Book it", session_id=first.session_id, strategy="reject")
        assert await client.session_task_count(first.session_id) == 1

        await client.cancel(first.task_id)
        await client.wait_for(first.task_id)
        accepted = await client.submit("Book it", session_id=first.session_id, strategy="reject")
        assert (await client.wait_for(accepted.task_id)).status == TASK_STATUS_COMPLETED

    on_one_replica(database_url, scenario)


def test_interrupt_cancels_the_running_and_waiting_turns_and_runs_after_them(database_url):
    async def scenario(client, orchestrator):
        running = await client.submit("Plan the trip", step_seconds=ENDLESS_STEP_SECONDS)
        await client.wait_for(running.task_id, TASK_STATUS_RUNNING)
        waiting = await client.submit("Then book it", session_id=running.session_id)
        streams = asyncio.gather(client.follow(running.task_id), client.follow(waiting.task_id))
        await wait_for_watchers(orchestrator, 2)

        newer = await client.submit(
            "Plan a shorter trip", session_id=running.session_id, strategy="interrupt"
        )

        assert (await client.wait_for(newer.task_id)).status == TASK_STATUS_COMPLETED
        running_types, waiting_types = await streams
        # The running turn keeps what it did; the waiting one never started.
        assert running_types[0] == "WORKFLOW_STARTED"
        assert running_types[-2:] == ["WORKFLOW_CANCELLED", "STREAM_END"]
        assert waiting_types == ["WORKFLOW_CANCELLED", "STREAM_END"]
        for task_id in (running.task_id, waiting.task_id):
            assert (await client.task(task_id)).status == TASK_STATUS_CANCELLED
            assert await client.cancel_reason(task_id) == INTERRUPTED_REASON
        assert await client.ran_after(newer.task_id, running.task_id)
        assert await client.history_turns(newer.task_id) == 0

    on_one_replica(database_url, scenario)


def test_rollback_cancels_the_running_turn_and_removes_it_from_the_history(database_url):
    async def scenario(client, orchestrator):
        kept = await client.submit("What is 2+2?")
        await client.wait_for(kept.task_id)
        rolled = await client.submit(
            "And doubled?", session_id=kept.session_id, step_seconds=ENDLESS_STEP_SECONDS
        )
        await client.wait_for(rolled.task_id, TASK_STATUS_RUNNING)

        newer = await client.submit("And tripled?", session_id=kept.session_id, strategy="rollback")

        assert (await client.wait_for(newer.task_id)).status == TASK_STATUS_COMPLETED
        assert (await client.task(rolled.task_id)).status == TASK_STATUS_CANCELLED
        assert await client.cancel_reason(rolled.task_id) == ROLLED_BACK_REASON
        assert await client.session_history(kept.session_id) == [kept.task_id, newer.task_id]
        assert await client.session_task_count(kept.session_id) == 2
        assert await client.history_turns(newer.task_id) == 1
        assert await client.ran_after(newer.task_id, rolled.task_id)

    on_one_replica(database_url, scenario)


# Across two replicas: r1 a real orchestrator process, r2 one serving in this process, both on one
# PostgreSQL database and one Redis. Each turn that must be running somewhere else is started on
# r1 before r2 starts, and the strategy-bearing turn goes to r2.


@dataclasses.dataclass
class FirstReplica:
    """The real process ``r1``, its environment, and a user's API key."""

    process: Orchestrator
    env: dict
    api_key: str

    def claimed_by(self, task_id: str) -> str:
        """Return the worker that claimed a task last (a column the API does not show)."""
        with psycopg.connect(self.env["TASKGATE_DATABASE_URL"]) as connection:
            row = connection.execute("SELECT claimed_by FROM tasks WHERE task_id = %s", (task_id,)).fetchone()
        return row[0] or ""


@pytest.fixture(scope="module")
def first_replica(tmp_path_factory, postgres_server, redis_server):
    """Start ``r1`` on a new database and the session's Redis; stop it after the module."""
    tmp = tmp_path_factory.mktemp("replica-r1")
    env = base_env(
        tmp,
        TASKGATE_DATABASE_URL=postgres_server.create_database(),
        TASKGATE_REDIS_URL=redis_server.url,
        TASKGATE_REPLICA_ID="r1",
        TASKGATE_WORKER_CONCURRENCY="2",
    )
    process = Orchestrator(
        env=env,
        grpc_addr=env["TASKGATE_GRPC_ADDR"],
        admin_url=env["TASKGATE_ADMIN_URL"],
        log_path=tmp / "orchestrator-r1.log",
    ).start()
    try:
        yield FirstReplica(process, env, create_api_key(env, EMAIL))
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def second_replica(first: FirstReplica):
    """Serve ``r2`` in this process on r1's database and Redis; yield clients of r1 and of r2."""
    settings = OrchestratorSettings.from_env({**first.env, "TASKGATE_REPLICA_ID": "r2"})
    settings = dataclasses.replace(settings, grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0")
    async with serving(settings) as orchestrator:
        on_r1 = TaskClient.connect(first.process.grpc_addr, first.api_key)
        on_r2 = TaskClient.connect(f"127.0.0.1:{orchestrator.grpc_port}", first.api_key)
        try:
            yield on_r1, on_r2
        finally:
            await on_r1.close()
            await on_r2.close()


async def on_first(first: FirstReplica, query: str, session_id: str = "", step_seconds: float = 0, *statuses):
    """Submit a turn to r1 before r2 serves, and wait until it has one of ``statuses`` (default: ended)."""
    client = TaskClient.connect(first.process.grpc_addr, first.api_key)
    try:
        turn = await client.submit(query, session_id=session_id, step_seconds=step_seconds)
        await client.wait_for(turn.task_id, *statuses)
    finally:
        await client.close()
    assert first.claimed_by(turn.task_id).startswith("r1:")
    return turn


async def running_on_first(first: FirstReplica, query: str, session_id: str = "", step_seconds: float = 0):
    """Submit a turn to r1 before r2 serves, and wait until r1 runs it."""
    return await on_first(first, query, session_id, step_seconds, TASK_STATUS_RUNNING)


def test_enqueue_holds_across_replicas(first_replica):
    async def scenario():
        first = await running_on_first(first_replica, "What is 2+2?", step_seconds=SLOW_STEP_SECONDS)
        async with second_replica(first_replica) as (on_r1, on_r2):
            # r2 has free workers, yet the turn waits for r1's.
            second = await on_r2.submit("And doubled?", session_id=first.session_id)
            assert (await on_r2.wait_for(second.task_id)).status == TASK_STATUS_COMPLETED
            assert (await on_r1.task(first.task_id)).status == TASK_STATUS_COMPLETED
            assert await on_r2.ran_after(second.task_id, first.task_id)
            assert await on_r2.history_turns(second.task_id) == 1

    asyncio.run(scenario())


def test_reject_holds_across_replicas(first_replica):
    async def scenario():
        first = await running_on_first(first_replica, "Plan the trip", step_seconds=ENDLESS_STEP_SECONDS)
        async with second_replica(first_replica) as (on_r1, on_r2):
            with pytest.raises(SessionBusyError):
                await on_r2.submit("Book it", session_id=first.session_id, strategy="reject")
            await on_r2.cancel(first.task_id)
            assert (await on_r1.wait_for(first.task_id)).status == TASK_STATUS_CANCELLED
            accepted = await on_r2.submit("Book it", session_id=first.session_id, strategy="reject")
            assert (await on_r2.wait_for(accepted.task_id)).status == TASK_STATUS_COMPLETED

    asyncio.run(scenario())


def test_interrupt_holds_across_replicas(first_replica):
    async def scenario():
        first = await running_on_first(first_replica, "Plan the trip", step_seconds=ENDLESS_STEP_SECONDS)
        async with second_replica(first_replica) as (on_r1, on_r2):
            newer = await on_r2.submit(
                "Plan a shorter trip", session_id=first.session_id, strategy="interrupt"
            )
            assert (await on_r2.wait_for(newer.task_id)).status == TASK_STATUS_COMPLETED
            # r1's runner was told through Redis and stopped; its events stay.
            assert (await on_r1.wait_for(first.task_id)).status == TASK_STATUS_CANCELLED
            assert await on_r1.cancel_reason(first.task_id) == INTERRUPTED_REASON
            types = [event.type for event in await on_r1.events(first.task_id)]
            assert types[0] == "WORKFLOW_STARTED" and types[-2:] == ["WORKFLOW_CANCELLED", "STREAM_END"]
            assert await on_r2.ran_after(newer.task_id, first.task_id)

    asyncio.run(scenario())


def test_rollback_holds_across_replicas(first_replica):
    async def scenario():
        kept = await on_first(first_replica, "What is 2+2?")
        rolled = await running_on_first(
            first_replica, "And doubled?", session_id=kept.session_id, step_seconds=ENDLESS_STEP_SECONDS
        )
        async with second_replica(first_replica) as (on_r1, on_r2):
            newer = await on_r2.submit("And tripled?", session_id=kept.session_id, strategy="rollback")
            assert (await on_r2.wait_for(newer.task_id)).status == TASK_STATUS_COMPLETED
            assert (await on_r1.wait_for(rolled.task_id)).status == TASK_STATUS_CANCELLED
            assert await on_r1.session_history(kept.session_id) == [kept.task_id, newer.task_id]
            assert await on_r2.history_turns(newer.task_id) == 1

    asyncio.run(scenario())
