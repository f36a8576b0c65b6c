"""Task statuses: one translation between API names and the gRPC contract's values, for both services."""

import pytest

from orchestrator.domain.tasks import TaskStatus
from orchestrator.errors import InvalidArgumentError
from orchestrator.services.messages import status_from_proto
from orchestrator.services.messages import status_to_proto
from taskgate.orchestrator.v1 import common_pb2
from taskgate.task_statuses import STATUS_NAMES
from taskgate.task_statuses import status_name
from taskgate.task_statuses import status_value


def test_every_status_has_its_api_name() -> None:
    names = [status_name(value) for value in range(1, 8)]
    assert names == ["QUEUED", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]
    assert tuple(names) == STATUS_NAMES
    assert status_name(common_pb2.TASK_STATUS_UNSPECIFIED) is None
    assert status_value("timeout") == common_pb2.TASK_STATUS_TIMEOUT
    with pytest.raises(ValueError):
        status_value("SLEEPING")


@pytest.mark.parametrize("status", list(TaskStatus))
def test_the_orchestrator_s_statuses_are_the_api_s(status: TaskStatus) -> None:
    assert status.value in STATUS_NAMES
    assert status_from_proto(status_to_proto(status)) is status
    assert status_name(status_to_proto(status)) == status.value


def test_the_orchestrator_refuses_an_unknown_value() -> None:
    assert status_from_proto(common_pb2.TASK_STATUS_UNSPECIFIED) is None
    with pytest.raises(InvalidArgumentError):
        status_from_proto(99)
