"""Identity settings as whole processes see them: start-up refusals, and the development bypass."""

import subprocess

import httpx
import pytest

from taskgate import dev_bypass
from tests.integration.accounts import register
from tests.integration.processes import REPO
from tests.integration.processes import base_env
from tests.integration.processes import start_stack
from tests.integration.processes import taskgate_command

STRONG_SERVICE_TOKEN = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b"


@pytest.mark.parametrize("service", ["orchestrator", "gateway"])
@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"TASKGATE_JWT_SECRET": "your-256-bit-secret"}, "TASKGATE_JWT_SECRET"),
        ({"TASKGATE_JWT_SECRET": "too-short-0123456789"}, "TASKGATE_JWT_SECRET"),
        ({}, "TASKGATE_JWT_SECRET"),
        (
            {"TASKGATE_JWT_SECRET": "5e8a1c3f7b9d2e4a6c8f0b1d3e5a7c9f", "TASKGATE_SKIP_AUTH": "1"},
            "TASKGATE_SKIP_AUTH",
        ),
    ],
    ids=["well-known secret", "short secret", "no secret", "bypass"],
)
def test_production_refuses_to_start_with_one_clear_line(tmp_path, service, variables, named):
    env = base_env(
        tmp_path, TASKGATE_ENV="production", TASKGATE_SERVICE_TOKEN=STRONG_SERVICE_TOKEN, **variables
    )

    result = subprocess.run(
        taskgate_command(service), env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    output = (result.stdout + result.stderr).strip()
    assert len(output.splitlines()) == 1, output
    assert named in output and "Traceback" not in output
    secret = variables.get("TASKGATE_JWT_SECRET")
    assert secret is None or secret not in output


@pytest.mark.parametrize("service", ["orchestrator", "gateway"])
@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({}, "TASKGATE_SERVICE_TOKEN is required when TASKGATE_ENV=production"),
        ({"TASKGATE_SERVICE_TOKEN": "memorable-token-1"}, "TASKGATE_SERVICE_TOKEN must be at least 32 bytes"),
        (
            {"TASKGATE_SERVICE_TOKEN": "replace-me-with-a-real-token-0123456789"},
            "TASKGATE_SERVICE_TOKEN is a well-known or placeholder value",
        ),
        ({"TASKGATE_SERVICE_TOKEN": STRONG_SERVICE_TOKEN}, "TASKGATE_JWT_SECRET is required"),
    ],
    ids=["no token", "short token", "placeholder token", "no secret"],
)
def test_with_no_environment_named_a_service_starts_as_production(tmp_path, service, variables, named):
    env = base_env(tmp_path)
    for name in ("TASKGATE_ENV", "TASKGATE_SERVICE_TOKEN"):
        del env[name]
    env.update(variables)

    result = subprocess.run(
        taskgate_command(service), env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    output = (result.stdout + result.stderr).strip()
    assert len(output.splitlines()) == 1, output
    assert named in output and "Traceback" not in output
    token = variables.get("TASKGATE_SERVICE_TOKEN")
    assert token is None or token not in output


def test_the_development_bypass_serves_requests_without_credentials_as_the_dev_user(tmp_path):
    stack = start_stack(tmp_path, TASKGATE_SKIP_AUTH="1")
    try:
        with httpx.Client(base_url=stack.url, timeout=30) as anonymous:
            me = anonymous.get("/api/v1/auth/me")
            assert me.status_code == 200, me.text
            assert (me.json()["user_id"], me.json()["role"]) == (dev_bypass.USER_ID, dev_bypass.ROLE)
            task = anonymous.post("/api/v1/tasks", json={"query": "What is 2+2?"}).json()
            assert anonymous.post("/api/v1/auth/api-keys", json={"name": "dev"}).status_code == 201
            # A credential that is presented is still checked.
            assert anonymous.get("/api/v1/tasks", headers={"X-API-Key": "sk_" + "0" * 64}).status_code == 401

            someone = register(stack.url)
            assert someone.key_client.get("/api/v1/auth/me").json()["user_id"] == someone.user_id
            assert someone.key_client.get(f"/api/v1/tasks/{task['task_id']}").status_code == 404
            someone.close()
    finally:
        stack.stop()
