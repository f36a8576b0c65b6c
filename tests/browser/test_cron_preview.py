"""The schedule form's cron preview (gateway/console/js/cron.js) agrees with the server's ticks.

The browser computes a schedule's next runs before it is saved; the orchestrator computes them
with croniter (orchestrator/engine/schedule_rules.py). Both are run here on the same expressions,
zones and start times, daylight-saving changes included, and must give the same instants.
"""

import datetime
import pathlib
import zoneinfo

import pytest

from orchestrator.engine.schedule_rules import next_tick

CRON_MODULE = pathlib.Path(__file__).resolve().parents[2] / "gateway" / "console" / "js" / "cron.js"
ORIGIN = "http://cron.test"
RUNS = 6
EXPRESSIONS = [
    "* * * * *",
    "*/15 * * * *",
    "0 9 * * 1-5",
    "30 2 * * *",  # 02:30 does not exist on the day clocks go forward in Europe
    "30 1 * * *",  # 01:30 happens twice on the day clocks go back in New York
    "0 0 1 * *",
    "0 12 13 * 5",  # day of month and day of week both restricted: either matches
    "0 12 * * 0",
    "0 12 * * 7",
    "15,45 8-10 * jan,mar,dec mon-fri",
    "0 0 29 2 *",
    "5/20 */6 * * *",
    "0 9 1-7 * *",
    "*/30 * * * * 0",
    "0 0 * * * 15,45",
]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
STARTS = ["2026-03-28T22:10:05Z", "2026-10-31T23:59:59Z", "2026-11-01T04:00:00Z", "2026-12-31T23:45:00Z"]


@pytest.fixture(scope="module")
def cron_page(browser):
    """A page that has imported the console's cron module as window.cron."""
    context = browser.new_context()
    context.route(
        ORIGIN + "/cron.js",
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=CRON_MODULE.read_text()),
    )
    context.route(
        ORIGIN + "/",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>cron</title>"
        ),
    )
    page = context.new_page()
    page.goto(ORIGIN + "/")
    page.evaluate("async () => { window.cron = await import('/cron.js'); }")
    yield page
    context.close()


def browser_runs(page, expression: str, zone: str, start: str) -> list[str]:
    return page.evaluate(
        """([expression, zone, start, count]) => cron
            .nextRuns(cron.parseCron(expression), zone, new Date(start), count)
            .map((d) => d.toISOString())""",
        [expression, zone, start, RUNS],
    )


def server_runs(expression: str, zone: str, start: str) -> list[str]:
    tick = datetime.datetime.fromisoformat(start)
    runs = []
    for _ in range(RUNS):
        tick = next_tick(expression, zoneinfo.ZoneInfo(zone), tick)
        runs.append(tick.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    return runs


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_the_preview_gives_the_servers_next_runs(cron_page, expression, zone):
    for start in STARTS:
        assert browser_runs(cron_page, expression, zone, start) == server_runs(expression, zone, start), (
            expression,
            zone,
            start,
        )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "5 fields"),
        ("61 * * * *", "minute must be between 0 and 59"),
        ("0 9 * * mon-xyz", "not a valid day of week"),
        ("H * * * *", "random (R) and hashed (H)"),
        ("0 0 L * *", "cannot be previewed"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "invalid step"),
    ],
)
def test_expressions_the_preview_cannot_read_say_why(cron_page, expression, message):
    error = cron_page.evaluate(
        """(expression) => {
            try { cron.parseCron(expression); return null; } catch (ex) { return ex.message; }
        }""",
        expression,
    )
    assert error is not None and message in error, error


def test_an_expression_that_never_fires_has_no_runs(cron_page):
    assert browser_runs(cron_page, "0 0 30 2 *", "UTC", STARTS[0]) == []
