"""Schedules through the gateway, with real processes: every route, firing, pause, trigger, replicas.

The shared ``stack`` (SQLite, and PostgreSQL + Redis) runs with the default minimum interval (60 s)
and checks the routes and their errors. ``fast_stack`` runs one of each store with a 1-second
minimum interval and a quick scheduler poll, so per-second schedules actually fire in the test.
"""

import collections
import datetime
import re
import sqlite3
import time

import httpx
import psycopg
import pytest

from taskgate.rfc3339 import parse_datetime
from tests.integration.conftest import TERMINAL_STATUSES
from tests.integration.conftest import User
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
FAST_SETTINGS = {"TASKGATE_SCHEDULE_MIN_INTERVAL_SECONDS": "1", "TASKGATE_SCHEDULER_POLL_SECONDS": "0.1"}
DAILY = {"name": "Daily digest", "cron_expression": "0 9 * * *", "task_query": "Summarise the news"}
EVERY_SECOND = {"name": "Ticker", "cron_expression": "* * * * * *", "task_query": "What is 2+2?"}


def user_of(stack, email: str) -> User:
    key = create_api_key(stack.env, email)
    return User(
        email=email,
        api_key=key,
        client=httpx.Client(base_url=stack.url, headers={"X-API-Key": key}, timeout=30),
    )


def create(user: User, **fields) -> dict:
    response = user.client.post("/api/v1/schedules", json={**DAILY, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def detail_fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "validation_failed"
    return [detail["field"] for detail in body["details"]]


# Routes and their errors, on the shared stack.


def test_create_answers_201_with_the_first_run_computed_in_the_zone(alice):
    response = alice.client.post(
        "/api/v1/schedules",
        json={**DAILY, "timezone": "Asia/Tokyo", "description": "Morning", "task_context": {"k": 1}},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"schedule_id", "message", "next_run_at"}
    assert RFC3339.match(body["next_run_at"])
    next_run = parse_datetime(body["next_run_at"])
    # 09:00 in Tokyo is 00:00 UTC.
    assert (next_run.hour, next_run.minute, next_run.second) == (0, 0, 0)
    assert (
        datetime.timedelta(0) < next_run - datetime.datetime.now(datetime.UTC) <= datetime.timedelta(days=1)
    )

    schedule = alice.client.get(f"/api/v1/schedules/{body['schedule_id']}").json()
    assert schedule["name"] == "Daily digest"
    assert schedule["description"] == "Morning"
    assert schedule["timezone"] == "Asia/Tokyo"
    assert schedule["task_context"] == {"k": 1}
    assert schedule["status"] == "ACTIVE"
    assert schedule["next_run_at"] == body["next_run_at"]
    assert (schedule["total_runs"], schedule["successful_runs"], schedule["failed_runs"]) == (0, 0, 0)
    assert schedule["last_run_at"] is None and schedule["paused_at"] is None
    assert RFC3339.match(schedule["created_at"])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cron_expression": "not a cron"}, "cron_expression"),
        ({"cron_expression": "61 * * * *"}, "cron_expression"),
        ({"cron_expression": "* * * * * *"}, "cron_expression"),  # every second: under the 60 s minimum
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"task_query": "   "}, "task_query"),
        ({"task_query": "x" * 10_001}, "task_query"),
        ({"name": ""}, "name"),
        ({"task_context": [1, 2]}, "task_context"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"max_budget_per_run_usd": -1}, "max_budget_per_run_usd"),
    ],
)
def test_invalid_schedules_are_400_naming_the_field(alice, fields, field):
    response = alice.client.post("/api/v1/schedules", json={**DAILY, **fields})

    assert field in detail_fields(response)


def test_missing_required_fields_are_each_named(alice):
    assert set(detail_fields(alice.client.post("/api/v1/schedules", json={}))) == {
        "name",
        "cron_expression",
        "task_query",
    }


def test_a_user_may_have_only_so_many_schedules(stack):
    user = user_of(stack, "schedule-cap@example.com")
    for _ in range(50):
        create(user)

    response = user.client.post("/api/v1/schedules", json=DAILY)

    assert detail_fields(response) == ["schedules"]
    assert user.client.get("/api/v1/schedules").json()["total_count"] == 50
    user.client.close()


