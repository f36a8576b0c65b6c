"""Ownership, with real processes: another user's ids are 404 on every route, exactly like unknown ones.

Both users are made through ``POST /api/v1/auth/register``; the intruder tries each route with
its API key and with its access token. A sweep over the app's routes makes sure none is left out.
"""

import dataclasses

import falcon.inspect
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.integration.accounts import Account
from tests.integration.accounts import register
from tests.integration.processes import wait_until

UNIQUE_WORD = "zanzibarquokka"


@dataclasses.dataclass
class Owned:
    """What the owner has: a finished task, its session, a second API key."""

    owner: Account
    intruder: Account
    task_id: str
    session_id: str
    key_id: str
    schedule_id: str = "no-such-schedule"

    def fill(self, template: str) -> str:
        return template.format(
            task_id=self.task_id, session_id=self.session_id, key_id=self.key_id, schedule_id=self.schedule_id
        )


@pytest.fixture(scope="module")
def owned(stack):
    owner = register(stack.url)
    intruder = register(stack.url)
    task = owner.token_client.post("/api/v1/tasks", json={"query": f"Tell me about the {UNIQUE_WORD}"}).json()
    wait_until(
        lambda: owner.key_client.get(f"/api/v1/tasks/{task['task_id']}").json()["status"] == "COMPLETED",
        what="the owner's task to complete",
    )
    key = owner.key_client.post("/api/v1/auth/api-keys", json={"name": "second"}).json()
    schedule = owner.key_client.post(
        "/api/v1/schedules", json={"name": "mine", "cron_expression": "0 9 * * *", "task_query": "q"}
    ).json()
    yield Owned(owner, intruder, task["task_id"], task["session_id"], key["id"], schedule["schedule_id"])
    owner.close()
    intruder.close()


# (method, path template, JSON body): every route that names a task, session, workflow or key.
FOREIGN_ID_REQUESTS = [
    ("GET", "/api/v1/tasks/{task_id}", None),
    ("GET", "/api/v1/tasks/{task_id}/events", None),
    ("GET", "/api/v1/tasks/{task_id}/timeline", None),
    ("GET", "/api/v1/tasks/{task_id}/stream", None),
    ("POST", "/api/v1/tasks/{task_id}/cancel", {"reason": "mine now"}),
    ("POST", "/api/v1/tasks/{task_id}/pause", {}),
    ("POST", "/api/v1/tasks/{task_id}/resume", {}),
    ("GET", "/api/v1/tasks/{task_id}/control-state", None),
    ("GET", "/api/v1/stream/sse?workflow_id={task_id}", None),
    ("GET", "/api/v1/sessions/{session_id}", None),
    ("PATCH", "/api/v1/sessions/{session_id}", {"title": "taken over"}),
    ("DELETE", "/api/v1/sessions/{session_id}", None),
    ("GET", "/api/v1/sessions/{session_id}/history", None),
    ("GET", "/api/v1/sessions/{session_id}/events", None),
    ("GET", "/api/v1/sessions/{session_id}/export", None),
    # A task naming another user's session id starts a session of the caller's own under that id
    # (test_session_ids.py): session ids are per user, so it is no foreign id.
    ("DELETE", "/api/v1/auth/api-keys/{key_id}", None),
    ("PATCH", "/api/v1/auth/api-keys/{key_id}", {"rate_limit_per_minute": 1}),
    ("GET", "/api/v1/schedules/{schedule_id}", None),
    ("PUT", "/api/v1/schedules/{schedule_id}", {"name": "taken over"}),
    ("DELETE", "/api/v1/schedules/{schedule_id}", None),
    ("POST", "/api/v1/schedules/{schedule_id}/pause", {}),
    ("POST", "/api/v1/schedules/{schedule_id}/resume", {}),
    ("POST", "/api/v1/schedules/{schedule_id}/trigger", None),
    ("GET", "/api/v1/schedules/{schedule_id}/runs", None),
]


@pytest.mark.parametrize("kind", ["api_key", "jwt"])
@pytest.mark.parametrize(("method", "template", "body"), FOREIGN_ID_REQUESTS, ids=lambda value: str(value))
def test_another_users_ids_are_404_like_unknown_ones(owned, kind, method, template, body):
    client = owned.intruder.client(kind)
    json_body = {k: owned.fill(v) if isinstance(v, str) else v for k, v in body.items()} if body else body

    foreign = client.request(method, owned.fill(template), json=json_body, follow_redirects=False)

    assert (foreign.status_code, foreign.json()["code"]) == (404, "not_found"), foreign.text
    assert "Location" not in foreign.headers
    unknown = Owned(owned.owner, owned.intruder, "no-such-task", "no-such-session", "no-such-key")
    missing = client.request(method, unknown.fill(template), json=body, follow_redirects=False)
    assert foreign.json()["error"] == missing.json()["error"]
    assert missing.status_code == 404


def test_the_owner_still_has_everything_untouched(owned):
    for kind in ("api_key", "jwt"):
        client = owned.owner.client(kind)
        task = client.get(f"/api/v1/tasks/{owned.task_id}").json()
        assert task["status"] == "COMPLETED"
        control = client.get(f"/api/v1/tasks/{owned.task_id}/control-state").json()
        assert (control["is_cancelled"], control["is_paused"]) == (False, False)
        session = client.get(f"/api/v1/sessions/{owned.session_id}")
        assert session.status_code == 200 and session.json()["title"] != "taken over"
        keys = client.get("/api/v1/auth/api-keys").json()["keys"]
        second = next(key for key in keys if key["id"] == owned.key_id)
        assert second["is_active"] and second["rate_limit_per_minute"] is None


@pytest.mark.parametrize("kind", ["api_key", "jwt"])
def test_lists_search_and_stats_show_nothing_of_another_user(owned, kind):
    client = owned.intruder.client(kind)

    assert client.get("/api/v1/tasks").json()["total_count"] == 0
    assert client.get("/api/v1/tasks", params={"session_id": owned.session_id}).json()["total_count"] == 0
    assert client.get("/api/v1/sessions").json()["total_count"] == 0
    assert client.get("/api/v1/search", params={"q": UNIQUE_WORD}).json()["total_count"] == 0
    assert client.get("/api/v1/stats").json()["tasks"]["total"] == 0
    keys = client.get("/api/v1/auth/api-keys").json()["keys"]
    assert owned.key_id not in {key["id"] for key in keys}
    assert client.get("/api/v1/auth/me").json()["user_id"] == owned.intruder.user_id


def test_the_sweep_covers_every_route_that_names_an_id():
    app = create_app(GatewaySettings.from_env({"TASKGATE_SERVICE_TOKEN": "s" * 32, "TASKGATE_ENV": "test"}))
    named = {
        (method.method, route.path)
        for route in falcon.inspect.inspect_routes(app)
        for method in route.methods
        if "{" in route.path and not method.internal and method.method != "OPTIONS"
    }
    swept = {(method, template.split("?", 1)[0]) for method, template, _ in FOREIGN_ID_REQUESTS}
    # A model id names something every caller shares, not something a caller owns; so does a file
    # of the web console (public static files).
    shared = {("GET", "/v1/models/{model}"), ("GET", "/ui/{file:path}"), ("HEAD", "/ui/{file:path}")}

    assert named - shared <= swept, named - shared - swept
