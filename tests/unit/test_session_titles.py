"""Session titles: one plain line, without control or zero-width characters, 1..60 characters."""

import pytest

from taskgate.session_titles import MAX_TITLE_CHARACTERS
from taskgate.session_titles import sanitise_title
from taskgate.session_titles import title_from_query
from taskgate.session_titles import valid_title


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Trip plan  ", "Trip plan"),
        ("Trip\nplan\r\n\tnotes", "Trip plan notes"),
        ("Trip    plan", "Trip plan"),
        ("Tr\u200bip\u200c pl\u200dan\ufeff", "Trip plan"),
        ("\u202eTrip plan\u202c", "Trip plan"),
        ("Trip\x00\x07\x1b plan\x7f", "Trip plan"),
        ("soft\u00adhyphen", "softhyphen"),
        ("lone \ud800surrogate", "lone surrogate"),
        ("line\u2028separated\u2029paragraphs", "line separated paragraphs"),
        ("no\u00a0break", "no break"),
        ("Café 東京 ✈️", "Café 東京 ✈️"),
        ("\u200b\u200b", ""),
    ],
)
def test_sanitising_keeps_one_plain_trimmed_line(raw, expected):
    assert sanitise_title(raw) == expected


def test_a_valid_title_is_1_to_60_characters_once_sanitised():
    assert valid_title("  Trip\u200b plan ") == "Trip plan"
    assert valid_title("é" * MAX_TITLE_CHARACTERS) == "é" * MAX_TITLE_CHARACTERS
    assert valid_title("x" * MAX_TITLE_CHARACTERS + "\u200b\u200b") == "x" * MAX_TITLE_CHARACTERS
    for invalid in ("", "   ", "\u200b\ufeff", "\x00\n\t", "x" * (MAX_TITLE_CHARACTERS + 1)):
        assert valid_title(invalid) is None, repr(invalid)


def test_a_new_sessions_title_is_its_first_query_sanitised_and_shortened():
    assert title_from_query("What is\n2+2?") == "What is 2+2?"
    long_query = "word " * 30
    title = title_from_query(long_query)
    assert len(title) == MAX_TITLE_CHARACTERS
    assert title.endswith("…") and title.startswith("word word")
    assert title_from_query("x" * MAX_TITLE_CHARACTERS) == "x" * MAX_TITLE_CHARACTERS