def test_the_list_pages_and_filters_by_status(stack):
    user = user_of(stack, "schedule-list@example.com")
    ids = [create(user, name=f"s{index}")["schedule_id"] for index in range(3)]
    user.client.post(f"/api/v1/schedules/{ids[0]}/pause", json={})

    everything = user.client.get("/api/v1/schedules").json()
    page = user.client.get("/api/v1/schedules", params={"page": 2, "page_size": 1}).json()
    paused = user.client.get("/api/v1/schedules", params={"status": "paused"}).json()
    active = user.client.get("/api/v1/schedules", params={"status": "ACTIVE"}).json()

    assert (everything["total_count"], everything["page"], everything["page_size"]) == (3, 1, 50)
    assert [s["schedule_id"] for s in everything["schedules"]] == list(reversed(ids))
    assert [s["schedule_id"] for s in page["schedules"]] == [ids[1]]
    assert (page["page"], page["page_size"], page["total_count"]) == (2, 1, 3)
    assert [s["schedule_id"] for s in paused["schedules"]] == [ids[0]]
    assert active["total_count"] == 2
    for params in ({"status": "DONE"}, {"page": 0}, {"page_size": 101}):
        assert list(params)[0] in detail_fields(user.client.get("/api/v1/schedules", params=params))
    user.client.close()


def test_put_changes_any_subset_and_a_new_cron_moves_the_next_run(alice):
    schedule_id = create(alice)["schedule_id"]

    renamed = alice.client.put(f"/api/v1/schedules/{schedule_id}", json={"name": "Renamed"})
    retimed = alice.client.put(
        f"/api/v1/schedules/{schedule_id}", json={"cron_expression": "30 6 * * *", "timezone": "UTC"}
    )
    bad = alice.client.put(f"/api/v1/schedules/{schedule_id}", json={"timezone": "Nowhere"})

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Renamed"
    assert renamed.json()["cron_expression"] == "0 9 * * *"
    assert retimed.status_code == 200
    next_run = parse_datetime(retimed.json()["next_run_at"])
    assert (next_run.hour, next_run.minute) == (6, 30)
    assert retimed.json()["name"] == "Renamed"
    assert detail_fields(bad) == ["timezone"]


def test_pause_and_resume_recompute_the_next_run(alice):
    schedule_id = create(alice)["schedule_id"]

    paused = alice.client.post(f"/api/v1/schedules/{schedule_id}/pause", json={"reason": "holiday"})
    while_paused = alice.client.get(f"/api/v1/schedules/{schedule_id}").json()
    resumed = alice.client.post(f"/api/v1/schedules/{schedule_id}/resume")
    after = alice.client.get(f"/api/v1/schedules/{schedule_id}").json()

    assert paused.status_code == 200, paused.text
    assert paused.json() == {"success": True, "message": "Schedule paused", "next_run_at": None}
    assert while_paused["status"] == "PAUSED"
    assert while_paused["pause_reason"] == "holiday"
    assert RFC3339.match(while_paused["paused_at"])
    assert while_paused["next_run_at"] is None
    assert resumed.status_code == 200
    assert resumed.json()["success"] is True
    assert resumed.json()["next_run_at"] == after["next_run_at"]
    assert parse_datetime(after["next_run_at"]) > datetime.datetime.now(datetime.UTC)
    assert (after["status"], after["paused_at"], after["pause_reason"]) == ("ACTIVE", None, None)


def test_trigger_runs_the_task_now_as_the_owner_without_moving_the_next_run(alice):
    created = create(alice, task_query="What is 6*7?", timeout_seconds=120)
    schedule_id = created["schedule_id"]

    response = alice.client.post(f"/api/v1/schedules/{schedule_id}/trigger")

    assert response.status_code == 202, response.text
    workflow_id = response.json()["workflow_id"]
    task = alice.wait_finished(workflow_id)
    assert task["query"] == "What is 6*7?"
    assert task["status"] == "COMPLETED"
    schedule = alice.client.get(f"/api/v1/schedules/{schedule_id}").json()
    assert schedule["next_run_at"] == created["next_run_at"]
    assert (schedule["total_runs"], schedule["successful_runs"], schedule["failed_runs"]) == (1, 1, 0)
    runs = alice.client.get(f"/api/v1/schedules/{schedule_id}/runs").json()
    assert (runs["total_count"], runs["page"], runs["page_size"]) == (1, 1, 50)
    run = runs["runs"][0]
    assert run["workflow_id"] == workflow_id
    assert (run["query"], run["status"]) == ("What is 6*7?", "COMPLETED")
    assert run["result"] == task["result"]
    assert run["total_tokens"] == task["usage"]["total_tokens"] > 0
    assert run["total_cost_usd"] == pytest.approx(task["usage"]["estimated_cost"])
    assert run["duration_ms"] >= 0
    for field in ("triggered_at", "started_at", "completed_at"):
        assert RFC3339.match(run[field]), field


def test_delete_answers_204_and_the_schedule_is_gone(alice):
    schedule_id = create(alice)["schedule_id"]

    assert alice.client.delete(f"/api/v1/schedules/{schedule_id}").status_code == 204
    assert alice.client.get(f"/api/v1/schedules/{schedule_id}").status_code == 404
    assert alice.client.delete(f"/api/v1/schedules/{schedule_id}").status_code == 404


