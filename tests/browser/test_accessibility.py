"""Every page of the console passes axe-core with no serious or critical violation, in the light
and the dark theme, and nothing on it overflows sideways at phone width (375 px).

Each page is shown with data in it (a finished task, a task waiting for approval, a session, a
schedule, keys and usage), so the checks see the lists, badges and forms people see.
"""

import pytest
from playwright.sync_api import expect

from tests.browser.accessibility import assert_accessible
from tests.browser.accessibility import assert_no_horizontal_overflow
from tests.browser.artifacts import artifact_path
from tests.browser.console_sign_in import sign_in
from tests.browser.test_sessions_schedules_keys import run_task
from tests.integration.processes import wait_until

PHONE = {"width": 375, "height": 800}


@pytest.fixture()
def console_data(account):
    """A finished task (and its session), a task waiting for approval and a schedule of the account."""
    finished = run_task(account, "What is the boiling point of water?")
    response = account.key_client.post(
        "/api/v1/tasks", json={"query": "Delete the old build artefacts", "require_approval": True}
    )
    assert response.status_code == 200, response.text
    waiting_id = response.json()["task_id"]
    wait_until(
        lambda: account.key_client.get(f"/api/v1/tasks/{waiting_id}").json().get("pending_approval"),
        timeout=60,
        what="the task to ask for approval",
    )
    response = account.key_client.post(
        "/api/v1/schedules",
        json={
            "name": "Nightly report",
            "cron_expression": "0 2 * * *",
            "task_query": "Report",
            "timezone": "UTC",
        },
    )
    assert response.status_code == 201, response.text
    return {
        "task": finished["task_id"],
        "session": finished["session_id"],
        "schedule": response.json()["schedule_id"],
    }


def console_pages(data: dict) -> list[tuple[str, str]]:
    """Return each page to check as (name, hash route)."""
    return [
        ("tasks", "#/tasks"),
        ("task", f"#/tasks/{data['task']}"),
        ("approvals", "#/approvals"),
        ("sessions", "#/sessions"),
        ("session", f"#/sessions/{data['session']}"),
        ("schedules", "#/schedules"),
        ("schedule", f"#/schedules/{data['schedule']}"),
        ("keys", "#/keys"),
    ]


def settle(page) -> None:
    """Wait until the page shows its heading and no part of it is still loading."""
    expect(page.locator("main h1").first).to_be_visible()
    expect(page.locator("main [aria-busy='true']")).to_have_count(0)


def check(page, name: str, theme: str, output, test_name: str) -> None:
    """Run axe on the page as shown, and at phone width check it also has no sideways overflow."""
    settle(page)
    assert_accessible(page, f"{name} ({theme} theme)")
    page.set_viewport_size(PHONE)
    settle(page)
    assert_no_horizontal_overflow(page, f"{name} at {PHONE['width']} px ({theme} theme)")
    page.screenshot(path=artifact_path(output, f"{test_name}-{name}-phone", ".png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_is_accessible_and_fits_a_phone(
    page, console_url, account, console_data, theme, browser_output
):
    test_name = f"test_accessibility-{theme}"
    page.goto(console_url)
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    toggle = page.get_by_role("button", name="Dark theme")
    if theme == "dark":
        toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true" if theme == "dark" else "false")
    expect(page.locator("html")).to_have_attribute("data-theme", theme)
    check(page, "signin", theme, browser_output, test_name)

    sign_in(page, console_url, account.email)
    for name, route in console_pages(console_data):
        page.goto(console_url + route)
        expect(page.locator("html")).to_have_attribute("data-theme", theme)
        check(page, name, theme, browser_output, test_name)

    # A confirmation dialog (here: revoking the account's key) passes too, closes on Escape without
    # doing anything, and gives the focus back to the button that opened it.
    revoke = page.get_by_role("button", name="Revoke default")
    revoke.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Revoke the key default?")
    expect(dialog).to_be_visible()
    assert_accessible(page, f"the revoke dialog ({theme} theme)")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(revoke).to_be_focused()
    assert account.key_client.get("/api/v1/auth/api-keys").json()["keys"][0]["is_active"] is True
