"""Credentials at the gateway, with real processes: forged and stale access tokens, key forms, and
revocation reaching every gunicorn worker within the key cache's few seconds."""

import base64
import datetime
import json
import time

import httpx
import jwt
import pytest

from taskgate.jwt_secret import derive_from_service_token
from tests.integration.accounts import register
from tests.integration.gateway_workers import get_on_new_connection
from tests.integration.gateway_workers import worker_pids
from tests.integration.processes import wait_until

KEY_CACHE_SECONDS = 5.0


@pytest.fixture(scope="module")
def grace(stack):
    """A registered user for the read-only checks of this module."""
    account = register(stack.url)
    yield account
    account.close()


def claims(account, **changes) -> dict:
    now = datetime.datetime.now(datetime.UTC)
    payload = {
        "sub": account.user_id,
        "tenant_id": account.tenant_id,
        "role": "user",
        "tier": "free",
        "iss": "taskgate",
        "iat": now,
        "nbf": now,
        "exp": now + datetime.timedelta(hours=1),
    }
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not None}


def unsigned(payload: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value, default=int).encode()).rstrip(b"=").decode()

    payload = {k: int(v.timestamp()) if isinstance(v, datetime.datetime) else v for k, v in payload.items()}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def me(stack, token: str) -> httpx.Response:
    return httpx.get(stack.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_token_signed_with_the_secret_the_services_share_is_accepted(stack, grace):
    secret = derive_from_service_token(stack.service_token)

    response = me(stack, jwt.encode(claims(grace), secret, algorithm="HS256"))

    assert response.status_code == 200
    assert response.json()["user_id"] == grace.user_id


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda account, secret: unsigned(claims(account)), id="alg none"),
        pytest.param(
            lambda account, secret: jwt.encode(claims(account), secret, algorithm="HS512"), id="HS512"
        ),
        pytest.param(
            lambda account, secret: jwt.encode(claims(account), "another secret " * 4), id="other secret"
        ),
        pytest.param(
            lambda account, secret: jwt.encode(claims(account, iss="someone-else"), secret), id="wrong issuer"
        ),
        pytest.param(lambda account, secret: jwt.encode(claims(account, iss=None), secret), id="no issuer"),
        pytest.param(
            lambda account, secret: jwt.encode(
                claims(account, exp=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)),
                secret,
            ),
            id="expired",
        ),
        pytest.param(
            lambda account, secret: jwt.encode(
                claims(account, nbf=datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)),
                secret,
            ),
            id="not yet valid",
        ),
        pytest.param(lambda account, secret: jwt.encode(claims(account, exp=None), secret), id="no expiry"),
        pytest.param(
            lambda account, secret: jwt.encode(claims(account, tenant_id=None), secret), id="no tenant"
        ),
        pytest.param(
            lambda account, secret: jwt.encode(claims(account, role="root"), secret), id="unknown role"
        ),
        pytest.param(lambda account, secret: "a.b.c", id="garbage"),
    ],
)
def test_forged_expired_and_foreign_tokens_are_401(stack, grace, forge):
    token = forge(grace, derive_from_service_token(stack.service_token))

    response = me(stack, token)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="taskgate"'


def test_a_token_in_x_api_key_is_not_a_key(stack, grace):
    response = httpx.get(stack.url + "/api/v1/auth/me", headers={"X-API-Key": grace.access_token})
    assert response.status_code == 401


def test_a_shannon_style_key_works_as_a_bearer(stack, grace):
    shannon = "sk-shannon-" + grace.api_key.removeprefix("sk_")
    assert me(stack, shannon).json()["user_id"] == grace.user_id


def test_the_stream_takes_a_token_in_the_query(stack, grace):
    task = grace.token_client.post("/api/v1/tasks", json={"query": "What is 1+1?"}).json()
    wait_until(
        lambda: grace.key_client.get(f"/api/v1/tasks/{task['task_id']}").json()["status"] == "COMPLETED",
        what="the task to complete",
    )
    url = stack.url + "/api/v1/stream/sse"

    with httpx.stream(
        "GET", url, params={"workflow_id": task["task_id"], "token": grace.access_token}
    ) as stream:
        assert stream.status_code == 200
        assert "event: done" in stream.read().decode()
    refused = httpx.get(url, params={"workflow_id": task["task_id"], "token": grace.access_token + "x"})
    assert refused.status_code == 401


def test_a_revoked_key_stops_working_on_every_worker_within_the_cache_time(stack):
    account = register(stack.url)
    master = stack.gateway.process.pid
    workers = worker_pids(master)
    # The gateway's default: two workers with Redis (the postgres stack), one without.
    assert len(workers) == (2 if stack.env.get("TASKGATE_REDIS_URL") else 1)
    headers = {"X-API-Key": account.api_key}

    # Every worker validates the key and keeps it in its cache.
    served_by: set[int] = set()
    for _ in range(200):
        status, pid = get_on_new_connection(stack.url, "/api/v1/tasks", headers, master)
        assert status == 200
        if pid is not None:
            served_by.add(pid)
        if served_by == workers:
            break
    assert served_by == workers

    revoked_at = time.monotonic()
    assert account.token_client.delete(f"/api/v1/auth/api-keys/{key_id(account)}").status_code == 200

    first_refusal: dict[int, float] = {}
    while set(first_refusal) != workers:
        assert time.monotonic() - revoked_at < KEY_CACHE_SECONDS + 5, (
            f"still accepted by {workers - set(first_refusal)}"
        )
        status, pid = get_on_new_connection(stack.url, "/api/v1/tasks", headers, master)
        if pid is None:
            continue
        if status == 401:
            first_refusal.setdefault(pid, time.monotonic() - revoked_at)
        else:
            assert status == 200 and pid not in first_refusal, (
                "a worker accepted the key again after refusing it"
            )
        time.sleep(0.05)
    assert max(first_refusal.values()) <= KEY_CACHE_SECONDS + 1.5
    account.close()


def key_id(account) -> str:
    keys = account.token_client.get("/api/v1/auth/api-keys").json()["keys"]
    return next(key["id"] for key in keys if account.api_key.startswith(key["key_prefix"]))
