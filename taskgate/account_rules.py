"""What makes an account's fields acceptable, checked alike by the gateway and the orchestrator.

Emails are compared case-insensitively, so they are kept in lower case; a password is at least 8
characters (and at most 1024, so nobody makes the server hash megabytes).
"""

import re
import unicodedata

MAX_EMAIL_CHARACTERS = 254
MIN_PASSWORD_CHARACTERS = 8
MAX_PASSWORD_CHARACTERS = 1024
MAX_USERNAME_CHARACTERS = 64
MAX_NAME_CHARACTERS = 128
EMAIL_RULE = "must be a well-formed email address such as ada@example.com"
PASSWORD_RULE = f"must be {MIN_PASSWORD_CHARACTERS}..{MAX_PASSWORD_CHARACTERS} characters"
USERNAME_RULE = f"must be 1..{MAX_USERNAME_CHARACTERS} characters of letters, digits, . _ -"
NAME_RULE = f"must be at most {MAX_NAME_CHARACTERS} printable characters"
ROLES = ("user", "admin", "owner")
# Longer than any refresh token the orchestrator issues; anything longer is refused before it is hashed.
MAX_REFRESH_TOKEN_CHARACTERS = 128
# One @, no white space, a dot in the domain, no dot at either end of a part, no empty label.
_EMAIL = re.compile(
    r"^(?!\.)[^\s\x00-\x1f\x7f@\"(),:;<>\[\\\]]+(?<!\.)@(?=.{1,253}$)(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}$"
)
_USERNAME = re.compile(r"^[\w.\-]{1,64}$")


def normalise_email(raw: object) -> str | None:
    """Return a well-formed email in lower case, or None."""
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    if (
        len(email) > MAX_EMAIL_CHARACTERS
        or ".." in email
        or not printable(email)
        or _EMAIL.match(email) is None
    ):
        return None
    return email


def valid_password(raw: object) -> bool:
    """Whether a password has an acceptable length."""
    return isinstance(raw, str) and MIN_PASSWORD_CHARACTERS <= len(raw) <= MAX_PASSWORD_CHARACTERS


def valid_username(raw: object) -> bool:
    """Whether a username is 1..64 letters, digits, dots, underscores or hyphens."""
    return isinstance(raw, str) and _USERNAME.match(raw) is not None


def valid_name(raw: object) -> bool:
    """Whether a display name is at most 128 characters without control or format characters."""
    return isinstance(raw, str) and len(raw) <= MAX_NAME_CHARACTERS and printable(raw)


def printable(text: str, line_breaks: bool = False) -> bool:
    """Whether a text has no control, format or surrogate characters (but line breaks and tabs if allowed).

    Such characters hide text from readers, and PostgreSQL refuses NUL in text outright.
    """
    allowed = "\n\r\t" if line_breaks else ""
    return not any(
        unicodedata.category(character) in ("Cc", "Cf", "Cs") and character not in allowed
        for character in text
    )


def default_username(email: str) -> str:
    """Return the username of an account registered without one: the email's local part, cleaned."""
    local = re.sub(r"[^\w.\-]", "", email.split("@", 1)[0])[:MAX_USERNAME_CHARACTERS]
    return local or "user"
