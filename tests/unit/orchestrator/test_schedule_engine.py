"""The schedule engine on a real SQLite store: firing exactly once, missed runs, pause, trigger, limits."""

import asyncio
import datetime

import pytest

from orchestrator.caller import Caller
from orchestrator.domain.tasks import TaskFilter
from orchestrator.engine.schedules import ScheduleDraft
from orchestrator.engine.schedules import ScheduleEngine
from orchestrator.engine.schedules import run_task
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import ScheduleNotFoundError
from orchestrator.store import open_store as open_sql_store
from orchestrator.store import sqlite_database
from orchestrator.store.base import Store
from orchestrator.store.dialect import encode_text_time
from orchestrator.store.migrations import load_migrations

ALICE = Caller("user-alice", "tenant-a")
BOB = Caller("user-bob", "tenant-b")
START = datetime.datetime(2026, 1, 1, 10, 0, 0, tzinfo=datetime.UTC)
DRAFT = ScheduleDraft(name="Every minute", cron_expression="* * * * *", task_query="Summarise the news")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime.datetime) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


async def open_store(tmp_path) -> Store:
    store = await open_sql_store(f"sqlite:///{tmp_path}/taskgate.db")
    await store.migrate()
    return store


def engine_of(store, clock, max_per_user: int = 50) -> ScheduleEngine:
    return ScheduleEngine(store, lambda: None, 60, max_per_user, clock=clock)


