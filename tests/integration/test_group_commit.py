"""Group commit of events on both databases: batches keep seqs, fencing and errors per task.

Events of many running tasks are written together (``orchestrator/store/group_commit.py``), and
each recorder publishes its event only once its batch has committed. These tests drive real
recorders over a real store: many tasks emitting at once keep gap-free ordered seqs, a step whose
claim was lost fails that task alone, a seq already taken fails that event alone, and a database
outage fails every waiter of the batch with the error a single write gets, publishing none of it.
"""

import asyncio

import pytest

from orchestrator import events
from orchestrator.bus import InProcessEventBus
from orchestrator.domain.tasks import Checkpoint
from orchestrator.engine.recorder import ClaimLost
from orchestrator.engine.recorder import EventRecorder
from orchestrator.errors import UnavailableError
from orchestrator.events import Event
from orchestrator.store import group_commit
from orchestrator.store import open_store
from tests.integration.servers import ServerUnavailableError
from tests.integration.servers import start_postgres
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import event
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run

pytestmark = pytest.mark.integration

TASKS = 24
EVENTS_EACH = 30


class RecordingBus(InProcessEventBus):
    """The in-process bus, keeping every event published, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.published.append(event)
        await super().publish(event)


@pytest.fixture()
def batch_sizes(monkeypatch) -> list[int]:
    """The number of items of every batch the group commit writes."""
    sizes: list[int] = []
    write = group_commit._write

    def counted(transaction, dialect, batch):
        sizes.append(len(batch))
        return write(transaction, dialect, batch)

    monkeypatch.setattr(group_commit, "_write", counted)
    return sizes


async def claimed_tasks(store, count: int):
    for number in range(count):
        await store.create_task(new_task(f"task-{number:02d}", session_id=f"session-{number:02d}"))
    claimed = await store.claim_tasks("worker-1", 60.0, count)
    assert len(claimed) == count
    return sorted(claimed, key=lambda task: task.task_id)


def test_many_tasks_emitting_at_once_keep_gap_free_ordered_seqs(database_url, batch_sizes):
    bus = RecordingBus()

    async def emit_all(store, task):
        recorder = await EventRecorder.resume(store, bus, task.task_id, task.claim)
        for step in range(1, EVENTS_EACH + 1):
            if step % 3 == 0:  # plain events between the steps
                await recorder.emit(events.LLM_PARTIAL, f"delta {step}", {"step": step})
            else:
                await recorder.emit(
                    events.AGENT_THINKING, f"step {step}", checkpoint=Checkpoint({"step": step}, 0.1)
                )

    async def scenario(store):
        tasks = await claimed_tasks(store, TASKS)
        await asyncio.gather(*(emit_all(store, task) for task in tasks))
        for task in tasks:
            stored = await store.list_events(task.task_id)
            assert [e.seq for e in stored] == list(range(1, EVENTS_EACH + 1))
            assert [e.message for e in stored][:3] == ["step 1", "step 2", "delta 3"]
            published = [e for e in bus.published if e.workflow_id == task.task_id]
            assert published == stored
            saved = await store.last_checkpoint(task.task_id)
            assert (saved.seq, saved.state) == (EVENTS_EACH - 1, {"step": EVENTS_EACH - 1})

    run(database_url, scenario)
    # The events of the tasks went in shared transactions, not one each.
    assert sum(batch_sizes) == TASKS * EVENTS_EACH
    assert len(batch_sizes) < TASKS * EVENTS_EACH / 4


def test_a_lost_claim_in_a_batch_fails_only_its_task(database_url, batch_sizes):
    bus = RecordingBus()

    async def scenario(store):
        lost, kept, other = await claimed_tasks(store, 3)
        # Another worker takes the first task over once its lease has expired.
        await store.renew_leases("worker-1", [lost.task_id], -1)
        taken = await store.take_over_expired_leases("worker-2", 60.0, 10)
        assert [task.task_id for task in taken] == [lost.task_id]
        recorders = [
            await EventRecorder.resume(store, bus, task.task_id, task.claim) for task in (lost, kept, other)
        ]

        outcomes = await asyncio.gather(
            *(
                recorder.emit(events.AGENT_STARTED, "started", checkpoint=Checkpoint({"step": 1}, 0.0))
                for recorder in recorders
            ),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], ClaimLost)
        assert [e.seq for e in outcomes[1:]] == [1, 1]
        assert await store.list_events(lost.task_id) == []
        assert [len(await store.list_events(task.task_id)) for task in (kept, other)] == [1, 1]
        assert sorted(e.workflow_id for e in bus.published) == [kept.task_id, other.task_id]
        # The lost run recorded nothing; its next step is refused too, the others go on.
        with pytest.raises(ClaimLost):
            await recorders[0].emit(events.AGENT_THINKING, checkpoint=Checkpoint({"step": 2}, 0.0))
        assert (
            await recorders[1].emit(events.AGENT_THINKING, checkpoint=Checkpoint({"step": 2}, 0.0))
        ).seq == 2

    run(database_url, scenario)
    assert batch_sizes[0] == 3


def test_a_seq_already_taken_fails_only_that_event_of_its_batch(database_url, batch_sizes):
    async def scenario(store):
        tasks = await claimed_tasks(store, 3)
        await store.append_event(event(tasks[0].task_id, 1, message="first"))
        outcomes = await asyncio.gather(
            store.append_event(event(tasks[0].task_id, 1, message="again")),
            store.append_event(event(tasks[1].task_id, 1)),
            store.record_step(event(tasks[2].task_id, 1), tasks[2].claim, Checkpoint({"step": 1}, 0.0)),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], Exception)
        assert outcomes[1:] == [None, True]
        assert [e.message for e in await store.list_events(tasks[0].task_id)] == ["first"]
        assert [len(await store.list_events(task.task_id)) for task in tasks[1:]] == [1, 1]

    run(database_url, scenario)
    # The batch of three failed as a whole, then each of its events was written on its own.
    assert batch_sizes[1:] == [3, 1, 1, 1]


@pytest.fixture()
def own_postgres():
    """A PostgreSQL cluster of this test's own, which it may stop and start."""
    try:
        server = start_postgres()
    except ServerUnavailableError as ex:
        pytest.skip(str(ex))
    yield server
    server.stop()


