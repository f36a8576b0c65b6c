"""Session titles: the one sanitising rule, used by the gateway's checks and the orchestrator alike.

A title is shown in lists and menus, so it is kept to one plain line: line breaks and tabs become
spaces, control, format (zero-width, bidirectional) and lone surrogate characters are removed,
runs of white space collapse to one space, and the ends are trimmed.
"""

import re
import unicodedata

MAX_TITLE_CHARACTERS = 60
TITLE_RULE = (
    f"must be 1..{MAX_TITLE_CHARACTERS} characters once control and zero-width characters are removed"
)
_ELLIPSIS = "…"
# Cc control, Cf format (zero-width space and joiners, BOM, soft hyphen, bidi overrides) and Cs
# lone surrogates are removed; Zl and Zp separate lines, like a line break.
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_LINE_CATEGORIES = frozenset({"Zl", "Zp"})
_WHITESPACE_RUN = re.compile(r"\s+")


def sanitise_title(raw: str) -> str:
    """Return a title as stored: one line, no control or zero-width characters, trimmed."""
    kept = []
    for character in raw:
        category = unicodedata.category(character)
        if character.isspace() or category in _LINE_CATEGORIES:
            kept.append(" ")
        elif category not in _REMOVED_CATEGORIES:
            kept.append(character)
    return _WHITESPACE_RUN.sub(" ", "".join(kept)).strip()


def valid_title(raw: str) -> str | None:
    """Return the sanitised title when it is 1..60 characters long, else None."""
    title = sanitise_title(raw)
    return title if 1 <= len(title) <= MAX_TITLE_CHARACTERS else None


def title_from_query(query: str) -> str:
    """Return the title a new session takes from its first query: sanitised, cut to 60 characters."""
    title = sanitise_title(query)
    if len(title) <= MAX_TITLE_CHARACTERS:
        return title
    return title[: MAX_TITLE_CHARACTERS - len(_ELLIPSIS)].rstrip() + _ELLIPSIS
