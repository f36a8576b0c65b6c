"""The Principal message: whom an API key speaks for, as the orchestrator tells the gateway.

The orchestrator's ``Caller`` and the gateway's ``Principal`` carry exactly the message's fields
under the message's names, so both services copy them by the message's own field list here.
"""

from typing import Any

from taskgate.orchestrator.v1 import auth_pb2

FIELDS = tuple(field.name for field in auth_pb2.Principal.DESCRIPTOR.fields)


def principal_to_proto(principal: object) -> auth_pb2.Principal:
    """Return the Principal message of a caller that has the message's fields as attributes."""
    return auth_pb2.Principal(**{name: getattr(principal, name) for name in FIELDS})


def principal_fields(message: auth_pb2.Principal) -> dict[str, Any]:
    """Return a Principal message's fields by name, its scopes as a tuple (for a frozen principal)."""
    fields = {name: getattr(message, name) for name in FIELDS}
    fields["scopes"] = tuple(message.scopes)
    return fields
