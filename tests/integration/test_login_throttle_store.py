"""Per-account login throttling on SQLite and on PostgreSQL: the store's counts and the engine's answers.

The engine's answers are compared for an email with an account and one without: the same errors,
the same messages, the same refusals, so the throttle reveals nothing about which emails exist.
"""

import asyncio

import argon2
import pytest

from orchestrator.domain.login_throttle import LoginBackoff
from orchestrator.engine.accounts import AccountEngine
from orchestrator.engine.accounts import RegistrationForm
from orchestrator.engine.login_throttle import email_key
from orchestrator.errors import LoginThrottledError
from orchestrator.errors import UnauthenticatedError
from orchestrator.passwords import PasswordHasher
from orchestrator.tokens import TokenIssuer
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import run

pytestmark = pytest.mark.integration

BACKOFF = LoginBackoff(after_failures=3, base_seconds=1.0, max_seconds=8.0)
PASSWORD = "correct horse battery"


def test_failures_count_per_email_refuse_for_a_doubling_time_and_a_clear_forgets_them(database_url):
    async def scenario(store):
        recorded = [await store.record_login_failure("hash-a", BACKOFF) for _ in range(6)]
        assert [failure.failures for failure in recorded] == [1, 2, 3, 4, 5, 6]
        assert [failure.refused_seconds for failure in recorded] == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0]
        # The refusal is measured on the database's clock: at most the last delay, and still running.
        assert 0.0 < await store.login_refusal_seconds("hash-a") <= 8.0
        # Another email is untouched.
        assert await store.login_refusal_seconds("hash-b") == 0.0
        assert (await store.record_login_failure("hash-b", BACKOFF)).failures == 1
        assert await store.login_refusal_seconds("hash-b") == 0.0

        await store.clear_login_failures("hash-a")
        assert await store.login_refusal_seconds("hash-a") == 0.0
        assert (await store.record_login_failure("hash-a", BACKOFF)).failures == 1
        # Nothing is a day old yet, so nothing is forgotten.
        assert await store.forget_login_failures() == 0

    run(database_url, scenario)


def test_concurrent_failures_of_one_email_are_each_counted(database_url):
    async def scenario(store):
        recorded = await asyncio.gather(*(store.record_login_failure("hash-c", BACKOFF) for _ in range(20)))
        assert sorted(failure.failures for failure in recorded) == list(range(1, 21))
        assert await store.login_refusal_seconds("hash-c") > 0.0

    run(database_url, scenario)


def _engine(store) -> AccountEngine:
    hasher = PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return AccountEngine(store, hasher, TokenIssuer("x" * 48, "taskgate"), BACKOFF)


async def _answer(engine: AccountEngine, email: str, password: str) -> tuple[str, str, int | None]:
    """Return how a login is answered: the error's kind, its message and its retry-after."""
    try:
        await engine.login(email, password)
    except (UnauthenticatedError, LoginThrottledError) as ex:
        return type(ex).__name__, ex.public_message, getattr(ex, "retry_after_seconds", None)
    return "ok", "", None


def test_the_engine_throttles_known_and_unknown_emails_alike_and_a_success_resets(database_url):
    async def scenario(store):
        engine = _engine(store)
        await engine.register(RegistrationForm("ada@example.com", PASSWORD))
        answers = {}
        for email in ("ada@example.com", "nobody@example.com"):
            answers[email] = [await _answer(engine, email, "wrong password") for _ in range(4)]
        assert answers["ada@example.com"] == answers["nobody@example.com"]
        failed = ("UnauthenticatedError", "Invalid email or password", None)
        assert answers["ada@example.com"][:3] == [failed] * 3
        kind, message, retry_after = answers["ada@example.com"][3]
        assert (kind, retry_after) == ("LoginThrottledError", 1)
        assert "try again later" in message

        # While refused, even the right password is refused (and costs no hashing).
        assert (await _answer(engine, "Ada@Example.com", PASSWORD))[0] == "LoginThrottledError"
        await _wait_until_not_refused(store, "ada@example.com")
        assert await _answer(engine, "ada@example.com", PASSWORD) == ("ok", "", None)
        # The success forgot the failures: the next wrong password is an ordinary failure again.
        assert await _answer(engine, "ada@example.com", "wrong password") == failed
        assert await _answer(engine, "ada@example.com", "wrong password") == failed

    run(database_url, scenario)


async def _wait_until_not_refused(store, email: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await store.login_refusal_seconds(email_key(email)) > 0:
        assert loop.time() < deadline, "the refusal did not end"
        await asyncio.sleep(0.05)