def test_a_due_run_fires_exactly_once_however_many_engines_look_at_once(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        clock = Clock(START)
        engines = [engine_of(store, clock) for _ in range(4)]
        schedule = await engines[0].create(ALICE, DRAFT)
        fired = []
        for minute in range(1, 6):
            clock.now = START + datetime.timedelta(minutes=minute, seconds=1)
            fired.append(sum(await asyncio.gather(*(engine.fire_due() for engine in engines))))
        runs, total = await store.list_schedule_runs(schedule.schedule_id, 100, 0)
        after = await engines[0].get(ALICE, schedule.schedule_id)
        await store.close()
        return fired, runs, total, after

    fired, runs, total, after = asyncio.run(scenario())
    assert fired == [1, 1, 1, 1, 1]
    assert total == 5
    assert sorted(run.scheduled_for.minute for run in runs) == [1, 2, 3, 4, 5]
    assert all(run.task is not None and run.task.user_id == ALICE.user_id for run in runs)
    assert after.total_runs == 5
    assert after.next_run_at == START + datetime.timedelta(minutes=6)


def test_a_run_missed_by_many_ticks_fires_once_then_waits_for_the_next_future_tick(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        clock = Clock(START)
        engine = engine_of(store, clock)
        schedule = await engine.create(ALICE, DRAFT)
        clock.now = START + datetime.timedelta(minutes=30, seconds=20)
        first = await engine.fire_due()
        second = await engine.fire_due()
        after = await engine.get(ALICE, schedule.schedule_id)
        await store.close()
        return first, second, after

    first, second, after = asyncio.run(scenario())
    assert (first, second) == (1, 0)
    assert after.total_runs == 1
    assert after.next_run_at == START + datetime.timedelta(minutes=31)


def test_a_paused_schedule_does_not_fire_and_resumes_from_now(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        clock = Clock(START)
        engine = engine_of(store, clock)
        schedule = await engine.create(ALICE, DRAFT)
        paused = await engine.pause(ALICE, schedule.schedule_id, "holiday")
        clock.now = START + datetime.timedelta(minutes=10, seconds=5)
        fired = await engine.fire_due()
        resumed = await engine.resume(ALICE, schedule.schedule_id, "")
        await store.close()
        return paused, fired, resumed

    paused, fired, resumed = asyncio.run(scenario())
    assert (paused.status, paused.next_run_at, paused.pause_reason) == ("PAUSED", None, "holiday")
    assert fired == 0
    assert resumed.status == "ACTIVE"
    assert resumed.next_run_at == START + datetime.timedelta(minutes=11)
    assert resumed.paused_at is None


def test_trigger_runs_now_without_moving_the_next_run(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        engine = engine_of(store, Clock(START))
        schedule = await engine.create(ALICE, DRAFT)
        task_id = await engine.trigger(ALICE, schedule.schedule_id)
        after = await engine.get(ALICE, schedule.schedule_id)
        runs, _ = await engine.runs(ALICE, schedule.schedule_id, 10, 0)
        await store.close()
        return schedule, task_id, after, runs

    schedule, task_id, after, runs = asyncio.run(scenario())
    assert after.next_run_at == schedule.next_run_at
    assert [run.task_id for run in runs] == [task_id]
    assert runs[0].manual and runs[0].task.query == "Summarise the news"


def test_another_users_schedule_is_not_found_everywhere(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        engine = engine_of(store, Clock(START))
        schedule = await engine.create(ALICE, DRAFT)
        calls = [
            engine.get(BOB, schedule.schedule_id),
            engine.update(BOB, schedule.schedule_id, ScheduleDraft(name="mine")),
            engine.pause(BOB, schedule.schedule_id, ""),
            engine.resume(BOB, schedule.schedule_id, ""),
            engine.trigger(BOB, schedule.schedule_id),
            engine.delete(BOB, schedule.schedule_id),
            engine.runs(BOB, schedule.schedule_id, 10, 0),
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        listed = await engine.list_schedules(BOB, None, 10, 0)
        still = await engine.get(ALICE, schedule.schedule_id)
        await store.close()
        return outcomes, listed, still

    outcomes, listed, still = asyncio.run(scenario())
    assert all(isinstance(outcome, ScheduleNotFoundError) for outcome in outcomes)
    assert listed == ([], 0)
    assert still.name == "Every minute"


def test_the_per_user_cap_and_the_field_rules(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        engine = engine_of(store, Clock(START), max_per_user=2)
        await engine.create(ALICE, DRAFT)
        await engine.create(ALICE, DRAFT)
        errors = []
        for draft in (
            DRAFT,
            ScheduleDraft(name="x", cron_expression="nope", task_query="q"),
            ScheduleDraft(name="x", cron_expression="* * * * * *", task_query="q"),
            ScheduleDraft(name="x", cron_expression="* * * * *", timezone="Nowhere/City", task_query="q"),
            ScheduleDraft(name="x", cron_expression="* * * * *", task_query=" "),
            ScheduleDraft(name="x", cron_expression="* * * * *", task_query="q", task_context_json="[1]"),
        ):
            try:
                await engine.create(BOB if draft is not DRAFT else ALICE, draft)
            except InvalidArgumentError as ex:
                errors.append(ex.field)
        await store.close()
        return errors

    assert asyncio.run(scenario()) == [
        "schedules",
        "cron_expression",
        "cron_expression",
        "timezone",
        "task_query",
        "task_context",
    ]


def test_migration_0006_applies_before_0005_and_0005_still_applies_when_it_arrives(tmp_path, monkeypatch):
    everything = load_migrations("sqlite")
    # As a database that had 0006 but not 0005 had nothing later either.
    without_5 = [migration for migration in everything if migration.version != 5 and migration.version <= 6]

    async def scenario():
        store = await open_sql_store(f"sqlite:///{tmp_path}/taskgate.db")
        monkeypatch.setattr(sqlite_database, "load_migrations", lambda dialect: without_5)
        first = await store.migrate()
        monkeypatch.setattr(sqlite_database, "load_migrations", lambda dialect: everything)
        second = await store.migrate()
        third = await store.migrate()
        await store.close()
        return first, second, third

    first, second, third = asyncio.run(scenario())
    assert 6 in first and 5 not in first
    assert second == [m.version for m in everything if m.version == 5 or m.version > 6]
    assert third == []


@pytest.mark.parametrize("field", ["cron_expression", "timezone"])
def test_changing_the_timing_recomputes_the_next_run(tmp_path, field):
    async def scenario():
        store = await open_store(tmp_path)
        engine = engine_of(store, Clock(START))
        schedule = await engine.create(
            ALICE, ScheduleDraft(name="n", cron_expression="0 9 * * *", task_query="q")
        )
        change = (
            {"cron_expression": "0 12 * * *"} if field == "cron_expression" else {"timezone": "Asia/Tokyo"}
        )
        updated = await engine.update(ALICE, schedule.schedule_id, ScheduleDraft(**change))
        await store.close()
        return schedule, updated

    schedule, updated = asyncio.run(scenario())
    assert schedule.next_run_at == datetime.datetime(2026, 1, 2, 9, tzinfo=datetime.UTC)
    expected = {
        "cron_expression": datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.UTC),
        "timezone": datetime.datetime(2026, 1, 2, 0, tzinfo=datetime.UTC),
    }[field]
    assert updated.next_run_at == expected


def test_a_run_an_earlier_version_claimed_but_never_stored_the_task_of_still_starts_once(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        clock = Clock(START)
        engine = engine_of(store, clock)
        schedule = await engine.create(ALICE, DRAFT)
        # A replica of a version before migration 0012 claimed the run, then stopped before it
        # stored the task (this version stores both at once, so only SQL writes such a run).
        await store.database.execute(
            "INSERT INTO schedule_runs (schedule_id, task_id, scheduled_for, triggered_at, manual)"
            " VALUES (?, ?, ?, ?, ?)",
            (schedule.schedule_id, "task-orphan", _stored(schedule.next_run_at), _stored(START), False),
        )
        clock.now = START + datetime.timedelta(seconds=10)
        too_soon = await engine.start_orphaned_runs()
        clock.now = START + datetime.timedelta(minutes=1)
        started = await engine.start_orphaned_runs()
        again = await engine.start_orphaned_runs()
        task = await store.get_task("task-orphan", ALICE.user_id)
        await store.close()
        return too_soon, started, again, task

    too_soon, started, again, task = asyncio.run(scenario())
    assert (too_soon, started, again) == (0, 1, 0)
    assert task is not None and task.query == "Summarise the news"


def test_a_fired_run_has_its_task_at_once_and_leaves_nothing_for_the_sweep(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        clock = Clock(START)
        engine = engine_of(store, clock)
        schedule = await engine.create(ALICE, DRAFT)
        clock.now = START + datetime.timedelta(minutes=1, seconds=1)
        fired = await engine.fire_due()
        manual = await engine.trigger(ALICE, schedule.schedule_id)
        runs, _ = await store.list_schedule_runs(schedule.schedule_id, 10, 0)
        clock.now = START + datetime.timedelta(days=1)
        swept = await engine.start_orphaned_runs()
        await store.close()
        return fired, manual, runs, swept

    fired, manual, runs, swept = asyncio.run(scenario())
    assert fired == 1 and swept == 0
    assert [run.task_id for run in runs][0] == manual
    assert [(run.task.status, run.task.query) for run in runs] == [("QUEUED", "Summarise the news")] * 2
    assert runs[0].task.session_id != runs[1].task.session_id


def test_a_run_whose_task_was_stored_but_not_marked_is_marked_and_not_started_again(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        clock = Clock(START)
        engine = engine_of(store, clock)
        schedule = await engine.create(ALICE, DRAFT)
        clock.now = START + datetime.timedelta(minutes=1, seconds=1)
        fired = await engine.fire_due()
        # Every run a replica started is marked, so the sweep has nothing to read.
        marked = await store.unconfirmed_schedule_runs(START + datetime.timedelta(days=1), 100)
        (run,), _ = await store.list_schedule_runs(schedule.schedule_id, 10, 0)
        # A replica that stopped between storing the task and marking its run.
        await store.database.execute(
            "UPDATE schedule_runs SET task_stored = 0 WHERE task_id = ?", (run.task_id,)
        )
        clock.now = START + datetime.timedelta(minutes=1, seconds=50)
        unmarked = await store.unconfirmed_schedule_runs(clock.now, 100)
        started = await engine.start_orphaned_runs()
        after = await store.unconfirmed_schedule_runs(clock.now, 100)
        _, total = await store.list_tasks(ALICE.user_id, TaskFilter(), 100, 0)
        await store.close()
        return fired, marked, unmarked, started, after, total

    fired, marked, unmarked, started, after, total = asyncio.run(scenario())
    assert fired == 1 and marked == []
    assert [run.task_stored for run in unmarked] == [True]
    assert started == 0 and after == []
    assert total == 1


def test_migration_0007_marks_the_runs_whose_task_is_stored(tmp_path, monkeypatch):
    everything = load_migrations("sqlite")
    before_7 = [migration for migration in everything if migration.version < 7]

    async def scenario():
        store = await open_sql_store(f"sqlite:///{tmp_path}/taskgate.db")
        monkeypatch.setattr(sqlite_database, "load_migrations", lambda dialect: before_7)
        await store.migrate()
        clock = Clock(START)
        engine = engine_of(store, clock)
        schedule = await engine.create(ALICE, DRAFT)
        # Runs as versions before 0007 stored them: one with its task (claimed, then stored), one
        # without (the claim alone).
        for minute, task_id in enumerate(("t-1", "t-2")):
            due = _stored(START + datetime.timedelta(minutes=minute))
            await store.database.execute(
                "INSERT INTO schedule_runs (schedule_id, task_id, scheduled_for, triggered_at, manual)"
                " VALUES (?, ?, ?, ?, ?)",
                (schedule.schedule_id, task_id, due, due, False),
            )
        # The task as those versions stored it (the code of today writes the schema of today).
        task = run_task(schedule, "t-1")
        now = _stored(START)
        await store.database.execute(
            "INSERT INTO sessions (id, user_id, tenant_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (task.session_id, task.user_id, task.tenant_id, now, now),
        )
        await store.database.execute(
            "INSERT INTO tasks (task_id, user_id, tenant_id, session_id, query, status, mode, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, 'QUEUED', ?, ?, ?)",
            (task.task_id, task.user_id, task.tenant_id, task.session_id, task.query, task.mode, now, now),
        )
        monkeypatch.setattr(sqlite_database, "load_migrations", lambda dialect: everything)
        applied = await store.migrate()
        unmarked = await store.unconfirmed_schedule_runs(START + datetime.timedelta(days=1), 100)
        await store.close()
        return applied, unmarked

    applied, unmarked = asyncio.run(scenario())
    assert 7 in applied
    assert [(run.task_id, run.task_stored) for run in unmarked] == [("t-2", False)]


def _stored(value: datetime.datetime) -> str:
    """Return a time as SQLite stores it."""
    return encode_text_time(value)
