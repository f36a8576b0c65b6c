"""The console's tasks and approvals as a person uses them, in Chromium against a real stack.

Sign in (password, key, a wrong password); submit a task and watch it stream to completion; see
the task list change a row live; approve a waiting task from the inbox and see it finish; reject
and cancel ask first. Tasks that must wait are submitted with ``require_approval``, so nothing
here depends on timing: every wait polls until the page shows what it should.
"""

import json
import re

from playwright.sync_api import expect

from tests.browser.accessibility import assert_accessible
from tests.browser.accessibility import assert_no_horizontal_overflow
from tests.integration.accounts import PASSWORD
from tests.integration.processes import wait_until

PHONE = {"width": 375, "height": 800}
FINISHED = 60_000


def submit_waiting_task(account, query: str) -> dict:
    """Submit a task through the API that waits for an approval; return it once it waits."""
    client = account.key_client
    response = client.post("/api/v1/tasks", json={"query": query, "require_approval": True})
    assert response.status_code == 200, response.text
    task = response.json()

    def waiting():
        body = client.get(f"/api/v1/tasks/{task['task_id']}").json()
        return body if body.get("pending_approval") else None

    return wait_until(waiting, timeout=60, what="the task to wait for its approval")


def task_status(account, task_id: str) -> str:
    return account.key_client.get(f"/api/v1/tasks/{task_id}").json()["status"]


def stored_credential(page) -> dict:
    return json.loads(page.evaluate("() => sessionStorage.getItem('taskgate.credential')"))


def store_credential(page, credential: dict) -> None:
    page.evaluate("(value) => sessionStorage.setItem('taskgate.credential', value)", json.dumps(credential))


def detail(page, name: str):
    """The value (dd) of a field of the task page's details list."""
    term = page.locator(".details dt", has_text=re.compile(f"^{name}$"))
    return term.locator("xpath=following-sibling::dd[1]")


