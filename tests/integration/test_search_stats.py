"""Full-text search and usage stats through the gateway, with real processes; each sees only the caller."""

import datetime

import httpx
import pytest

from tests.integration.processes import create_api_key
from tests.integration.processes import wait_until

STATUSES = {"QUEUED", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


@pytest.fixture(scope="module")
def carol(stack):
    """A user of her own, so her stats are exactly the tasks this module runs for her."""
    key = create_api_key(stack.env, "carol@example.com")
    with httpx.Client(base_url=stack.url, headers={"X-API-Key": key}, timeout=30) as client:
        yield client


def run(client: httpx.Client, query: str, **fields) -> dict:
    response = client.post("/api/v1/tasks", json={"query": query, **fields})
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]

    def finished():
        task = client.get(f"/api/v1/tasks/{task_id}").json()
        return task if task["status"] in {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"} else None

    return wait_until(finished, timeout=30, what=f"task {task_id} to finish")


@pytest.fixture(scope="module")
def searched(alice, bob) -> dict:
    """Alice's tasks with distinctive words in their queries and results, and one of bob's."""
    zebra = alice.submit("Compare the zanzibar archipelago ferry routes")
    product = alice.submit("What is 9876*7?")
    picnic = alice.submit("Outline a picnic menu for autumn")
    bobs = bob.submit("Compare the zanzibar spice markets")
    return {
        "zebra": alice.wait_finished(zebra["task_id"]),
        "product": alice.wait_finished(product["task_id"]),
        "picnic": alice.wait_finished(picnic["task_id"]),
        "bob": bob.wait_finished(bobs["task_id"]),
    }


def search(user, **params) -> httpx.Response:
    return user.client.get("/api/v1/search", params=params)


def test_search_finds_a_task_by_a_word_of_its_query(alice, searched):
    response = search(alice, q="zanzibar")

    assert response.status_code == 200
    body = response.json()
    assert [hit["task_id"] for hit in body["results"]] == [searched["zebra"]["task_id"]]
    assert body["total_count"] == 1
    hit = body["results"][0]
    assert hit["session_id"] == searched["zebra"]["session_id"]
    assert hit["created_at"] == searched["zebra"]["created_at"]
    assert "**zanzibar**" in hit["snippet"].lower()


def test_search_finds_a_task_by_a_word_of_its_result(alice, searched):
    product = searched["product"]
    assert "69132" in product["result"] and "69132" not in product["query"]

    hits = search(alice, q="69132").json()["results"]

    assert [hit["task_id"] for hit in hits] == [product["task_id"]]
    assert "**69132**" in hits[0]["snippet"]


def test_search_matches_every_word_stemmed_and_any_case(alice, searched):
    zebra_id = searched["zebra"]["task_id"]

    assert [h["task_id"] for h in search(alice, q="ZANZIBAR route").json()["results"]] == [zebra_id]
    assert search(alice, q="zanzibar spice").json() == {"results": [], "total_count": 0}
    assert search(alice, q='"zanzibar" OR (ferry*').status_code == 200


def test_search_paginates_with_the_total(alice, searched):
    # Every simulated answer that is not arithmetic ends with the same note.
    everything = search(alice, q="simulated answer", limit=100).json()
    page = search(alice, q="simulated answer", limit=1, offset=1).json()

    assert everything["total_count"] == len(everything["results"]) >= 2
    assert page["total_count"] == everything["total_count"]
    assert [hit["task_id"] for hit in page["results"]] == [everything["results"][1]["task_id"]]


def test_search_never_returns_another_users_tasks(alice, bob, searched):
    bobs = search(bob, q="zanzibar").json()

    assert [hit["task_id"] for hit in bobs["results"]] == [searched["bob"]["task_id"]]
    assert search(bob, q="69132").json() == {"results": [], "total_count": 0}


@pytest.mark.parametrize(
    "params",
    [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 257}, {"q": "ok", "limit": 0}, {"q": "ok", "offset": -1}],
)
def test_search_refuses_a_missing_or_overlong_query_and_bad_pages(alice, params):
    response = search(alice, **params)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert response.json()["details"]


def test_search_refuses_a_query_without_a_word(alice):
    response = search(alice, q="?!*")

    assert response.status_code == 400
    assert response.json()["error"] == "query must contain a letter or a digit"


def test_stats_add_up_the_callers_tasks_sessions_tokens_and_cost(carol):
    first = run(carol, "What is 2+2?")
    second = run(carol, "What is 3+3?", session_id=first["session_id"])
    third = run(carol, "Name three rivers")
    tasks = (first, second, third)

    response = carol.get("/api/v1/stats")

    assert response.status_code == 200
    stats = response.json()
    assert stats["window_days"] == 30
    assert stats["tasks"]["total"] == 3
    assert set(stats["tasks"]["by_status"]) == STATUSES
    assert stats["tasks"]["by_status"]["COMPLETED"] == 3
    assert sum(stats["tasks"]["by_status"].values()) == 3
    assert stats["sessions"] == {"total": 2, "active": 2}
    assert stats["tokens"] == {
        "total": sum(task["usage"]["total_tokens"] for task in tasks),
        "prompt": sum(task["usage"]["input_tokens"] for task in tasks),
        "completion": sum(task["usage"]["output_tokens"] for task in tasks),
    }
    assert stats["cost_usd"] == pytest.approx(sum(task["usage"]["estimated_cost"] for task in tasks))
    # Per UTC day: every date of the window, consecutive, oldest first, ending today (or yesterday,
    # should midnight UTC pass during the test); the three tasks are on the last dates.
    by_day = stats["by_day"]
    last = datetime.date.fromisoformat(by_day[-1]["date"])
    assert [day["date"] for day in by_day] == [
        (last - datetime.timedelta(days=n)).isoformat() for n in range(len(by_day) - 1, -1, -1)
    ]
    assert len(by_day) in (30, 31)
    assert (datetime.datetime.now(datetime.UTC).date() - last).days in (0, 1)
    assert sum(day["tasks"] for day in by_day[-2:]) == 3
    assert sum(day["tokens"] for day in by_day[-2:]) == stats["tokens"]["total"]
    assert sum(day["cost_usd"] for day in by_day) == pytest.approx(stats["cost_usd"])
    assert all(day == {**day, "tasks": 0, "tokens": 0, "cost_usd": 0} for day in by_day[:-2])

    assert carol.get("/api/v1/stats", params={"days": 1}).json()["tasks"]["total"] == 3
    assert carol.get("/api/v1/stats", params={"days": 365}).json()["window_days"] == 365

    carol.delete(f"/api/v1/sessions/{third['session_id']}")
    after_delete = carol.get("/api/v1/stats").json()
    assert after_delete["sessions"] == {"total": 1, "active": 1}
    assert after_delete["tasks"]["total"] == 3


def test_stats_never_count_another_users_work(bob, carol):
    before = carol.get("/api/v1/stats").json()
    bob.wait_finished(bob.submit("What is 5+5?")["task_id"])

    assert carol.get("/api/v1/stats").json() == before
    assert bob.client.get("/api/v1/stats").json()["tasks"]["total"] >= 1


@pytest.mark.parametrize("days", ["0", "366", "-1", "x", "1.5"])
def test_stats_refuse_a_window_outside_1_to_365_days(carol, days):
    response = carol.get("/api/v1/stats", params={"days": days})

    assert response.status_code == 400
    assert [d["field"] for d in response.json()["details"]] == ["days"]
