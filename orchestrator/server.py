"""The gRPC server: every servicer of the contract behind the per-call steps, health checking and reflection.

Health checks and reflection are served as they are: no call log, scope or limit.
"""

import dataclasses

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from orchestrator.call_limits import RateLimitInterceptor
from orchestrator.call_wrapping import WrappingRegistrar
from orchestrator.identity import CallerResolver
from orchestrator.rpc_log import RpcLogInterceptor
from orchestrator.scope_enforcement import ScopeInterceptor
from orchestrator.services.approvals import ApprovalServiceServicer
from orchestrator.services.auth import AuthServiceServicer
from orchestrator.services.events import EventServiceServicer
from orchestrator.services.schedules import ScheduleServiceServicer
from orchestrator.services.sessions import SessionServiceServicer
from orchestrator.services.tasks import TaskServiceServicer
from taskgate.orchestrator.v1 import approvals_pb2
from taskgate.orchestrator.v1 import approvals_pb2_grpc
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import auth_pb2_grpc
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import events_pb2_grpc
from taskgate.orchestrator.v1 import schedules_pb2
from taskgate.orchestrator.v1 import schedules_pb2_grpc
from taskgate.orchestrator.v1 import sessions_pb2
from taskgate.orchestrator.v1 import sessions_pb2_grpc
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc

TASK_SERVICE = tasks_pb2.DESCRIPTOR.services_by_name["TaskService"]
EVENT_SERVICE = events_pb2.DESCRIPTOR.services_by_name["EventService"]
AUTH_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
SESSION_SERVICE = sessions_pb2.DESCRIPTOR.services_by_name["SessionService"]
APPROVAL_SERVICE = approvals_pb2.DESCRIPTOR.services_by_name["ApprovalService"]
SCHEDULE_SERVICE = schedules_pb2.DESCRIPTOR.services_by_name["ScheduleService"]
SERVICE_NAMES = tuple(
    service.full_name
    for service in (
        TASK_SERVICE,
        EVENT_SERVICE,
        AUTH_SERVICE,
        SESSION_SERVICE,
        APPROVAL_SERVICE,
        SCHEDULE_SERVICE,
    )
)
# Without this, Linux lets a second orchestrator bind the same port silently (SO_REUSEPORT).
_SERVER_OPTIONS = (("grpc.so_reuseport", 0),)


class BindError(RuntimeError):
    """The gRPC listen address could not be bound."""


@dataclasses.dataclass(frozen=True)
class Servicers:
    """One servicer per service of the contract, built by the composition root (``orchestrator.app``)."""

    tasks: TaskServiceServicer
    events: EventServiceServicer
    auth: AuthServiceServicer
    sessions: SessionServiceServicer
    approvals: ApprovalServiceServicer
    schedules: ScheduleServiceServicer
    # Resolves each call's caller for the interceptors (and the servicers above).
    callers: CallerResolver


async def create_server(
    address: str,
    servicers: Servicers,
    credentials: grpc.ServerCredentials | None = None,
    call_limits: RateLimitInterceptor | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Build the gRPC server bound to ``address`` (port 0 picks one); return it and its port.

    With ``credentials`` it speaks only TLS (taskgate.tls), else only plaintext. ``call_limits``
    limits direct API-key callers (None: not limited). The server is not started.
    """
    # The call log, the scope check and the rate limit, in that order, wrapped around each method's
    # handler once (orchestrator.call_wrapping), not run per call as grpc.aio interceptors.
    steps = (
        RpcLogInterceptor().wrap,
        ScopeInterceptor(servicers.callers).wrap,
        *((call_limits.wrap,) if call_limits is not None else ()),
    )
    server = grpc.aio.server(options=_SERVER_OPTIONS)
    services = WrappingRegistrar(server, steps)
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(servicers.tasks, services)
    events_pb2_grpc.add_EventServiceServicer_to_server(servicers.events, services)
    auth_pb2_grpc.add_AuthServiceServicer_to_server(servicers.auth, services)
    sessions_pb2_grpc.add_SessionServiceServicer_to_server(servicers.sessions, services)
    approvals_pb2_grpc.add_ApprovalServiceServicer_to_server(servicers.approvals, services)
    schedules_pb2_grpc.add_ScheduleServiceServicer_to_server(servicers.schedules, services)

    health_servicer = health.aio.HealthServicer()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as ex:
        raise BindError(f"cannot listen on TASKGATE_GRPC_ADDR={address}") from ex
    if port == 0:
        raise BindError(f"cannot listen on TASKGATE_GRPC_ADDR={address}")
    return server, port
