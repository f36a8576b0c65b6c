"""Fixtures for the console's browser tests: a real stack, registered users and a watched page.

The stack is the one the integration tests start (orchestrator on SQLite, gateway under gunicorn
over real HTTP). Each test gets a fresh browser context and page; when the test ends the page's
screenshot is saved under the output directory, and when it failed the browser's console log is
saved beside it. Every test also fails if the page reported a Content-Security-Policy violation
or an uncaught error.

Playwright's sync API keeps its own event loop marked as running on this thread between calls, so
``asyncio.run`` cannot run while it is started: the Playwright and browser fixtures are scoped to
this package and stop before the integration tests (which call ``asyncio.run``) begin.
"""

import importlib.util

import pytest

from tests.browser.artifacts import artifact_path
from tests.browser.artifacts import output_directory
from tests.browser.browser_launch import MISSING_PLAYWRIGHT
from tests.browser.browser_launch import launch_chromium
from tests.browser.browser_launch import start_playwright
from tests.browser.page_watch import PageWatch
from tests.integration.accounts import register
from tests.integration.processes import start_stack

# The test modules import Playwright and axe: without them, say what to install rather than let each
# module fail to import with a bare ModuleNotFoundError.
for _package in ("playwright", "axe_playwright_python"):
    if importlib.util.find_spec(_package) is None:
        raise pytest.UsageError(MISSING_PLAYWRIGHT.format(error=f"{_package} is not installed"))

# Long enough for a busy two-core machine; every wait ends as soon as its condition holds.
ACTION_TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1280, "height": 800}


def pytest_addoption(parser):
    parser.addoption(
        "--browser-output",
        default=None,
        help="directory for the browser tests' screenshots and console logs (default: test-output/browser)",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def browser_output(request):
    """The directory the browser tests' screenshots and console logs go to."""
    return output_directory(request.config.getoption("--browser-output"))


@pytest.fixture(scope="package")
def console_stack(tmp_path_factory):
    """An orchestrator (SQLite) and a gateway serving the console, shared by the browser tests."""
    running = start_stack(tmp_path_factory.mktemp("browser-stack"))
    yield running
    running.stop()


@pytest.fixture(scope="package")
def console_url(console_stack):
    """The console's address on the running gateway."""
    return console_stack.url + "/ui/"


@pytest.fixture()
def account(console_stack):
    """A user registered through the API for this test (password: ``PASSWORD``)."""
    user = register(console_stack.url)
    yield user
    user.close()


@pytest.fixture(scope="package")
def playwright():
    """Playwright's sync API, started once for the browser tests (its assertions wait as long as actions)."""
    running = start_playwright()
    from playwright.sync_api import expect

    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    yield running
    running.stop()


@pytest.fixture(scope="package")
def browser(playwright):
    """The system Chromium, headless."""
    launched = launch_chromium(playwright)
    yield launched
    launched.close()


@pytest.fixture()
def page_watch():
    """What the test's page reported: console messages, uncaught errors, CSP violations."""
    return PageWatch()


@pytest.fixture()
def page(request, browser, page_watch, browser_output):
    """A page in a fresh browser context, screenshotted at the end and checked for CSP violations.

    The screenshot is kept for every test; the console log only when the test failed or the page
    reported a problem (both named after the test).
    """
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page_watch.attach(context)
    opened = context.new_page()
    yield opened
    name = request.node.name
    try:
        opened.screenshot(path=artifact_path(browser_output, name, ".png"), full_page=True)
    finally:
        problems = page_watch.problems()
        call = getattr(request.node, "report_call", None)
        if problems or (call is not None and call.failed):
            artifact_path(browser_output, name, ".console.log").write_text(page_watch.log_text())
        context.close()
    if problems:
        pytest.fail("the page reported problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture()
def signed_in_page(page, console_url, account):
    """The test's page with the console open and ``account`` signed in by email and password."""
    from tests.browser.console_sign_in import sign_in

    sign_in(page, console_url, account.email)
    return page