def test_sign_in_with_a_password_or_a_key_and_a_wrong_password_says_why(page, console_url, account):
    page.goto(console_url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert_accessible(page, "the sign-in page")
    page.set_viewport_size(PHONE)
    assert_no_horizontal_overflow(page, "the sign-in page at phone width")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Invalid credentials")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()
    # The credential lives in this tab's sessionStorage, never in a cookie or localStorage.
    assert page.context.cookies() == []
    assert page.evaluate("() => Object.keys(localStorage).filter((k) => k.includes('credential'))") == []
    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # An access token the gateway refuses is refreshed once, and the rotated pair is kept.
    held = stored_credential(page)
    assert held["kind"] == "token"
    refused = dict(held, accessToken=held["accessToken"][:-6] + "AAAAAA")
    store_credential(page, refused)
    page.reload()
    expect(page.get_by_text("No tasks yet.")).to_be_visible()
    rotated = stored_credential(page)
    assert rotated["refreshToken"] != held["refreshToken"]
    assert rotated["accessToken"] not in (held["accessToken"], refused["accessToken"])
    # When refreshing fails too (a spent refresh token), the console signs out.
    store_credential(page, refused)
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('taskgate.credential')") is None

    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill("sk_" + "0" * 64)
    page.get_by_role("button", name="Use API key").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid API key")
    # A gateway without the task feed (404): the pages still work and the header says so.
    page.route("**/api/v1/stream/tasks", lambda route: route.fulfill(status=404, json={"error": "Not Found"}))
    page.get_by_label("API key").fill(account.api_key)
    page.get_by_role("button", name="Use API key").click()
    expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Live updates unavailable")).to_be_visible()
    expect(page.get_by_text("No tasks yet.")).to_be_visible()


def test_a_submitted_task_streams_to_completion_on_its_page(signed_in_page, account):
    page = signed_in_page
    page.get_by_label("Query", exact=True).fill("What is 2+2?")
    page.get_by_role("button", name="Submit task").click()
    expect(page.get_by_role("heading", name="Task", exact=True)).to_be_visible()
    task_id = page.url.rsplit("/", 1)[-1]
    assert task_id.startswith("task-")

    events = page.get_by_role("list", name="Events")
    expect(events.get_by_text("WORKFLOW_COMPLETED", exact=True)).to_be_visible(timeout=FINISHED)
    expect(events.get_by_text("WORKFLOW_STARTED", exact=True)).to_be_visible()
    expect(page.get_by_text("Stream ended: the task is finished.")).to_be_visible()
    expect(detail(page, "Status")).to_have_text("COMPLETED")
    result = account.key_client.get(f"/api/v1/tasks/{task_id}").json()["result"]
    assert result
    expect(detail(page, "Result")).to_have_text(result)
    expect(detail(page, "Tokens")).not_to_have_text(re.compile(r"^0 "))
    timeline = page.get_by_role("table", name="Timeline of the task's events")
    expect(timeline).to_contain_text("WORKFLOW_COMPLETED")
    # A finished task cannot be steered.
    for control in ("Pause", "Resume", "Cancel"):
        expect(page.get_by_role("button", name=control, exact=True)).to_be_disabled()
    assert_accessible(page, "a finished task's page")
    page.set_viewport_size(PHONE)
    assert_no_horizontal_overflow(page, "a finished task's page at phone width")


def first_frames(body: bytes, events: int) -> tuple[bytes, str]:
    """Return an event stream cut after its first ``events`` events, and the last id it carries."""
    kept, last_id = [], None
    for frame in body.split(b"\n\n"):
        kept.append(frame)
        ids = [line[4:] for line in frame.split(b"\n") if line.startswith(b"id: ")]
        if ids:
            last_id = ids[-1].decode()
            events -= 1
            if events == 0:
                break
    return b"\n\n".join(kept) + b"\n\n", last_id


def test_the_task_page_resumes_its_stream_after_a_drop_without_gap_or_duplicate(signed_in_page, account):
    page = signed_in_page
    task = account.key_client.post("/api/v1/tasks", json={"query": "What is 3+3?"}).json()
    wait_until(lambda: task_status(account, task["task_id"]) == "COMPLETED", timeout=60, what="the task")
    stored = account.key_client.get(f"/api/v1/tasks/{task['task_id']}/events", params={"limit": 200}).json()
    listed = [str(e["seq"]) for e in stored["events"] if e["type"] not in ("LLM_PARTIAL", "STREAM_END")]

    # The first connection ends after three events, as a dropped one would; the next is let through.
    resume_points = []
    cut = {}

    def drop_the_first_connection(route):
        resume_points.append(route.request.headers.get("last-event-id"))
        if len(resume_points) > 1:
            route.continue_()
            return
        cut["body"], cut["last_id"] = first_frames(route.fetch().body(), 3)
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=cut["body"])

    page.route("**/api/v1/stream/sse?*", drop_the_first_connection)
    page.goto(page.url.split("#")[0] + f"#/tasks/{task['task_id']}")
    expect(page.get_by_text("Stream ended: the task is finished.")).to_be_visible(timeout=FINISHED)
    assert resume_points == [None, cut["last_id"]]
    shown = (
        page.get_by_role("list", name="Events")
        .locator("li")
        .evaluate_all("(items) => items.map((item) => item.dataset.seq)")
    )
    assert shown == listed


def test_the_task_list_changes_a_row_live_without_reloading(signed_in_page, account):
    page = signed_in_page
    expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Live updates unavailable")).to_be_hidden()
    page.evaluate("() => { window.notReloaded = true; }")

    task = submit_waiting_task(account, "Summarise the quarterly report")
    row = page.locator(f'tr[data-id="{task["task_id"]}"]')
    expect(row).to_contain_text("Summarise the quarterly report")
    expect(row).to_contain_text("RUNNING")
    expect(page.get_by_role("link", name=re.compile(r"Approvals\s+1 pending"))).to_be_visible()
    assert_accessible(page, "the task list")

    response = account.key_client.post(
        "/api/v1/approvals/decision",
        json={
            "workflow_id": task["task_id"],
            "approval_id": task["pending_approval"]["approval_id"],
            "approved": True,
        },
    )
    assert response.status_code == 200, response.text
    expect(row).to_contain_text("COMPLETED", timeout=FINISHED)
    expect(row.get_by_role("progressbar")).to_have_attribute("value", "1")
    expect(page.locator("#approvals-count")).to_be_hidden()
    assert page.evaluate("() => window.notReloaded === true")

    # Filters: a status the task does not have empties the list; the task's own session finds it.
    page.get_by_label("Status").select_option("RUNNING")
    expect(page.get_by_text("No tasks match these filters.")).to_be_visible()
    page.get_by_label("Status").select_option("")
    page.get_by_label("Session id", exact=True).fill(task["session_id"])
    page.get_by_role("button", name="Apply filters").click()
    expect(row).to_contain_text("COMPLETED")
    expect(page.get_by_role("navigation", name="Pages")).to_contain_text("1–1 of 1")

    # The dark theme: chosen with the toggle, remembered across a reload, and as readable.
    page.get_by_role("button", name="Dark theme").click()
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(row).to_contain_text("COMPLETED")
    assert_accessible(page, "the task list in the dark theme")
    page.set_viewport_size(PHONE)
    assert_no_horizontal_overflow(page, "the task list at phone width")


