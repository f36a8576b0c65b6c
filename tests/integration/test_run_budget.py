"""A schedule's ``max_budget_per_run_usd`` kept by the runs it starts, through the real stack.

The stack runs the simulated agent: the small model's prompt for ``QUERY`` costs about $0.000006
and its whole answer about $0.00006, so one budget truncates the answer and another does not even
pay for the prompt.
"""

import pytest

from tests.integration.conftest import User
from tests.integration.test_schedules import create
from tests.integration.test_schedules import user_of

pytestmark = pytest.mark.integration

QUERY = "Summarise the news"
TRUNCATING_BUDGET = 0.00002
UNDER_THE_PROMPT_BUDGET = 0.000001


@pytest.fixture(scope="module")
def dora(stack) -> User:
    user = user_of(stack, "budget-runs@example.com")
    yield user
    user.client.close()


def trigger_and_wait(user: User, schedule_id: str) -> dict:
    """Run the schedule now and return its task once finished."""
    response = user.client.post(f"/api/v1/schedules/{schedule_id}/trigger")
    assert response.status_code == 202, response.text
    return user.wait_finished(response.json()["workflow_id"])


def run_counts(user: User, schedule_id: str) -> tuple[int, int, int]:
    schedule = user.client.get(f"/api/v1/schedules/{schedule_id}").json()
    return schedule["total_runs"], schedule["successful_runs"], schedule["failed_runs"]


def test_a_run_is_cut_to_its_budget_and_says_so(dora):
    schedule_id = create(dora, task_query=QUERY, max_budget_per_run_usd=TRUNCATING_BUDGET)["schedule_id"]

    task = trigger_and_wait(dora, schedule_id)

    assert task["status"] == "COMPLETED"
    assert 0 < task["usage"]["estimated_cost"] <= TRUNCATING_BUDGET
    output = next(event for event in dora.events(task["task_id"]) if event["type"] == "LLM_OUTPUT")
    assert output["payload"]["truncated_by_budget"] is True
    assert output["payload"]["max_budget_usd"] == TRUNCATING_BUDGET
    assert output["payload"]["response"] == task["result"]
    assert run_counts(dora, schedule_id) == (1, 1, 0)


def test_a_run_whose_budget_does_not_cover_the_prompt_fails_with_the_reason(dora):
    schedule_id = create(dora, task_query=QUERY, max_budget_per_run_usd=UNDER_THE_PROMPT_BUDGET)[
        "schedule_id"
    ]

    task = trigger_and_wait(dora, schedule_id)

    assert task["status"] == "FAILED"
    assert task["error"].startswith("The run's budget of $0.000001 does not cover its prompt (about $0.00000")
    assert task["usage"]["estimated_cost"] <= UNDER_THE_PROMPT_BUDGET
    types = [event["type"] for event in dora.events(task["task_id"])]
    assert "LLM_PARTIAL" not in types and "LLM_OUTPUT" not in types
    assert "WORKFLOW_FAILED" in types
    runs = dora.client.get(f"/api/v1/schedules/{schedule_id}/runs").json()
    assert [(run["status"], run["error_message"]) for run in runs["runs"]] == [("FAILED", task["error"])]
    assert run_counts(dora, schedule_id) == (1, 0, 1)


def test_a_generous_budget_changes_nothing(dora):
    schedule_id = create(dora, task_query=QUERY, max_budget_per_run_usd=1.0)["schedule_id"]

    task = trigger_and_wait(dora, schedule_id)

    assert task["status"] == "COMPLETED"
    output = next(event for event in dora.events(task["task_id"]) if event["type"] == "LLM_OUTPUT")
    assert "truncated_by_budget" not in output["payload"]
    assert task["usage"]["estimated_cost"] <= 1.0