def test_a_database_outage_fails_every_waiter_of_the_batch_and_publishes_none_of_it(
    own_postgres, batch_sizes
):
    bus = RecordingBus()
    url = own_postgres.create_database()

    async def scenario():
        store = await open_store(url)
        try:
            await store.migrate()
            tasks = await claimed_tasks(store, 4)
            recorders = [await EventRecorder.resume(store, bus, task.task_id, task.claim) for task in tasks]
            own_postgres.halt()
            outcomes = await asyncio.gather(
                recorders[0].emit(events.WORKFLOW_STARTED, "started"),
                *(
                    recorder.emit(events.AGENT_STARTED, "started", checkpoint=Checkpoint({"step": 1}, 0.0))
                    for recorder in recorders[1:]
                ),
                return_exceptions=True,
            )
            # The error a single write gets while the database is away, for each waiter.
            assert all(isinstance(outcome, UnavailableError) for outcome in outcomes), outcomes
            assert bus.published == []
            assert [recorder.last_seq for recorder in recorders] == [0, 0, 0, 0]

            own_postgres.start()
            # Nothing of the failed batch was stored; the recorders go on from where they were.
            for task in tasks:
                assert await store.list_events(task.task_id) == []
            again = await asyncio.gather(
                *(recorder.emit(events.WORKFLOW_STARTED, "started") for recorder in recorders)
            )
            assert [e.seq for e in again] == [1, 1, 1, 1]
            assert [e.seq for e in bus.published] == [1, 1, 1, 1]
        finally:
            await store.close()

    asyncio.run(scenario())
    assert batch_sizes[0] == 4
