"""Every RPC of the contract is implemented by its servicer, none left to the generated base class."""

import pytest

from orchestrator import server
from orchestrator.services.approvals import ApprovalServiceServicer
from orchestrator.services.auth import AuthServiceServicer
from orchestrator.services.events import EventServiceServicer
from orchestrator.services.schedules import ScheduleServiceServicer
from orchestrator.services.sessions import SessionServiceServicer
from orchestrator.services.tasks import TaskServiceServicer

SERVICERS = [
    (TaskServiceServicer, server.TASK_SERVICE),
    (EventServiceServicer, server.EVENT_SERVICE),
    (AuthServiceServicer, server.AUTH_SERVICE),
    (SessionServiceServicer, server.SESSION_SERVICE),
    (ApprovalServiceServicer, server.APPROVAL_SERVICE),
    (ScheduleServiceServicer, server.SCHEDULE_SERVICE),
]


def test_every_service_of_the_contract_has_a_servicer():
    assert {service.full_name for _, service in SERVICERS} == set(server.SERVICE_NAMES)


@pytest.mark.parametrize(("servicer", "service"), SERVICERS, ids=[service.name for _, service in SERVICERS])
def test_no_rpc_answers_unimplemented(servicer, service):
    # The generated base class answers UNIMPLEMENTED, logged as an error with a traceback.
    inherited = [
        method.name
        for method in service.methods
        if getattr(servicer, method.name).__module__.endswith("_pb2_grpc")
    ]

    assert inherited == []
