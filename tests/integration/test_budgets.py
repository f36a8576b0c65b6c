"""Token budgets and the cap on API keys through the real gateway and orchestrator (simulated runner).

The simulated runner records about 49 tokens for "What is 2+2?", so with the tier's budget of 120
tokens a minute a user is refused from their third task of a minute on, and a key with a budget of
1 token after its first. Budgets count finished tasks, so each helper waits for its task to finish
before submitting the next; a minute may end meanwhile, which only means one more task.
"""

import concurrent.futures
import json

import grpc
import httpx
import pytest

from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from taskgate.rfc3339 import parse_datetime
from tests.integration.conftest import TERMINAL_STATUSES
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until

USER_TOKENS_PER_MINUTE = 120
MAX_KEYS = 5
MOST_TASKS = 8
TIERS = {
    "default": {"minute": 100000, "hour": 1000000},
    "free": {"minute": 100000, "hour": 1000000, "tokens_per_minute": USER_TOKENS_PER_MINUTE},
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def budget_stack(request, tmp_path_factory):
    """A stack with the budget tiers, on the embedded default and on PostgreSQL with Redis."""
    overrides = {}
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres_server")
        redis = request.getfixturevalue("redis_server")
        overrides = {"TASKGATE_DATABASE_URL": postgres.create_database(), "TASKGATE_REDIS_URL": redis.url}
    running = start_stack(
        tmp_path_factory.mktemp(f"budgets-{request.param}"),
        TASKGATE_ENV="test",
        TASKGATE_RATE_LIMIT_TIERS=json.dumps(TIERS),
        TASKGATE_MAX_API_KEYS_PER_USER=str(MAX_KEYS),
        **overrides,
    )
    yield running
    running.stop()


def client_of(stack, api_key: str) -> httpx.Client:
    return httpx.Client(base_url=stack.url, headers={"X-API-Key": api_key}, timeout=30)


def wait_finished(client: httpx.Client, task_id: str) -> None:
    def finished():
        return client.get(f"/api/v1/tasks/{task_id}").json()["status"] in TERMINAL_STATUSES

    wait_until(finished, timeout=60, what=f"task {task_id} to finish")


def spend_until_refused(client: httpx.Client) -> httpx.Response:
    """Submit and finish tasks until one is refused; return the refusal."""
    for _ in range(MOST_TASKS):
        response = client.post("/api/v1/tasks", json={"query": "What is 2+2?"})
        if response.status_code != 200:
            return response
        wait_finished(client, response.json()["task_id"])
    raise AssertionError(f"no refusal after {MOST_TASKS} tasks")


def assert_token_refusal(response: httpx.Response, scope: str, limit: int) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == "token_budget_exceeded" and body["window"] == "tokens_minute"
    assert body["request_id"] and body["error"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-Budget-Window"] == "tokens_minute"
    assert response.headers["X-Budget-Scope"] == scope
    assert int(response.headers["X-Budget-Limit"]) == limit
    assert int(response.headers["X-Budget-Used"]) >= limit
    assert int(response.headers["X-Budget-Reset"]) > 0


def test_a_keys_budget_binds_before_its_users_and_usage_shows(budget_stack):
    api_key = create_api_key(budget_stack.env, "carol@example.com")
    with client_of(budget_stack, api_key) as carol:
        created = carol.post("/api/v1/auth/api-keys", json={"name": "narrow", "tokens_per_minute": 1})
        assert created.status_code == 201, created.text
        assert created.json()["budgets"]["tokens_minute"]["limit"] == 1
        too_wide = carol.post(
            "/api/v1/auth/api-keys", json={"name": "wide", "tokens_per_minute": USER_TOKENS_PER_MINUTE + 1}
        )
        assert too_wide.status_code == 400 and too_wide.json()["details"][0]["field"] == "tokens_per_minute"

        with client_of(budget_stack, created.json()["api_key"]) as narrow:
            refusal = spend_until_refused(narrow)
            assert_token_refusal(refusal, "key", 1)
            # The user's own budget is not used up: the same user's other key is admitted.
            assert carol.post("/api/v1/tasks", json={"query": "What is 2+2?"}).status_code == 200

            me = narrow.get("/api/v1/auth/me").json()
        key_tokens = me["key_budgets"]["tokens_minute"]
        assert key_tokens["limit"] == 1 and key_tokens["reset"]
        same_minute = int(parse_datetime(key_tokens["reset"]).timestamp()) == int(
            refusal.headers["X-Budget-Reset"]
        )
        if same_minute:
            assert key_tokens["used"] >= 1 and key_tokens["remaining"] == 0
        assert me["budgets"]["tokens_minute"]["limit"] == USER_TOKENS_PER_MINUTE
        assert me["budgets"]["cost_day"]["limit"] is None and me["budgets"]["cost_day"]["used"] > 0
        assert me["key_budgets"]["cost_day"]["used"] > 0

        listed = {key["name"]: key for key in carol.get("/api/v1/auth/api-keys").json()["keys"]}
        assert listed["narrow"]["budgets"]["tokens_minute"]["limit"] == 1
        assert listed["narrow"]["budgets"]["cost_day"]["used"] > 0
        assert listed["test"]["budgets"]["tokens_minute"]["limit"] is None
        assert carol.get("/api/v1/auth/me").json()["key_budgets"] is None


def test_a_user_over_budget_is_refused_until_the_next_minute_others_are_not(budget_stack):
    dave_key = create_api_key(budget_stack.env, "dave@example.com")
    erin_key = create_api_key(budget_stack.env, "erin@example.com")
    with client_of(budget_stack, dave_key) as dave, client_of(budget_stack, erin_key) as erin:
        assert_token_refusal(spend_until_refused(dave), "user", USER_TOKENS_PER_MINUTE)
        # A session's next turn is a submission like any other. (Refused, or, if the minute has
        # just ended, admitted: then the next loop below spends the new minute again.)
        turn = dave.post("/api/v1/tasks", json={"query": "And 3+3?", "session_id": "dave-session"})
        assert turn.status_code in (200, 429), turn.text
        if turn.status_code == 429:
            assert_token_refusal(turn, "user", USER_TOKENS_PER_MINUTE)
        assert erin.post("/api/v1/tasks", json={"query": "What is 2+2?"}).status_code == 200

        # A service calling the orchestrator directly with the key is refused the same way.
        with grpc.insecure_channel(budget_stack.orchestrator.grpc_addr) as channel:
            tasks = tasks_pb2_grpc.TaskServiceStub(channel)
            metadata = (("x-api-key", dave_key),)
            for _ in range(MOST_TASKS):
                try:
                    reply = tasks.SubmitTask(
                        tasks_pb2.SubmitTaskRequest(query="What is 2+2?"), metadata=metadata
                    )
                except grpc.RpcError as ex:
                    refused = ex
                    break
                wait_finished(dave, reply.task.task_id)
            else:
                raise AssertionError("the direct submission was never refused")
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailing = dict(refused.trailing_metadata())
        assert trailing["taskgate-error-code"] == "token_budget_exceeded"
        assert 1 <= int(trailing["retry-after"]) <= 60
        assert trailing["taskgate-budget-scope"] == "user"

        # Once the minute ends, the user is admitted again.
        def admitted():
            return dave.post("/api/v1/tasks", json={"query": "What is 2+2?"}).status_code == 200

        wait_until(admitted, timeout=90, interval=1, what="the next minute to admit dave again")


def test_parallel_key_creations_stop_exactly_at_the_cap(budget_stack):
    api_key = create_api_key(budget_stack.env, "frank@example.com")
    with client_of(budget_stack, api_key) as frank:
        # frank holds one key; MAX_KEYS + 5 creations at once leave him exactly MAX_KEYS.
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(
                    lambda index: frank.post("/api/v1/auth/api-keys", json={"name": f"key {index}"}),
                    range(MAX_KEYS + 5),
                )
            )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] * (MAX_KEYS - 1) + [409] * 6, statuses
        refused = next(answer for answer in answers if answer.status_code == 409).json()
        assert refused["code"] == "api_key_limit" and refused["request_id"]
        keys = frank.get("/api/v1/auth/api-keys").json()["keys"]
        assert sum(key["is_active"] for key in keys) == MAX_KEYS

        # Revoking one makes room for one more.
        frank.delete(f"/api/v1/auth/api-keys/{keys[0]['id']}")
        assert frank.post("/api/v1/auth/api-keys", json={"name": "again"}).status_code == 201
        assert frank.post("/api/v1/auth/api-keys", json={"name": "over"}).status_code == 409
