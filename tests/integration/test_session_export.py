"""A session export written piece by piece from a real store (SQLite and PostgreSQL), and its bounds.

The export reads the session's tasks and events a page at a time and hands its JSON on in chunks;
a session past its bounds is refused before a piece, one that passes them only while being written
ends ``"complete": false``, and either way the pieces concatenate to one JSON document.
"""

import asyncio
import json

import pytest

from orchestrator import events
from orchestrator.caller import Caller
from orchestrator.engine.session_export import CHUNK_BYTES
from orchestrator.engine.session_export import ExportLimits
from orchestrator.engine.sessions import EXPORT_EVENT_PAGE
from orchestrator.engine.sessions import EXPORT_TASK_PAGE
from orchestrator.engine.sessions import SessionEngine
from orchestrator.errors import SessionNotFoundError
from orchestrator.errors import SessionTooLargeError
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import BOB
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import event
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run

pytestmark = pytest.mark.integration

SESSION = "big-session"
ALICE_CALLER = Caller(ALICE.user_id, ALICE.tenant_id)
BOB_CALLER = Caller(BOB.user_id, BOB.tenant_id)
# More tasks than one page, and a task with more events than one page.
TASKS = EXPORT_TASK_PAGE + 3
BUSY_TASK_EVENTS = EXPORT_EVENT_PAGE * 2 + 7


async def fill_session(store) -> None:
    """Store a session of ``TASKS`` tasks, the first with many events (and deltas the export leaves out)."""
    for number in range(TASKS):
        query = f"Question {number} é"
        await store.create_task(new_task(f"task-{number:03d}", session_id=SESSION, query=query))
    for seq in range(1, BUSY_TASK_EVENTS + 1):
        await store.append_event(event("task-000", seq, message="step " + "x" * 200))
    await store.append_event(event("task-000", BUSY_TASK_EVENTS + 1, events.LLM_PARTIAL, "delta"))
    await store.append_event(event("task-001", 1, message='quotes " and \\ and\nnew lines'))


async def collect(engine, caller, session_id=SESSION) -> list[str]:
    pieces = await engine.export(caller, session_id)
    return [piece async for piece in pieces]


def test_a_large_session_exports_completely_in_bounded_chunks(database_url):
    async def scenario(store):
        await fill_session(store)
        pieces = await collect(SessionEngine(store), ALICE_CALLER)

        document = json.loads("".join(pieces))
        assert document["complete"] is True
        assert list(document) == ["format", "exported_at", "session", "tasks", "complete"]
        assert (document["format"], document["session"]["session_id"]) == ("taskgate.session.v1", SESSION)
        assert document["session"]["task_count"] == TASKS
        assert [task["task_id"] for task in document["tasks"]] == [f"task-{n:03d}" for n in range(TASKS)]
        busy = document["tasks"][0]
        assert [e["seq"] for e in busy["events"]] == list(range(1, BUSY_TASK_EVENTS + 1))
        assert busy["query"] == "Question 0 é" and busy["events"][0]["payload"] == {"seq": 1}
        assert document["tasks"][1]["events"][0]["message"] == 'quotes " and \\ and\nnew lines'
        assert all(task["events"] == [] for task in document["tasks"][2:])
        # Handed on in chunks, none much past the chunk size (one event or task over it at most).
        assert len(pieces) > 1
        assert all(len(piece.encode()) < CHUNK_BYTES + 4096 for piece in pieces)

        # Bob's session of the same id is his own; a session nobody has is not found, as for Bob.
        await store.create_task(new_task("bobs", owner=BOB, session_id=SESSION))
        bobs = json.loads("".join(await collect(SessionEngine(store), BOB_CALLER)))
        assert [task["task_id"] for task in bobs["tasks"]] == ["bobs"]
        with pytest.raises(SessionNotFoundError):
            await SessionEngine(store).export(BOB_CALLER, "never-used")

    run(database_url, scenario)


def test_a_session_past_the_bounds_is_refused_before_any_piece(database_url):
    async def scenario(store):
        await fill_session(store)
        stored_events = BUSY_TASK_EVENTS + 1
        for limits in (ExportLimits(max_events=stored_events - 1), ExportLimits(max_bytes=50_000)):
            with pytest.raises(SessionTooLargeError):
                await SessionEngine(store, limits).export(ALICE_CALLER, SESSION)
        # Exactly at the event bound it is whole.
        at_bound = SessionEngine(store, ExportLimits(max_events=stored_events))
        whole = "".join(await collect(at_bound, ALICE_CALLER))
        assert json.loads(whole)["complete"] is True

    run(database_url, scenario)


def test_a_session_past_the_bytes_only_as_json_is_cut_and_still_parses(database_url):
    async def scenario(store):
        await fill_session(store)
        engine = SessionEngine(store)
        size, stored = await store.session_export_size(SESSION, ALICE.user_id, (events.LLM_PARTIAL,))
        whole = "".join(await collect(engine, ALICE_CALLER)).encode()
        # Between the stored text (the check before writing) and the JSON (names, quoting, times).
        limit = (stored + len(whole)) // 2
        pieces = await collect(SessionEngine(store, ExportLimits(max_bytes=limit)), ALICE_CALLER)
        text = "".join(pieces).encode()

        assert len(text) <= limit
        document = json.loads(text)
        assert document["complete"] is False
        assert list(document) == ["format", "exported_at", "session", "tasks", "complete"]
        cut = document["tasks"]
        # A prefix of the whole: every task but the last as it was, the last with a prefix of its events.
        complete = json.loads(whole)["tasks"]
        assert 0 < len(cut) <= len(complete)
        assert [task["task_id"] for task in cut] == [task["task_id"] for task in complete[: len(cut)]]
        assert cut[-1]["events"] == complete[len(cut) - 1]["events"][: len(cut[-1]["events"])]
        assert size == BUSY_TASK_EVENTS + 1

    run(database_url, scenario)


def test_an_export_stopped_early_reads_no_further(database_url):
    """A client that goes away closes the pieces; nothing more is read or held."""

    async def scenario(store):
        await fill_session(store)
        pieces = await SessionEngine(store).export(ALICE_CALLER, SESSION)
        first = await anext(pieces)
        await pieces.aclose()
        assert first.startswith('{"format":"taskgate.session.v1"')
        with pytest.raises(StopAsyncIteration):
            await anext(pieces)

    run(database_url, scenario)


def test_pieces_concatenate_to_the_same_document_on_each_database(database_url):
    """The export is deterministic for a session at rest: two exports differ only in their time."""

    async def scenario(store):
        await fill_session(store)
        first = json.loads("".join(await collect(SessionEngine(store), ALICE_CALLER)))
        await asyncio.sleep(0)
        second = json.loads("".join(await collect(SessionEngine(store), ALICE_CALLER)))
        first.pop("exported_at")
        second.pop("exported_at")
        assert first == second

    run(database_url, scenario)
