"""The scope table and the one rule: every RPC has its entry, every entry names real scopes."""

import pytest

from orchestrator.server import SERVICE_NAMES
from taskgate import scopes
from taskgate.orchestrator.v1 import approvals_pb2
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import schedules_pb2
from taskgate.orchestrator.v1 import sessions_pb2
from taskgate.orchestrator.v1 import tasks_pb2

_FILES = (approvals_pb2, auth_pb2, events_pb2, schedules_pb2, sessions_pb2, tasks_pb2)


def served_methods() -> set[str]:
    """Every full method name of the services the orchestrator serves, from the compiled protos."""
    methods = set()
    for module in _FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            assert service.full_name in SERVICE_NAMES
            methods.update(f"/{service.full_name}/{method.name}" for method in service.methods)
    return methods


def test_every_rpc_has_an_entry_and_every_entry_is_an_rpc():
    assert set(scopes.RPC_SCOPES) == served_methods()
    assert all(method.startswith(scopes.PACKAGE_PREFIX) for method in scopes.RPC_SCOPES)


def test_every_entry_names_known_scopes_and_every_scope_is_needed_somewhere():
    needed = set()
    for needs in scopes.RPC_SCOPES.values():
        if needs is not scopes.SERVICE_ONLY:
            assert all(scopes.is_known_scope(scope) for scope in needs)
            needed.update(needs)
    assert needed == set(scopes.ALL_SCOPES)


def test_only_the_gateways_own_calls_skip_the_check():
    service_only = {method for method, needs in scopes.RPC_SCOPES.items() if needs is scopes.SERVICE_ONLY}
    assert service_only == {
        f"/taskgate.orchestrator.v1.AuthService/{name}"
        for name in ("ValidateApiKey", "RegisterUser", "Login", "RefreshToken")
    }


def test_a_method_missing_from_the_table_needs_every_scope():
    assert scopes.rpc_needs("/taskgate.orchestrator.v1.TaskService/Unknown") == scopes.ALL_SCOPES
    assert scopes.rpc_needs("/taskgate.orchestrator.v1.TaskService/SubmitTask") == (scopes.TASKS_WRITE,)


@pytest.mark.parametrize(
    ("granted", "needed", "missing"),
    [
        ((), scopes.ALL_SCOPES, None),  # no scopes: full access
        (("tasks:read",), ("tasks:read",), None),
        (("tasks:read",), ("tasks:write",), "tasks:write"),
        (("tasks:write",), ("tasks:write", "tasks:read"), "tasks:read"),
        (("tasks:read",), scopes.ANY_CALLER, None),
        # A stored name that is no scope (a key made before they were checked) grants nothing.
        (("read",), ("tasks:read",), "tasks:read"),
    ],
)
def test_the_rule(granted, needed, missing):
    assert scopes.missing_scope(granted, needed) == missing


@pytest.mark.parametrize(
    ("creator", "requested", "beyond"),
    [
        ((), (), None),
        ((), ("keys:manage",), None),
        (("keys:manage", "tasks:read"), ("tasks:read",), None),
        (("keys:manage", "tasks:read"), ("keys:manage", "tasks:read"), None),
        (("keys:manage", "tasks:read"), ("tasks:write",), "tasks:write"),
        # A key without scopes would have them all: the first one the creator lacks is named.
        (("keys:manage", "tasks:read"), (), "tasks:write"),
    ],
)
def test_a_new_key_stays_within_its_creators_scopes(creator, requested, beyond):
    assert scopes.scope_beyond(creator, requested) == beyond


def test_forwarded_scopes_round_trip_and_absent_means_full_access():
    forwarded = scopes.scopes_header(("tasks:read", "keys:manage"))
    assert scopes.parse_scopes_header(forwarded) == ("tasks:read", "keys:manage")
    assert scopes.parse_scopes_header(None) == scopes.parse_scopes_header("") == ()
