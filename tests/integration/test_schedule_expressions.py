"""Cron expressions the schedule routes refuse with 400, never 500, through the real gateway and orchestrator.

croniter's random (R) and hashed (H) tokens, and expressions croniter accepts but finds no date for,
on create and on update (where the schedule stays as it was).
"""

import pytest

pytestmark = pytest.mark.integration

DAILY = {"name": "Daily digest", "cron_expression": "0 9 * * *", "task_query": "Summarise the news"}
NO_DATE = "cron_expression matches no date (such as day 30 of February)"
MINUTE_TOKEN = (
    "cron_expression must not use a random (R) or hashed (H) token: {!r} in the minute field"
    " picks its time anew at every run"
)


def _refusal(response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "validation_failed"
    [detail] = body["details"]
    assert detail["field"] == "cron_expression"
    return detail["message"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("R * * * *", MINUTE_TOKEN.format("R")),
        ("H * * * *", MINUTE_TOKEN.format("H")),
        ("R(0-59) * * * *", MINUTE_TOKEN.format("R(0-59)")),
        ("0 0 30 2 *", NO_DATE),
        ("0 0 31 2,4,6,9,11 *", NO_DATE),
        ("* * * * * */7", "cron_expression must not run more often than every 60 seconds"),
    ],
)
def test_a_schedule_with_a_random_token_or_no_date_is_400_on_create_and_update(alice, expression, message):
    created = alice.client.post("/api/v1/schedules", json={**DAILY, "cron_expression": expression})
    assert _refusal(created) == message

    schedule = alice.client.post("/api/v1/schedules", json=DAILY).json()
    path = f"/api/v1/schedules/{schedule['schedule_id']}"
    assert _refusal(alice.client.put(path, json={"cron_expression": expression})) == message
    after = alice.client.get(path).json()
    assert (after["cron_expression"], after["next_run_at"]) == ("0 9 * * *", schedule["next_run_at"])
    assert alice.client.delete(path).status_code == 204
