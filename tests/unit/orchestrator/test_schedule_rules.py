"""The schedule rules: cron expressions, IANA zones, the shortest interval and the next tick."""

import datetime

import pytest

from orchestrator.engine import schedule_rules
from orchestrator.errors import InvalidArgumentError

UTC = datetime.UTC


def at(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize("expression", ["0 9 * * *", "*/5 * * * *", "0 0 1 1 *", "* * * * * */10"])
def test_five_and_six_field_cron_expressions_are_accepted(expression):
    assert schedule_rules.check_cron(f"  {expression} ") == expression


@pytest.mark.parametrize(
    "expression", ["", "   ", "x", "61 * * * *", "* * * *", "* * * * * * * *", "@reboot"]
)
def test_malformed_cron_expressions_are_refused_naming_the_field(expression):
    with pytest.raises(InvalidArgumentError) as caught:
        schedule_rules.check_cron(expression)
    assert caught.value.field == "cron_expression"


@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
def test_iana_zones_are_accepted(name):
    assert schedule_rules.check_timezone(name).key == name


@pytest.mark.parametrize(
    "name", ["", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "Europe/", "x" * 100]
)
def test_anything_else_is_not_a_zone(name):
    with pytest.raises(InvalidArgumentError) as caught:
        schedule_rules.check_timezone(name)
    assert caught.value.field == "timezone"


def test_the_next_tick_is_computed_in_the_zone_and_returned_in_utc():
    paris = schedule_rules.check_timezone("Europe/Paris")
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer (the change is on March 29, 2026).
    assert schedule_rules.next_tick("0 9 * * *", paris, at(2026, 3, 28, 12)) == at(2026, 3, 29, 7)
    assert schedule_rules.next_tick("0 9 * * *", paris, at(2026, 3, 27, 12)) == at(2026, 3, 28, 8)
    assert schedule_rules.next_tick("0 9 * * *", paris, at(2026, 3, 28, 12)).tzinfo == UTC


def test_the_next_tick_is_strictly_after():
    utc = schedule_rules.check_timezone("UTC")
    assert schedule_rules.next_tick("0 * * * *", utc, at(2026, 1, 1, 10)) == at(2026, 1, 1, 11)


def test_the_shortest_interval_between_ticks():
    utc = schedule_rules.check_timezone("UTC")
    assert schedule_rules.shortest_interval("*/5 * * * *", utc, at(2026, 1, 1)) == 300
    assert schedule_rules.shortest_interval("* * * * * *", utc, at(2026, 1, 1)) == 1
    # Irregular: 10:00 and 10:01 are a minute apart even though most gaps are an hour.
    assert schedule_rules.shortest_interval("0,1 * * * *", utc, at(2026, 1, 1)) == 60


def test_schedules_running_more_often_than_the_minimum_are_refused():
    utc = schedule_rules.check_timezone("UTC")
    schedule_rules.check_interval("* * * * *", utc, at(2026, 1, 1), 60)
    with pytest.raises(InvalidArgumentError) as caught:
        schedule_rules.check_interval("* * * * * */30", utc, at(2026, 1, 1), 60)
    assert caught.value.field == "cron_expression"


def test_a_run_missed_by_several_ticks_is_followed_by_the_first_tick_after_now():
    utc = schedule_rules.check_timezone("UTC")
    due = at(2026, 1, 1, 10, 0)
    now = at(2026, 1, 1, 10, 7, 30)
    assert schedule_rules.next_after_due("* * * * *", utc, due, now) == at(2026, 1, 1, 10, 8)
    # On time: the tick after the due one.
    assert schedule_rules.next_after_due("* * * * *", utc, due, due) == at(2026, 1, 1, 10, 1)


def test_names_descriptions_and_budgets():
    assert schedule_rules.check_text("name", "  Daily  ", 200, True) == "Daily"
    assert schedule_rules.check_text("description", "", 10, False) == ""
    with pytest.raises(InvalidArgumentError):
        schedule_rules.check_text("name", "   ", 200, True)
    with pytest.raises(InvalidArgumentError):
        schedule_rules.check_text("name", "x" * 201, 200, True)
    assert schedule_rules.check_budget(None) is None
    assert schedule_rules.check_budget(0.5) == 0.5
    with pytest.raises(InvalidArgumentError):
        schedule_rules.check_budget(0)


@pytest.mark.parametrize(
    ("expression", "token", "field"),
    [
        ("R * * * *", "R", "minute"),
        ("r * * * *", "r", "minute"),
        ("R(0-59) * * * *", "R(0-59)", "minute"),
        ("R/5 * * * *", "R/5", "minute"),
        ("0 R * * *", "R", "hour"),
        ("0 0 R * *", "R", "day of month"),
        ("0 0 * * R", "R", "day of week"),
        ("* * * * * R", "R", "second"),
        ("H * * * *", "H", "minute"),
        ("H(0-5) * * * *", "H(0-5)", "minute"),
        ("0 1,H * * *", "H", "hour"),
        ("H/5 * * * *", "H/5", "minute"),
    ],
)
def test_random_and_hashed_tokens_are_refused_naming_the_token(expression, token, field):
    with pytest.raises(InvalidArgumentError) as caught:
        schedule_rules.check_cron(expression)
    assert caught.value.field == "cron_expression"
    assert caught.value.public_message == (
        "cron_expression must not use a random (R) or hashed (H) token:"
        f" {token!r} in the {field} field picks its time anew at every run"
    )


@pytest.mark.parametrize(
    "expression", ["0 9 * mar-apr thu", "0 9 * * fri", "0 9 * MAR THU-FRI", "0 0 L * *", "0 0 ? * mon#2"]
)
def test_month_and_weekday_names_are_not_taken_for_tokens(expression):
    assert schedule_rules.check_cron(expression) == expression


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *", "* * 31 2 *"])
def test_an_expression_that_matches_no_date_is_refused_wherever_a_tick_is_computed(expression):
    utc = schedule_rules.check_timezone("UTC")
    assert schedule_rules.check_cron(expression) == expression
    for compute in (
        lambda: schedule_rules.next_tick(expression, utc, at(2026, 1, 1)),
        lambda: schedule_rules.shortest_interval(expression, utc, at(2026, 1, 1)),
        lambda: schedule_rules.check_interval(expression, utc, at(2026, 1, 1), 60),
        lambda: schedule_rules.next_after_due(expression, utc, at(2026, 1, 1), at(2026, 1, 2)),
    ):
        with pytest.raises(InvalidArgumentError) as caught:
            compute()
        assert (caught.value.field, caught.value.public_message) == (
            "cron_expression",
            "cron_expression matches no date (such as day 30 of February)",
        )


@pytest.mark.parametrize(
    ("expression", "start", "shortest"),
    [
        # A step that does not divide its field wraps short: 56 → 0 is 4 minutes.
        ("*/7 * * * *", at(2026, 1, 1, 10, 1), 240),
        ("*/25 * * * *", at(2026, 1, 1, 10, 1), 600),
        ("* * * * * */13", at(2026, 1, 1), 8),
        ("0 */7 * * *", at(2026, 1, 1, 1), 3 * 3600),
        ("5-55/20 * * * *", at(2026, 1, 1), 20 * 60),
        ("0,59 * * * *", at(2026, 1, 1, 10, 30), 60),
        # The day boundary: 23:59 and 00:00 the next day.
        ("0,59 0,23 * * *", at(2026, 1, 1, 12), 60),
        # Only where a month of 31 days meets the next one: 31st 23:59, 1st 00:00.
        ("0,59 0,23 1,31 * *", at(2026, 2, 2), 60),
        # Only across a year: December 31st 23:00 and January 1st 00:00.
        ("0 0,23 1,31 1,12 *", at(2026, 1, 2), 3600),
        ("0 0 */3 * *", at(2026, 1, 2), 86400),
        # A day of the month or of the week (croniter's OR): Friday the 12th, then Saturday the 13th.
        ("0 0 13 * 5", at(2026, 1, 1), 86400),
        ("0 0 29 2 *", at(2026, 1, 1), (4 * 365 + 1) * 86400),
        ("0 0 L * *", at(2026, 1, 1), 28 * 86400),
    ],
)
def test_the_shortest_interval_sees_irregular_gaps(expression, start, shortest):
    utc = schedule_rules.check_timezone("UTC")
    assert schedule_rules.shortest_interval(expression, utc, start) == shortest


def test_irregular_gaps_under_the_minimum_are_refused():
    utc = schedule_rules.check_timezone("UTC")
    schedule_rules.check_interval("*/7 * * * *", utc, at(2026, 1, 1), 240)
    for expression in ("*/7 * * * *", "0,59 0,23 1,31 * *"):
        with pytest.raises(InvalidArgumentError) as caught:
            schedule_rules.check_interval(expression, utc, at(2026, 1, 1), 300)
        assert caught.value.public_message == "cron_expression must not run more often than every 300 seconds"
