"""The sessions, schedules and keys pages, driven in Chromium as a person would use them."""

import datetime
import json
import pathlib
import re
import zoneinfo

import httpx
from playwright.sync_api import expect

from orchestrator.engine.schedule_rules import next_tick
from tests.integration.processes import wait_until

TERMINAL_STATUSES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


def run_task(account, query: str) -> dict:
    """Submit a task through the API and wait until it has finished; return it."""
    response = account.key_client.post("/api/v1/tasks", json={"query": query})
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]

    def finished():
        task = account.key_client.get(f"/api/v1/tasks/{task_id}").json()
        return task if task["status"] in TERMINAL_STATUSES else None

    return wait_until(finished, timeout=60, what=f"task {task_id} to finish")


def test_search_a_session_then_rename_export_and_delete_it(signed_in_page, account):
    page = signed_in_page
    task = run_task(account, "What is the tallest mountain in Scotland?")
    session_id = task["session_id"]

    page.get_by_role("link", name="Sessions").click()
    expect(page.get_by_role("heading", name="Sessions", level=1)).to_be_visible()
    expect(page.locator(f'tr[data-id="{session_id}"]')).to_be_visible()

    page.get_by_label("Words in a task's query or result").fill("mountain Scotland")
    page.get_by_role("button", name="Search", exact=True).click()
    result = page.locator(f'li[data-id="{task["task_id"]}"]')
    expect(result).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="1 task matches.")).to_be_visible()
    result.get_by_role("link", name="Open session").click()

    expect(page).to_have_url(re.compile(rf"#/sessions/{re.escape(session_id)}$"))
    turn = page.locator(f'li[data-id="{task["task_id"]}"]')
    expect(turn.get_by_role("link", name=task["query"])).to_be_visible()
    expect(turn).to_contain_text("COMPLETED")

    page.get_by_label("Title").fill("Scottish hills")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("heading", name="Scottish hills", level=1)).to_be_visible()
    assert account.key_client.get(f"/api/v1/sessions/{session_id}").json()["title"] == "Scottish hills"

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export JSON").click()
    download = download_info.value
    assert download.suggested_filename == f"session-{session_id}.json"
    exported = json.loads(pathlib.Path(download.path()).read_text())
    assert exported["format"] == "taskgate.session.v1"
    assert [t["task_id"] for t in exported["tasks"]] == [task["task_id"]]
    assert exported["complete"] is True

    # Deleting asks first: cancelling keeps the session, confirming deletes it.
    page.get_by_role("button", name="Delete session").click()
    dialog = page.get_by_role("dialog", name="Delete this session?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert account.key_client.get(f"/api/v1/sessions/{session_id}").status_code == 200

    page.get_by_role("button", name="Delete session").click()
    page.get_by_role("dialog", name="Delete this session?").get_by_role(
        "button", name="Delete session"
    ).click()
    expect(page).to_have_url(re.compile(r"#/sessions$"))
    expect(page.get_by_role("heading", name="Sessions", level=1)).to_be_visible()
    expect(page.locator(f'tr[data-id="{session_id}"]')).to_have_count(0)
    assert account.key_client.get(f"/api/v1/sessions/{session_id}").status_code == 404


def test_create_a_schedule_see_its_next_runs_and_pause_it(signed_in_page, account):
    page = signed_in_page
    page.get_by_role("link", name="Schedules").click()
    expect(page.get_by_role("heading", name="Schedules", level=1)).to_be_visible()

    page.get_by_label("Name").fill("Morning digest")
    page.get_by_label("Task query").fill("Summarise yesterday's tasks")
    page.get_by_label("When").select_option(label="Every weekday at 09:00 (0 9 * * 1-5)")
    expect(page.get_by_label("Cron expression")).to_have_value("0 9 * * 1-5")
    page.get_by_label("Time zone").select_option("Europe/Paris")

    runs = page.locator("#schedule-next-runs li")
    expect(runs).to_have_count(5)
    expect(page.locator("#schedule-next-runs")).to_contain_text("Next runs in Europe/Paris:")
    shown = [runs.nth(i).locator("time").get_attribute("datetime") for i in range(5)]
    # The preview's instants are the ones the server's rules give, in the chosen zone.
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    tick = datetime.datetime.fromisoformat(shown[0].replace("Z", "+00:00")) - datetime.timedelta(seconds=1)
    expected = []
    for _ in range(5):
        tick = next_tick("0 9 * * 1-5", paris, tick)
        expected.append(tick.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    assert shown == expected
    for instant in shown:
        local = datetime.datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(paris)
        assert (local.hour, local.minute) == (9, 0) and local.weekday() < 5

    # A custom expression the preview cannot read says why, before anything is sent.
    page.get_by_label("Cron expression").fill("0 25 * * *")
    expect(page.locator("#schedule-next-runs")).to_contain_text("hour must be between 0 and 23")
    expect(page.get_by_label("When")).to_have_value("custom")
    page.get_by_label("Cron expression").fill("0 9 * * 1-5")

    page.get_by_role("button", name="Create schedule").click()
    expect(page).to_have_url(re.compile(r"#/schedules/[^/]+$"))
    schedule_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name="Morning digest", level=1)).to_be_visible()
    status = page.locator("#schedule-status")
    expect(status).to_contain_text("ACTIVE")
    stored = account.key_client.get(f"/api/v1/schedules/{schedule_id}").json()
    assert stored["timezone"] == "Europe/Paris" and stored["cron_expression"] == "0 9 * * 1-5"
    server_next = datetime.datetime.fromisoformat(stored["next_run_at"].replace("Z", "+00:00"))
    assert server_next == datetime.datetime.fromisoformat(expected[0].replace("Z", "+00:00"))

    page.get_by_role("button", name="Pause").click()
    expect(status).to_contain_text("PAUSED")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    assert account.key_client.get(f"/api/v1/schedules/{schedule_id}").json()["status"] == "PAUSED"

    page.get_by_role("link", name="All schedules").click()
    row = page.locator(f'tr[data-id="{schedule_id}"]')
    expect(row).to_contain_text("PAUSED")

    # Triggered while paused, it runs now; its run is listed. Resumed, it is active again.
    row.get_by_role("link", name="Morning digest").click()
    page.get_by_role("button", name="Trigger now").click()
    runs_table = page.get_by_role("table", name="Runs of this schedule, newest first")
    expect(runs_table.locator("tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Resume").click()
    expect(status).to_contain_text("ACTIVE")
    expect(page.locator("#schedule-detail-next-runs li")).to_have_count(5)

    page.get_by_role("button", name="Delete schedule").click()
    page.get_by_role("dialog", name="Delete this schedule?").get_by_role(
        "button", name="Delete schedule"
    ).click()
    expect(page).to_have_url(re.compile(r"#/schedules$"))
    expect(page.locator(f'tr[data-id="{schedule_id}"]')).to_have_count(0)
    assert account.key_client.get(f"/api/v1/schedules/{schedule_id}").status_code == 404


def test_create_a_key_shown_once_then_revoke_it(signed_in_page, account, console_stack):
    page = signed_in_page
    run_task(account, "What is 6 times 7?")
    page.get_by_role("link", name="Keys & usage").click()
    expect(page.get_by_role("heading", name="Keys & usage", level=1)).to_be_visible()

    # Usage per day: a chart, and the same figures as a table for screen readers.
    chart_area = page.locator(".usage-chart-area")
    expect(chart_area.locator("svg")).to_have_count(2)  # cost and tokens
    expect(chart_area.locator("svg").first.locator("rect")).to_have_count(14)
    usage_table = page.get_by_role("table", name="Usage and cost per day")
    expect(usage_table.locator("tbody tr")).to_have_count(14)
    expect(usage_table.locator("tbody tr").last).to_contain_text("1")

    page.get_by_label("Key name").fill("deploy bot")
    page.get_by_label("Scopes (optional)").select_option(["tasks:read", "tasks:write"])
    page.get_by_role("button", name="Create key").click()
    notice = page.get_by_role("region", name="New key: deploy bot")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("It is shown only once")
    value = notice.get_by_label("API key").input_value()
    assert re.fullmatch(r"sk_[0-9a-f]{64}", value), value
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    notice.get_by_role("button", name="Copy key").click()
    expect(notice.get_by_role("status")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == value

    with httpx.Client(base_url=console_stack.url, headers={"X-API-Key": value}, timeout=30) as client:
        assert client.get("/api/v1/tasks").status_code == 200
        assert client.get("/api/v1/sessions").status_code == 403  # only the scopes asked for

        notice.get_by_role("button", name="Done").click()
        expect(notice).to_be_hidden()
        assert value not in page.content()

        key_id = next(
            k["id"]
            for k in account.key_client.get("/api/v1/auth/api-keys").json()["keys"]
            if k["name"] == "deploy bot"
        )
        row = page.locator(f'tr[data-id="{key_id}"]')
        expect(row).to_contain_text("Active")
        expect(row).to_contain_text("tasks:read, tasks:write")

        # Revoking asks first.
        row.get_by_role("button", name="Revoke deploy bot").click()
        dialog = page.get_by_role("dialog", name="Revoke the key deploy bot?")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Revoke key").click()
        expect(row).to_contain_text("Revoked")
        expect(row.get_by_role("button", name="Revoke deploy bot")).to_have_count(0)
        wait_until(lambda: client.get("/api/v1/tasks").status_code == 401, timeout=60, what="the key refused")
