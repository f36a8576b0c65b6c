"""Account and API-key request input of API.md, checked field by field into gRPC requests.

Every invalid field is reported at once (400 ``validation_failed``); a JSON null counts as an
absent optional field. A login's email and password are only checked for being there: whether
they are right is the orchestrator's answer, the same 401 whatever was wrong.
"""

import datetime
import re
from typing import Any

from google.protobuf import timestamp_pb2

from gateway.validation import FieldErrors
from taskgate import account_rules
from taskgate.account_rules import MAX_REFRESH_TOKEN_CHARACTERS
from taskgate.account_rules import printable
from taskgate.api_key_rules import MAX_DESCRIPTION_CHARACTERS
from taskgate.api_key_rules import MAX_NAME_CHARACTERS
from taskgate.api_key_rules import MAX_RATE_LIMIT
from taskgate.api_key_rules import MAX_TOKENS_PER_MINUTE
from taskgate.api_key_rules import MAX_USD_PER_DAY
from taskgate.api_key_rules import SCOPES_RULE
from taskgate.api_key_rules import valid_scopes
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.rfc3339 import parse_datetime
from taskgate.rfc3339 import utc_now

RATE_LIMIT_FIELDS = ("rate_limit_per_minute", "rate_limit_per_hour")
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$")


def register_request(body: dict[str, Any]) -> auth_pb2.RegisterUserRequest:
    """Check a ``POST /api/v1/auth/register`` body and build the RegisterUser request."""
    errors = FieldErrors()
    email = account_rules.normalise_email(body.get("email"))
    if email is None:
        errors.add("email", f"is required and {account_rules.EMAIL_RULE}")
    password = body.get("password")
    if not account_rules.valid_password(password):
        errors.add("password", f"is required and {account_rules.PASSWORD_RULE}")
    username = body.get("username")
    if username is not None and not account_rules.valid_username(username):
        errors.add("username", account_rules.USERNAME_RULE)
    name = body.get("name")
    if name is not None and not account_rules.valid_name(name):
        errors.add("name", account_rules.NAME_RULE)
    errors.raise_if_any()
    return auth_pb2.RegisterUserRequest(
        email=email, password=password, username=username or "", name=name or ""
    )


def login_request(body: dict[str, Any]) -> auth_pb2.LoginRequest:
    """Check that a ``POST /api/v1/auth/login`` body has an email and a password, and build the request."""
    errors = FieldErrors()
    for field in ("email", "password"):
        if not isinstance(body.get(field), str) or not body[field]:
            errors.add(field, "is required: a non-empty string")
    errors.raise_if_any()
    return auth_pb2.LoginRequest(email=body["email"], password=body["password"])


def refresh_token(body: dict[str, Any]) -> str:
    """Return the ``refresh_token`` of a ``POST /api/v1/auth/refresh`` body."""
    errors = FieldErrors()
    token = body.get("refresh_token")
    if not isinstance(token, str) or not token or len(token) > MAX_REFRESH_TOKEN_CHARACTERS:
        errors.add(
            "refresh_token",
            f"is required: the refresh token, at most {MAX_REFRESH_TOKEN_CHARACTERS} characters",
        )
    errors.raise_if_any()
    return token


def create_key_request(body: dict[str, Any]) -> auth_pb2.CreateApiKeyRequest:
    """Check a ``POST /api/v1/auth/api-keys`` body and build the CreateApiKey request."""
    errors = FieldErrors()
    request = auth_pb2.CreateApiKeyRequest()
    name = body.get("name")
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > MAX_NAME_CHARACTERS
        or not printable(name)
    ):
        errors.add("name", f"is required: 1..{MAX_NAME_CHARACTERS} printable characters, not blank")
    else:
        request.name = name
    description = body.get("description")
    if description is not None:
        if (
            isinstance(description, str)
            and len(description) <= MAX_DESCRIPTION_CHARACTERS
            and printable(description, line_breaks=True)
        ):
            request.description = description
        else:
            errors.add("description", f"must be at most {MAX_DESCRIPTION_CHARACTERS} printable characters")
    expires_at = body.get("expires_at")
    if expires_at is not None:
        when = _future_time(expires_at)
        if when is None:
            errors.add("expires_at", "must be an RFC 3339 time in the future, such as 2030-01-01T00:00:00Z")
        else:
            request.expires_at.CopyFrom(_timestamp(when))
    scopes = body.get("scopes")
    if scopes is not None:
        if isinstance(scopes, list) and valid_scopes(scopes):
            request.scopes.extend(scopes)
        else:
            errors.add("scopes", f"must be a list of {SCOPES_RULE}")
    tokens = body.get("tokens_per_minute")
    if tokens is not None:
        if type(tokens) is int and 1 <= tokens <= MAX_TOKENS_PER_MINUTE:
            request.tokens_per_minute = tokens
        else:
            errors.add("tokens_per_minute", f"must be a whole number from 1 to {MAX_TOKENS_PER_MINUTE}")
    usd = body.get("usd_per_day")
    if usd is not None:
        if type(usd) in (int, float) and 0 < usd <= MAX_USD_PER_DAY:
            request.usd_per_day = usd
        else:
            errors.add("usd_per_day", f"must be a number above 0 and at most {MAX_USD_PER_DAY:g}")
    errors.raise_if_any()
    return request


def update_key_request(key_id: str, body: dict[str, Any]) -> auth_pb2.UpdateApiKeyRequest:
    """Check a ``PATCH /api/v1/auth/api-keys/{id}`` body and build the UpdateApiKey request.

    Each override is a whole number 1..10⁹, or null to go back to the tier's limit; at least one
    must be given.
    """
    errors = FieldErrors()
    request = auth_pb2.UpdateApiKeyRequest(id=key_id)
    present = [field for field in RATE_LIMIT_FIELDS if field in body]
    if not present:
        errors.add("rate_limit_per_minute", "give rate_limit_per_minute, rate_limit_per_hour or both")
    for field in present:
        value = body[field]
        if value is None:
            setattr(request, field, 0)
        elif type(value) is int and 1 <= value <= MAX_RATE_LIMIT:
            setattr(request, field, value)
        else:
            errors.add(
                field, f"must be a whole number from 1 to {MAX_RATE_LIMIT}, or null for the tier's limit"
            )
    errors.raise_if_any()
    return request


def _future_time(value: object) -> datetime.datetime | None:
    if not isinstance(value, str) or _RFC3339.match(value) is None:
        return None
    try:
        when = parse_datetime(value.upper())
    except ValueError:
        return None
    return when if when > utc_now() else None


def _timestamp(value: datetime.datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message
