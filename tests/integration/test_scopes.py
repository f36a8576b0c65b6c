"""API-key scopes with the real gateway and orchestrator: through HTTP, directly over gRPC, on streams.

The owner (a registered user) makes keys of a few scopes with its access token; each test checks
what such a key may and may not do, and that the orchestrator refuses the same on its own (a
direct gRPC caller, a forwarded caller, the admin stream server), so it does not rely on the
gateway's early check.
"""

import grpc
import httpx
import pytest

from taskgate.orchestrator.v1 import approvals_pb2
from taskgate.orchestrator.v1 import approvals_pb2_grpc
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import auth_pb2_grpc
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import events_pb2_grpc
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from tests.integration.accounts import register
from tests.integration.processes import wait_until

QUERY = "What is 2+2?"


class Key:
    """An API key of the owner's with some scopes, and a client that sends it."""

    def __init__(self, stack, owner, name: str, scopes: list[str]) -> None:
        created = owner.token_client.post("/api/v1/auth/api-keys", json={"name": name, "scopes": scopes})
        assert created.status_code == 201, created.text
        self.id = created.json()["id"]
        self.api_key = created.json()["api_key"]
        self.client = httpx.Client(base_url=stack.url, headers={"X-API-Key": self.api_key}, timeout=30)


@pytest.fixture(scope="module")
def owner(stack):
    account = register(stack.url)
    yield account
    account.close()


@pytest.fixture(scope="module")
def reader(stack, owner) -> Key:
    key = Key(stack, owner, "reader", ["tasks:read"])
    yield key
    key.client.close()


@pytest.fixture(scope="module")
def approver(stack, owner) -> Key:
    key = Key(stack, owner, "approver", ["approvals:read", "approvals:decide", "tasks:read"])
    yield key
    key.client.close()


@pytest.fixture(scope="module")
def manager(stack, owner) -> Key:
    key = Key(stack, owner, "manager", ["keys:manage", "tasks:read"])
    yield key
    key.client.close()


@pytest.fixture(scope="module")
def waiting_task(owner) -> dict:
    """A task of the owner's waiting for approval."""
    return waiting(owner.key_client)


def waiting(client: httpx.Client) -> dict:
    submitted = client.post("/api/v1/tasks", json={"query": QUERY, "require_approval": True})
    assert submitted.status_code == 200, submitted.text
    task_id = submitted.json()["task_id"]

    def pending():
        task = client.get(f"/api/v1/tasks/{task_id}").json()
        return task if task["pending_approval"] else None

    return wait_until(pending, timeout=30, what=f"task {task_id} to wait for approval")


