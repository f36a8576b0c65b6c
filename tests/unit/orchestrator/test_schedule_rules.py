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
