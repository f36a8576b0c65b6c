"""The Principal message: both services copy a caller to and from it by the message's field list."""

import dataclasses

from gateway.caller import Principal
from orchestrator.caller import Caller
from taskgate.principals import FIELDS
from taskgate.principals import principal_fields
from taskgate.principals import principal_to_proto


def test_both_services_identities_carry_exactly_the_message_s_fields() -> None:
    assert {field.name for field in dataclasses.fields(Caller)} == set(FIELDS)
    assert {field.name for field in dataclasses.fields(Principal)} == set(FIELDS)


def test_a_caller_reaches_the_gateway_field_for_field() -> None:
    caller = Caller(
        user_id="u1",
        tenant_id="t1",
        role="admin",
        tier="pro",
        api_key_id="k1",
        scopes=("tasks:read", "tasks:write"),
        rate_limit_per_minute=7,
        rate_limit_per_hour=70,
    )
    message = principal_to_proto(caller)
    assert message.user_id == "u1"
    assert list(message.scopes) == ["tasks:read", "tasks:write"]
    assert message.rate_limit_per_hour == 70
    fields = principal_fields(message)
    assert fields["scopes"] == ("tasks:read", "tasks:write")
    assert Principal(**fields) == Principal(**dataclasses.asdict(caller))
