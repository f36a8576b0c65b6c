"""A stored schedule whose next run cannot be computed: paused once, logged once, never fired or looped."""

import asyncio
import dataclasses
import datetime
import logging

import pytest

from orchestrator.engine.schedules import UNCOMPUTABLE_REASON
from orchestrator.engine.schedules import ScheduleDraft
from orchestrator.errors import InvalidArgumentError
from tests.unit.orchestrator.test_schedule_engine import ALICE
from tests.unit.orchestrator.test_schedule_engine import DRAFT
from tests.unit.orchestrator.test_schedule_engine import START
from tests.unit.orchestrator.test_schedule_engine import Clock
from tests.unit.orchestrator.test_schedule_engine import engine_of
from tests.unit.orchestrator.test_schedule_engine import open_store


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        # An expression an earlier version stored: it passed as hourly, then fired at random minutes.
        ("R * * * *", "'R' in the minute field"),
        # No such date: croniter accepts it but finds no tick.
        ("0 0 30 2 *", "matches no date"),
    ],
)
def test_a_due_schedule_that_cannot_compute_its_next_run_is_paused_once(tmp_path, caplog, stored, why):
    async def scenario():
        store = await open_store(tmp_path)
        clock = Clock(START)
        engine = engine_of(store, clock)
        created = await engine.create(ALICE, DRAFT)
        # Stored as it is, past today's checks, as an earlier version or a hand edit could have.
        assert await store.save_schedule(
            dataclasses.replace(created, cron_expression=stored), created.next_run_at
        )
        clock.now = START + datetime.timedelta(minutes=5)
        with caplog.at_level(logging.ERROR, logger="orchestrator.engine.schedules"):
            fired = [await engine.fire_due() for _ in range(3)]
        paused = await engine.get(ALICE, created.schedule_id)
        _, runs = await store.list_schedule_runs(created.schedule_id, 10, 0)
        with pytest.raises(InvalidArgumentError) as refused:
            await engine.resume(ALICE, created.schedule_id, "")
        await engine.update(ALICE, created.schedule_id, ScheduleDraft(cron_expression="*/10 * * * *"))
        resumed = await engine.resume(ALICE, created.schedule_id, "fixed")
        await store.close()
        return fired, paused, runs, refused.value, resumed

    fired, paused, runs, refused, resumed = asyncio.run(scenario())
    assert fired == [0, 0, 0]
    assert runs == 0
    assert (paused.status, paused.next_run_at, paused.paused_at) == (
        "PAUSED",
        None,
        START + datetime.timedelta(minutes=5),
    )
    assert paused.pause_reason.startswith(f"{UNCOMPUTABLE_REASON}: cron_expression")
    assert why in paused.pause_reason
    assert [record.getMessage() for record in caplog.records] == [
        "schedule paused: its next run cannot be computed"
    ]
    assert (refused.field, why in refused.public_message) == ("cron_expression", True)
    assert (resumed.status, resumed.next_run_at) == ("ACTIVE", START + datetime.timedelta(minutes=10))
