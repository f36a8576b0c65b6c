"""Access tokens: what the orchestrator signs is what the gateway accepts, and nothing else."""

import datetime

import jwt
import pytest

from taskgate.access_tokens import AccessClaims
from taskgate.access_tokens import InvalidAccessTokenError
from taskgate.access_tokens import issue_access_token
from taskgate.access_tokens import looks_like_jwt
from taskgate.access_tokens import verify_access_token

SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0" * 2
CLAIMS = AccessClaims("user-1", "tenant-1", "admin", "pro")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def test_an_issued_token_verifies_to_its_claims_for_an_hour():
    token, expires_in = issue_access_token(CLAIMS, SECRET, "taskgate", now())

    assert expires_in == 3600
    assert verify_access_token(token, SECRET, "taskgate") == CLAIMS
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["exp"] - payload["iat"] == 3600 and payload["nbf"] == payload["iat"]


def test_two_tokens_issued_at_once_differ():
    moment = now()
    assert issue_access_token(CLAIMS, SECRET, "taskgate", moment) != issue_access_token(
        CLAIMS, SECRET, "taskgate", moment
    )


def test_a_little_clock_skew_is_tolerated():
    token, _ = issue_access_token(CLAIMS, SECRET, "taskgate", now() + datetime.timedelta(seconds=10))
    assert verify_access_token(token, SECRET, "taskgate") == CLAIMS


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: issue_access_token(CLAIMS, SECRET, "someone-else", now())[0], id="issuer"),
        pytest.param(
            lambda: issue_access_token(CLAIMS, "f" * 32 + "0123456789", "taskgate", now())[0], id="secret"
        ),
        pytest.param(
            lambda: issue_access_token(CLAIMS, SECRET, "taskgate", now() - datetime.timedelta(hours=2))[0],
            id="expired",
        ),
        pytest.param(
            lambda: issue_access_token(CLAIMS, SECRET, "taskgate", now() + datetime.timedelta(minutes=5))[0],
            id="not yet valid",
        ),
        pytest.param(
            lambda: jwt.encode(
                {
                    "sub": "u",
                    "tenant_id": "t",
                    "role": "user",
                    "tier": "",
                    "iss": "taskgate",
                    "iat": now(),
                    "nbf": now(),
                    "exp": now() + datetime.timedelta(hours=1),
                },
                SECRET,
                algorithm="HS512",
            ),
            id="HS512",
        ),
        pytest.param(
            lambda: jwt.encode(
                {"sub": "u", "iss": "taskgate", "exp": now() + datetime.timedelta(hours=1)}, SECRET
            ),
            id="missing claims",
        ),
        pytest.param(lambda: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.", id="alg none"),
        pytest.param(lambda: "not-a-token", id="garbage"),
    ],
)
def test_anything_else_is_refused(token):
    with pytest.raises(InvalidAccessTokenError):
        verify_access_token(token(), SECRET, "taskgate")


def test_a_role_outside_the_three_is_refused():
    token, _ = issue_access_token(AccessClaims("u", "t", "root", ""), SECRET, "taskgate", now())
    with pytest.raises(InvalidAccessTokenError):
        verify_access_token(token, SECRET, "taskgate")


def test_jwt_shape():
    assert looks_like_jwt("a.b.c") and not looks_like_jwt("sk_" + "0" * 64)
