"""Search input: a user's text becomes words, and words become an FTS5 query that is never syntax."""

import pytest

from orchestrator.engine.sessions import search_terms
from orchestrator.errors import InvalidArgumentError
from orchestrator.store.sqlite_search import fts_query


def test_terms_are_the_distinct_words_lower_cased_in_order():
    assert search_terms("Quokka migration, QUOKKA routes!") == ["quokka", "migration", "routes"]
    assert search_terms("snake_case 42x Ünïcode") == ["snake", "case", "42x", "ünïcode"]


@pytest.mark.parametrize("text", ["", "   ", "?!* -- ()", "x" * 257])
def test_text_without_a_word_or_too_long_is_invalid(text):
    with pytest.raises(InvalidArgumentError):
        search_terms(text)


def test_every_term_is_quoted_so_fts5_operators_are_plain_words():
    assert fts_query(["zanzibar", "or", "near"]) == '"zanzibar" "or" "near"'
    assert fts_query(['say "hi"']) == '"say ""hi"""'