def test_another_users_schedule_is_404_on_every_route(alice, bob):
    schedule_id = create(alice)["schedule_id"]
    base = f"/api/v1/schedules/{schedule_id}"
    calls = [
        ("GET", base, None),
        ("PUT", base, {"name": "mine"}),
        ("POST", f"{base}/pause", {}),
        ("POST", f"{base}/resume", {}),
        ("POST", f"{base}/trigger", None),
        ("GET", f"{base}/runs", None),
        ("DELETE", base, None),
    ]
    for method, path, body in calls:
        response = bob.client.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == "Schedule not found"
        assert response.json()["code"] == "not_found"
    assert schedule_id not in [
        s["schedule_id"] for s in bob.client.get("/api/v1/schedules").json()["schedules"]
    ]
    assert alice.client.get(base).json()["name"] == "Daily digest"


def test_a_malformed_id_is_400(alice):
    assert alice.client.get("/api/v1/schedules/bad%20id").status_code == 400


# Firing, on stacks where per-second schedules are allowed.


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fast_stack(request, tmp_path_factory):
    """An orchestrator and gateway whose schedules may run every second, once per store."""
    overrides = dict(FAST_SETTINGS)
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres_server")
        redis = request.getfixturevalue("redis_server")
        overrides.update(TASKGATE_DATABASE_URL=postgres.create_database(), TASKGATE_REDIS_URL=redis.url)
    running = start_stack(tmp_path_factory.mktemp(f"schedules-{request.param}"), **overrides)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def carol(fast_stack) -> User:
    user = user_of(fast_stack, "carol@example.com")
    yield user
    user.client.close()


def wait_for_runs(user: User, schedule_id: str, count: int, timeout: float = 20.0) -> list[dict]:
    def enough():
        runs = user.client.get(f"/api/v1/schedules/{schedule_id}/runs", params={"page_size": 100}).json()
        return runs["runs"] if runs["total_count"] >= count else None

    return wait_until(enough, timeout=timeout, what=f"{count} runs of {schedule_id}")


def test_a_per_second_schedule_fires_and_its_runs_are_listed_with_their_tasks(carol):
    schedule_id = create(carol, **EVERY_SECOND)["schedule_id"]

    wait_for_runs(carol, schedule_id, 3)
    carol.client.post(f"/api/v1/schedules/{schedule_id}/pause")
    runs = carol.client.get(f"/api/v1/schedules/{schedule_id}/runs", params={"page_size": 100}).json()["runs"]
    for run in runs:
        carol.wait_finished(run["workflow_id"])
    schedule = carol.client.get(f"/api/v1/schedules/{schedule_id}").json()
    runs = carol.client.get(f"/api/v1/schedules/{schedule_id}/runs", params={"page_size": 100}).json()

    assert runs["total_count"] == schedule["total_runs"] == len(runs["runs"]) >= 3
    assert schedule["successful_runs"] == schedule["total_runs"]
    assert schedule["failed_runs"] == 0
    assert all(run["status"] == "COMPLETED" and run["query"] == "What is 2+2?" for run in runs["runs"])
    triggered = [run["triggered_at"] for run in runs["runs"]]
    assert triggered == sorted(triggered, reverse=True)
    assert schedule["last_run_at"] is not None
    # Each run is a task of the schedule's owner.
    task = carol.client.get(f"/api/v1/tasks/{runs['runs'][0]['workflow_id']}").json()
    assert task["status"] in TERMINAL_STATUSES


def test_a_paused_schedule_stops_firing_and_resumes_from_now(carol):
    schedule_id = create(carol, **EVERY_SECOND)["schedule_id"]
    wait_for_runs(carol, schedule_id, 1)
    carol.client.post(f"/api/v1/schedules/{schedule_id}/pause")
    count = carol.client.get(f"/api/v1/schedules/{schedule_id}").json()["total_runs"]

    time.sleep(2.5)
    still = carol.client.get(f"/api/v1/schedules/{schedule_id}").json()["total_runs"]
    resumed = carol.client.post(f"/api/v1/schedules/{schedule_id}/resume").json()
    wait_for_runs(carol, schedule_id, count + 1)
    carol.client.post(f"/api/v1/schedules/{schedule_id}/pause")

    assert still == count
    assert parse_datetime(resumed["next_run_at"]) > datetime.datetime.now(datetime.UTC) - datetime.timedelta(
        seconds=3
    )


def set_next_run_at(stack, schedule_id: str, value: datetime.datetime) -> None:
    url = stack.env["TASKGATE_DATABASE_URL"]
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as connection:
            text = value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            connection.execute("UPDATE schedules SET next_run_at = ? WHERE id = ?", (text, schedule_id))
    else:
        with psycopg.connect(url) as connection:
            connection.execute("UPDATE schedules SET next_run_at = %s WHERE id = %s", (value, schedule_id))


