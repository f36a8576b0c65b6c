"""The login throttle's arithmetic: free failures, then a doubling refusal up to its cap."""

from orchestrator.domain.login_throttle import LoginBackoff
from orchestrator.domain.login_throttle import retry_after_seconds
from orchestrator.engine.login_throttle import email_key


def test_the_refusal_starts_at_the_threshold_doubles_and_stops_at_the_cap():
    backoff = LoginBackoff(after_failures=3, base_seconds=2.0, max_seconds=30.0)
    delays = [backoff.delay_after(failures) for failures in range(0, 10)]
    assert delays == [0.0, 0.0, 0.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.delay_after(10_000) == 30.0


def test_a_cap_below_the_base_caps_the_first_refusal_too():
    assert LoginBackoff(after_failures=1, base_seconds=10.0, max_seconds=5.0).delay_after(1) == 5.0


def test_the_defaults_refuse_after_five_failures_for_two_seconds_and_at_most_fifteen_minutes():
    backoff = LoginBackoff()
    assert backoff.delay_after(4) == 0.0
    assert backoff.delay_after(5) == 2.0
    assert backoff.delay_after(6) == 4.0
    assert backoff.delay_after(50) == 900.0


def test_retry_after_is_whole_seconds_never_early_and_at_least_one():
    assert [retry_after_seconds(value) for value in (0.0, 0.2, 1.0, 1.01, 29.5)] == [1, 1, 1, 2, 30]


def test_an_email_is_counted_under_its_normal_form_and_a_malformed_one_as_typed():
    assert email_key("Ada@Example.COM ") == email_key("ada@example.com")
    assert email_key("ada@example.com") != email_key("bob@example.com")
    assert email_key("  Not An Email ") == email_key("not an email")
    assert len(email_key("ada@example.com")) == 64 and "ada" not in email_key("ada@example.com")