def assert_insufficient(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert (body["code"], body["scope"]) == ("insufficient_scope", scope)
    assert body["details"] == [{"field": "scope", "message": scope}]


def decision(task: dict) -> dict:
    return {
        "workflow_id": task["task_id"],
        "approval_id": task["pending_approval"]["approval_id"],
        "approved": True,
    }


def test_a_read_only_key_reads_but_cannot_submit_cancel_approve_or_manage(owner, reader, waiting_task):
    task_id = waiting_task["task_id"]
    assert reader.client.get("/api/v1/tasks").status_code == 200
    assert reader.client.get(f"/api/v1/tasks/{task_id}").json()["status"] == "RUNNING"
    assert reader.client.get(f"/api/v1/tasks/{task_id}/events").status_code == 200
    assert reader.client.get("/api/v1/auth/me").status_code == 200

    assert_insufficient(reader.client.post("/api/v1/tasks", json={"query": QUERY}), "tasks:write")
    assert_insufficient(reader.client.post(f"/api/v1/tasks/{task_id}/cancel", json={}), "tasks:write")
    assert_insufficient(
        reader.client.post("/api/v1/approvals/decision", json=decision(waiting_task)), "approvals:decide"
    )
    assert_insufficient(reader.client.get("/api/v1/approvals"), "approvals:read")
    assert_insufficient(reader.client.get("/api/v1/sessions"), "sessions:read")
    assert_insufficient(reader.client.get("/api/v1/schedules"), "schedules:read")
    assert_insufficient(reader.client.get("/api/v1/stats"), "usage:read")
    assert_insufficient(reader.client.get("/api/v1/auth/api-keys"), "keys:manage")
    assert_insufficient(reader.client.post("/api/v1/auth/api-keys", json={"name": "more"}), "keys:manage")
    assert_insufficient(reader.client.delete(f"/api/v1/auth/api-keys/{reader.id}"), "keys:manage")
    chat = {"model": "taskgate-small", "messages": [{"role": "user", "content": QUERY}]}
    refused = reader.client.post("/v1/chat/completions", json=chat)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"

    # Nothing happened: the task still waits, the key still works.
    task = owner.key_client.get(f"/api/v1/tasks/{task_id}").json()
    assert task["status"] == "RUNNING" and task["pending_approval"] is not None
    assert reader.client.get("/api/v1/tasks").status_code == 200


def test_a_stream_needs_tasks_read(stack, owner, reader, approver, waiting_task):
    task_id = waiting_task["task_id"]
    no_read = Key(stack, owner, "decider", ["approvals:decide"])
    params = {"workflow_id": task_id}
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        assert_insufficient(
            http.get("/api/v1/stream/sse", params=params, headers={"X-API-Key": no_read.api_key}),
            "tasks:read",
        )
        with http.stream(
            "GET", "/api/v1/stream/sse", params=params, headers={"X-API-Key": reader.api_key}
        ) as sse:
            assert sse.status_code == 200
    no_read.client.close()


def test_the_admin_stream_server_checks_the_forwarded_scopes_itself(stack, owner, waiting_task):
    headers = {
        "x-taskgate-service-token": stack.service_token,
        "x-taskgate-user-id": owner.user_id,
        "x-taskgate-tenant-id": owner.tenant_id,
        "x-taskgate-scopes": "approvals:read approvals:decide",
    }
    response = httpx.get(
        stack.orchestrator.admin_url + "/stream/sse",
        params={"workflow_id": waiting_task["task_id"]},
        headers=headers,
        timeout=30,
    )

    assert response.status_code == 403
    assert response.json() == {
        "error": "The API key lacks the scope tasks:read",
        "code": "insufficient_scope",
        "scope": "tasks:read",
    }


def test_an_approval_records_the_deciding_user_and_key(owner, approver):
    by_key = waiting(owner.key_client)
    by_token = waiting(owner.key_client)

    approved = approver.client.post("/api/v1/approvals/decision", json=decision(by_key))
    assert approved.status_code == 200, approved.text
    assert owner.token_client.post("/api/v1/approvals/decision", json=decision(by_token)).status_code == 200

    listed = approver.client.get("/api/v1/approvals", params={"status": "decided", "limit": 100}).json()
    decided = {approval["approval_id"]: approval for approval in listed["approvals"]}
    with_key = decided[by_key["pending_approval"]["approval_id"]]
    with_token = decided[by_token["pending_approval"]["approval_id"]]
    assert (with_key["decided_by"], with_key["decided_by_api_key_id"]) == (owner.user_id, approver.id)
    assert (with_token["decided_by"], with_token["decided_by_api_key_id"]) == (owner.user_id, None)

    events = owner.key_client.get(f"/api/v1/tasks/{by_key['task_id']}/events", params={"limit": 200}).json()
    payload = next(event["payload"] for event in events["events"] if event["type"] == "APPROVAL_DECISION")
    assert (payload["decided_by"], payload["decided_by_api_key_id"]) == (owner.user_id, approver.id)


def test_a_key_mints_keys_only_within_its_scopes_and_revokes_only_with_keys_manage(
    stack, owner, manager, reader
):
    keys = "/api/v1/auth/api-keys"
    narrower = manager.client.post(keys, json={"name": "narrower", "scopes": ["tasks:read"]})
    assert narrower.status_code == 201, narrower.text
    assert_insufficient(
        manager.client.post(keys, json={"name": "wider", "scopes": ["tasks:write"]}), "tasks:write"
    )
    # Without scopes a key would have every scope.
    assert_insufficient(manager.client.post(keys, json={"name": "full"}), "tasks:write")
    unknown = manager.client.post(keys, json={"name": "typo", "scopes": ["task:read"]})
    assert (unknown.status_code, unknown.json()["details"][0]["field"]) == (400, "scopes")
    listed = manager.client.get(keys).json()["keys"]
    assert "wider" not in {key["name"] for key in listed} and "full" not in {key["name"] for key in listed}

    # The reader cannot revoke the owner's key; the manager revokes the key it made.
    owners_key = next(key for key in listed if key["name"] == "default")
    assert_insufficient(reader.client.delete(f"{keys}/{owners_key['id']}"), "keys:manage")
    assert owner.key_client.get("/api/v1/tasks").status_code == 200
    assert manager.client.delete(f"{keys}/{narrower.json()['id']}").status_code == 200


def test_a_full_access_key_still_does_everything(owner):
    client = owner.key_client
    submitted = client.post("/api/v1/tasks", json={"query": QUERY})
    assert submitted.status_code == 200, submitted.text
    assert client.post(f"/api/v1/tasks/{submitted.json()['task_id']}/cancel", json={}).status_code in (
        202,
        409,
    )
    task = waiting(client)
    assert client.post("/api/v1/approvals/decision", json=decision(task)).status_code == 200
    assert client.get("/api/v1/sessions").status_code == 200
    assert client.get("/api/v1/stats").status_code == 200
    created = client.post("/api/v1/auth/api-keys", json={"name": "any", "scopes": ["keys:manage"]})
    assert created.status_code == 201, created.text
    assert client.post("/api/v1/auth/api-keys", json={"name": "full again"}).status_code == 201
    assert client.delete(f"/api/v1/auth/api-keys/{created.json()['id']}").status_code == 200


def refusal(call) -> tuple[grpc.StatusCode, dict]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), dict(caught.value.trailing_metadata() or ())