def test_a_run_missed_while_the_orchestrator_was_down_fires_once_on_recovery(fast_stack, carol):
    # A daily schedule whose hour is half a day from now: its latest tick is about 12 hours ago and
    # its next one about 12 hours ahead, so no regular tick can fire while the test looks.
    now = datetime.datetime.now(datetime.UTC)
    hour = (now.hour + 12) % 24
    latest_tick = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if latest_tick > now:
        latest_tick -= datetime.timedelta(days=1)
    next_tick = latest_tick + datetime.timedelta(days=1)
    schedule_id = create(carol, cron_expression=f"0 {hour} * * *", timezone="UTC")["schedule_id"]
    fast_stack.orchestrator.stop()
    # Ten ticks missed: the one nine days before the latest, and every day since.
    set_next_run_at(fast_stack, schedule_id, latest_tick - datetime.timedelta(days=9))
    fast_stack.orchestrator.start()

    # Each claim moves next_run_at on and writes its run in one transaction, so once next_run_at
    # is in the future every run the missed ticks will ever start has been written.
    def caught_up():
        schedule = carol.client.get(f"/api/v1/schedules/{schedule_id}").json()
        return schedule if parse_datetime(schedule["next_run_at"]) > now else None

    schedule = wait_until(caught_up, timeout=60, what=f"{schedule_id} to catch up")
    runs = carol.client.get(f"/api/v1/schedules/{schedule_id}/runs", params={"page_size": 100}).json()

    assert runs["total_count"] == len(runs["runs"]) == 1
    assert schedule["total_runs"] == 1
    assert parse_datetime(schedule["next_run_at"]) == next_tick


def test_each_tick_fires_exactly_one_task_across_two_replicas(replicas_of):  # noqa: F811
    replicas = replicas_of(
        r1=FAST_SETTINGS | {"TASKGATE_SCHEDULER_POLL_SECONDS": "0.05"},
        r2=FAST_SETTINGS | {"TASKGATE_SCHEDULER_POLL_SECONDS": "0.05"},
    )
    client = httpx.Client(base_url=replicas.gateway.url, headers=replicas.headers, timeout=60)
    schedule_ids = []
    for index in range(3):
        response = client.post("/api/v1/schedules", json={**EVERY_SECOND, "name": f"tick{index}"})
        assert response.status_code == 201, response.text
        schedule_ids.append(response.json()["schedule_id"])

    def read_runs_and_tasks():
        with psycopg.connect(replicas.database_url) as connection:
            runs = connection.execute(
                "SELECT schedule_id, scheduled_for, task_id FROM schedule_runs WHERE NOT manual"
            ).fetchall()
            tasks = connection.execute(
                "SELECT options_json::json->>'schedule_id' AS schedule_id, COUNT(*) FROM tasks GROUP BY 1"
            ).fetchall()
        return runs, dict(tasks)

    def ticks_of(runs, schedule_id: str) -> list[datetime.datetime]:
        return sorted(scheduled_for for sid, scheduled_for, _ in runs if sid == schedule_id)

    # However slow the machine, each schedule fires four ticks or more before it is paused.
    wait_until(
        lambda: all(len(ticks_of(read_runs_and_tasks()[0], sid)) >= 4 for sid in schedule_ids),
        timeout=120,
        what="four ticks of every schedule",
    )
    for schedule_id in schedule_ids:
        assert client.post(f"/api/v1/schedules/{schedule_id}/pause").status_code == 200
    client.close()

    # A paused schedule claims no more ticks; a tick claimed just before has its task stored just
    # after its claim, so wait until every run has its task.
    def settled():
        runs, task_counts = read_runs_and_tasks()
        counts_match = all(task_counts.get(sid, 0) == len(ticks_of(runs, sid)) for sid in schedule_ids)
        return (runs, task_counts) if counts_match else None

    runs, task_counts = wait_until(settled, timeout=120, what="a task for every run")
    per_tick = collections.Counter((schedule_id, scheduled_for) for schedule_id, scheduled_for, _ in runs)
    assert per_tick and max(per_tick.values()) == 1
    assert all(task_id is not None for _, _, task_id in runs)
    for schedule_id in schedule_ids:
        ticks = ticks_of(runs, schedule_id)
        assert len(ticks) >= 4
        # Whole seconds, each once (a replica late by more than a second may skip ticks, never repeat one).
        gaps = [(later - earlier).total_seconds() for earlier, later in zip(ticks, ticks[1:], strict=False)]
        assert all(gap >= 1 and gap == int(gap) for gap in gaps)
        assert task_counts[schedule_id] == len(ticks)
