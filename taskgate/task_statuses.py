"""A task status's API name (``QUEUED``, ``RUNNING``, …) and its value in the gRPC contract.

common.proto names each value with the enum's prefix (``TASK_STATUS_QUEUED``, buf's STANDARD
rule); both services translate by that one rule here.
"""

from taskgate.orchestrator.v1 import common_pb2

_PREFIX = "TASK_STATUS_"
STATUS_NAMES = tuple(
    name.removeprefix(_PREFIX)
    for name, value in common_pb2.TaskStatus.items()
    if value != common_pb2.TASK_STATUS_UNSPECIFIED
)


def status_name(value: int) -> str | None:
    """Return the API name of a status value, None for UNSPECIFIED; raise ValueError for an unknown one."""
    if value == common_pb2.TASK_STATUS_UNSPECIFIED:
        return None
    return common_pb2.TaskStatus.Name(value).removeprefix(_PREFIX)


def status_value(name: str) -> int:
    """Return the value of an API status name, in any case; raise ValueError for an unknown one."""
    upper = name.upper()
    if upper not in STATUS_NAMES:
        raise ValueError(f"unknown task status {name!r}")
    return common_pb2.TaskStatus.Value(_PREFIX + upper)