def test_approving_from_the_inbox_lets_the_task_finish(signed_in_page, account):
    page = signed_in_page
    task = submit_waiting_task(account, "Deploy the staging build")
    page.get_by_role("link", name=re.compile("^Approvals")).click()
    card = page.locator(f'li[data-id="{task["pending_approval"]["approval_id"]}"]')
    expect(card.get_by_role("heading")).to_have_text("Deploy the staging build")
    expect(card).to_contain_text('"action": "run_task"')
    assert_accessible(page, "the approvals inbox")
    page.set_viewport_size(PHONE)
    assert_no_horizontal_overflow(page, "the approvals inbox at phone width")

    card.get_by_label("Feedback (optional)").fill("Go ahead")
    card.get_by_role("button", name="Approve", exact=True).click()
    expect(card).to_be_hidden()
    history = page.get_by_role("table", name="Decided approvals, newest first")
    decided = history.locator(f'tr[data-id="{task["pending_approval"]["approval_id"]}"]')
    expect(decided).to_contain_text("approved")
    expect(decided).to_contain_text(f"you ({account.email})")
    expect(decided).to_contain_text("Go ahead")

    decided.get_by_role("link").click()
    expect(detail(page, "Status")).to_have_text("COMPLETED", timeout=FINISHED)

    # Approve with a modified action: the task answers the approver's version.
    modified = submit_waiting_task(account, "What is 2+2?")
    page.get_by_role("link", name=re.compile("^Approvals")).click()
    card = page.locator(f'li[data-id="{modified["pending_approval"]["approval_id"]}"]')
    card.get_by_text("Modify the action").click()
    card.get_by_label("Modified action").fill("What is 5+5?")
    card.get_by_role("button", name="Approve modified action").click()
    expect(card).to_be_hidden()
    decisions = account.key_client.get("/api/v1/approvals", params={"status": "decided"}).json()
    by_id = {approval["approval_id"]: approval for approval in decisions["approvals"]}
    assert by_id[modified["pending_approval"]["approval_id"]]["modified_action"] == "What is 5+5?"


def test_reject_and_cancel_ask_first_and_pause_and_resume_follow_the_task(signed_in_page, account):
    page = signed_in_page
    rejected = submit_waiting_task(account, "Delete the old backups")
    page.get_by_role("link", name=re.compile("^Approvals")).click()
    card = page.locator(f'li[data-id="{rejected["pending_approval"]["approval_id"]}"]')
    card.get_by_role("button", name="Reject").click()
    dialog = page.get_by_role("dialog", name="Reject this action?")
    expect(dialog).to_be_visible()
    assert_accessible(page, "the reject dialog")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(card.get_by_role("button", name="Reject")).to_be_focused()
    assert task_status(account, rejected["task_id"]) == "RUNNING"
    card.get_by_label("Feedback (optional)").fill("Keep them a month")
    card.get_by_role("button", name="Reject").click()
    dialog.get_by_role("button", name="Reject").click()
    expect(card).to_be_hidden()
    wait_until(
        lambda: task_status(account, rejected["task_id"]) == "FAILED", timeout=60, what="the rejection"
    )

    cancelled = submit_waiting_task(account, "Email every customer")
    page.goto(page.url.split("#")[0] + f"#/tasks/{cancelled['task_id']}")
    expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_enabled()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_be_disabled()
    control = account.key_client.get(f"/api/v1/tasks/{cancelled['task_id']}/control-state").json()
    assert control["is_paused"] is True
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_be_enabled()
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_disabled()
    page.get_by_role("button", name="Cancel", exact=True).click()
    dialog = page.get_by_role("dialog", name="Cancel this task?")
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    expect(dialog).to_be_hidden()
    assert task_status(account, cancelled["task_id"]) == "RUNNING"
    page.get_by_role("button", name="Cancel", exact=True).click()
    dialog.get_by_role("button", name="Cancel task").click()
    expect(detail(page, "Status")).to_have_text("CANCELLED", timeout=FINISHED)
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_disabled()
