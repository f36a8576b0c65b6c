"""The orchestrator's gRPC surface, called directly over a socket as another service would."""

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc

from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import auth_pb2_grpc
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import events_pb2_grpc
from taskgate.orchestrator.v1 import schedules_pb2
from taskgate.orchestrator.v1 import schedules_pb2_grpc
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from taskgate.orchestrator.v1.common_pb2 import TASK_STATUS_COMPLETED
from tests.integration.processes import wait_until


@pytest.fixture()
def channel(stack):
    with grpc.insecure_channel(stack.orchestrator.grpc_addr) as channel:
        yield channel


def test_health_and_reflection_are_served(channel):
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    named = health_pb2.HealthCheckRequest(service="taskgate.orchestrator.v1.TaskService")
    assert health.Check(named).status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    reply = next(iter(reflection.ServerReflectionInfo(iter([request]))))
    services = {service.name for service in reply.list_services_response.service}
    assert {
        "taskgate.orchestrator.v1.TaskService",
        "taskgate.orchestrator.v1.EventService",
        "taskgate.orchestrator.v1.SessionService",
        "taskgate.orchestrator.v1.ApprovalService",
        "taskgate.orchestrator.v1.ScheduleService",
        "taskgate.orchestrator.v1.AuthService",
    } <= services


def test_a_service_with_its_own_api_key_submits_reads_and_streams(channel, alice):
    metadata = (("x-api-key", alice.api_key),)
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)

    submitted = tasks.SubmitTask(tasks_pb2.SubmitTaskRequest(query="What is 6*7?"), metadata=metadata).task
    stream = events_pb2_grpc.EventServiceStub(channel).StreamEvents(
        events_pb2.StreamEventsRequest(workflow_id=submitted.task_id), metadata=metadata, timeout=30
    )
    seqs = [reply.event.seq for reply in stream]

    def completed():
        task = tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=submitted.task_id), metadata=metadata).task
        return task if task.status == TASK_STATUS_COMPLETED else None

    task = wait_until(completed, what="completion")
    assert "42" in task.result
    assert seqs == list(range(1, len(seqs) + 1))
    assert alice.client.get(f"/api/v1/tasks/{submitted.task_id}").json()["status"] == "COMPLETED"


def test_calls_without_credentials_are_unauthenticated(channel, stack):
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)
    forged = (("x-taskgate-user-id", "someone"),)
    wrong_token = (("x-taskgate-service-token", "wrong-token-0123456789"), ("x-taskgate-user-id", "someone"))

    for metadata in ((), forged, wrong_token, (("x-api-key", "sk_" + "1" * 64),)):
        with pytest.raises(grpc.RpcError) as caught:
            tasks.ListTasks(tasks_pb2.ListTasksRequest(), metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    auth = auth_pb2_grpc.AuthServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        auth.ValidateApiKey(auth_pb2.ValidateApiKeyRequest(api_key="sk_" + "1" * 64))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_validate_api_key_resolves_the_principal_for_the_service_token_holder(channel, stack, alice):
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    metadata = (("x-taskgate-service-token", stack.service_token),)

    reply = auth.ValidateApiKey(auth_pb2.ValidateApiKeyRequest(api_key=alice.api_key), metadata=metadata)
    assert reply.principal.user_id and reply.principal.tenant_id

    with pytest.raises(grpc.RpcError) as caught:
        auth.ValidateApiKey(auth_pb2.ValidateApiKeyRequest(api_key="sk_" + "2" * 64), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_schedule_service_answers_and_names_an_invalid_field_in_trailing_metadata(channel, alice):
    schedules = schedules_pb2_grpc.ScheduleServiceStub(channel)
    metadata = (("x-api-key", alice.api_key),)

    listed = schedules.ListSchedules(schedules_pb2.ListSchedulesRequest(), metadata=metadata)
    with pytest.raises(grpc.RpcError) as caught:
        schedules.CreateSchedule(
            schedules_pb2.CreateScheduleRequest(name="n", cron_expression="nope", task_query="q"),
            metadata=metadata,
        )

    assert listed.total_count == len(listed.schedules)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("taskgate-invalid-field", "cron_expression") in tuple(caught.value.trailing_metadata())


def test_invalid_submissions_are_invalid_argument(channel, alice):
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)
    metadata = (("x-api-key", alice.api_key),)

    for request in (
        tasks_pb2.SubmitTaskRequest(query=""),
        tasks_pb2.SubmitTaskRequest(query="x", mode="turbo"),
        tasks_pb2.SubmitTaskRequest(query="x", context_json="[1]"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            tasks.SubmitTask(request, metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Traceback" not in caught.value.details()
