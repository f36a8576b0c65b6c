"""Headless Chromium for the browser tests: Debian's ``chromium`` package driven by Playwright.

Playwright's own browser builds are never downloaded: the tests point Playwright at the system
browser. When either is missing the tests fail with a message saying what to install, rather than
skip, so a CI run without them cannot pass by running nothing.
"""

import shutil

import pytest

MISSING_CHROMIUM = (
    "the browser tests need Debian's chromium package (apt-get install chromium fonts-liberation); "
    "`chromium` is not on PATH"
)
MISSING_PLAYWRIGHT = (
    "the browser tests need playwright and axe-playwright-python (pip install -e '.[test]'): {error}"
)


def chromium_path() -> str:
    """Return the system Chromium's path; fail the test when it is not installed."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(MISSING_CHROMIUM, pytrace=False)
    return path


def start_playwright():
    """Start Playwright's sync API (conftest.py has checked it is installed)."""
    from playwright.sync_api import sync_playwright

    return sync_playwright().start()


def launch_chromium(playwright):
    """Launch the system Chromium headless."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True)
