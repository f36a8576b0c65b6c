"""Signing in to the console the way a person does: the sign-in form, by its labels."""

from playwright.sync_api import expect

from tests.integration.accounts import PASSWORD


def sign_in(page, console_url: str, email: str, password: str = PASSWORD) -> None:
    """Open the console, sign in with email and password, and wait until the shell shows Sign out."""
    page.goto(console_url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
