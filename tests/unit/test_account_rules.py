"""Account field rules shared by the gateway and the orchestrator."""

import pytest

from taskgate import account_rules


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada.Lovelace+tag@Mail.Example.CO.UK ", "ada.lovelace+tag@mail.example.co.uk"),
        ("ü@exämple.de", "ü@exämple.de"),
        ("no-at-sign", None),
        ("a@b", None),
        ("a@@example.com", None),
        ("a b@example.com", None),
        (".a@example.com", None),
        ("a.@example.com", None),
        ("a..b@example.com", None),
        ("a@-example.com", None),
        ("a@example.com.", None),
        ("a@example.c0m", None),
        ("x" * 250 + "@example.com", None),
        (None, None),
        (42, None),
    ],
)
def test_emails_are_checked_and_lower_cased(raw, expected):
    assert account_rules.normalise_email(raw) == expected


def test_passwords_are_8_to_1024_characters():
    assert not account_rules.valid_password("1234567")
    assert account_rules.valid_password("12345678")
    assert account_rules.valid_password("x" * 1024)
    assert not account_rules.valid_password("x" * 1025)
    assert not account_rules.valid_password(12345678)


def test_usernames_names_and_the_default_username():
    assert account_rules.valid_username("ada_l.ovelace-1")
    assert not account_rules.valid_username("ada lovelace")
    assert not account_rules.valid_username("")
    assert account_rules.valid_name("Ada Lovelace")
    assert not account_rules.valid_name("Ada\u200bLovelace")
    assert not account_rules.valid_name("x" * 129)
    assert account_rules.default_username("ada+x@example.com") == "adax"
    assert account_rules.default_username("+++@example.com") == "user"