@pytest.fixture()
def channel(stack):
    with grpc.insecure_channel(stack.orchestrator.grpc_addr) as channel:
        yield channel


def test_a_direct_grpc_caller_with_a_scoped_key_is_refused_the_same(channel, reader, waiting_task):
    metadata = (("x-api-key", reader.api_key),)
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)

    listed = tasks.ListTasks(tasks_pb2.ListTasksRequest(), metadata=metadata)
    assert waiting_task["task_id"] in {task.task_id for task in listed.tasks}
    stream = events_pb2_grpc.EventServiceStub(channel).StreamEvents(
        events_pb2.StreamEventsRequest(workflow_id=waiting_task["task_id"]), metadata=metadata, timeout=30
    )
    assert next(iter(stream)).event.seq == 1
    stream.cancel()

    for call, scope in (
        (
            lambda: tasks.SubmitTask(tasks_pb2.SubmitTaskRequest(query=QUERY), metadata=metadata),
            "tasks:write",
        ),
        (
            lambda: approvals_pb2_grpc.ApprovalServiceStub(channel).DecideApproval(
                approvals_pb2.DecideApprovalRequest(**decision(waiting_task)), metadata=metadata
            ),
            "approvals:decide",
        ),
        (
            lambda: auth_pb2_grpc.AuthServiceStub(channel).CreateApiKey(
                auth_pb2.CreateApiKeyRequest(name="escape"), metadata=metadata
            ),
            "keys:manage",
        ),
    ):
        code, trailing = refusal(call)
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert trailing["taskgate-error-code"] == "insufficient_scope"
        assert trailing["taskgate-missing-scope"] == scope


def test_the_orchestrator_refuses_a_forwarded_callers_missing_scope(stack, channel, owner, reader):
    forwarded = (
        ("x-taskgate-service-token", stack.service_token),
        ("x-taskgate-user-id", owner.user_id),
        ("x-taskgate-tenant-id", owner.tenant_id),
        ("x-taskgate-api-key-id", reader.id),
        ("x-taskgate-scopes", "tasks:read"),
    )
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)

    assert tasks.ListTasks(tasks_pb2.ListTasksRequest(), metadata=forwarded).total_count >= 0
    code, trailing = refusal(
        lambda: tasks.SubmitTask(tasks_pb2.SubmitTaskRequest(query=QUERY), metadata=forwarded)
    )
    assert (code, trailing["taskgate-missing-scope"]) == (grpc.StatusCode.PERMISSION_DENIED, "tasks:write")
    # The same caller without scopes (an access token's) has full access.
    submitted = tasks.SubmitTask(tasks_pb2.SubmitTaskRequest(query=QUERY), metadata=forwarded[:3])
    assert submitted.task.task_id
