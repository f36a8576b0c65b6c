"""The JWT secret policy: strong outside dev/test (taskgate.secret_strength), derived inside."""

import pytest

from taskgate import jwt_secret

STRONG = "5e8a1c3f7b9d2e4a6c8f0b1d3e5a7c9f"
SERVICE_TOKEN = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b"


def test_a_weak_secret_is_refused_outside_dev_and_test_by_the_shared_rule():
    with pytest.raises(ValueError, match="TASKGATE_JWT_SECRET is a well-known") as refused:
        jwt_secret.resolve("your-256-bit-secret", "production", SERVICE_TOKEN)
    assert "your-256-bit-secret" not in str(refused.value)


def test_a_strong_secret_is_kept():
    assert jwt_secret.resolve(STRONG, "production", SERVICE_TOKEN) == STRONG


def test_production_requires_one_and_it_must_not_be_the_service_token():
    with pytest.raises(ValueError, match="required"):
        jwt_secret.resolve(None, "production", SERVICE_TOKEN)
    with pytest.raises(ValueError, match="differ"):
        jwt_secret.resolve(SERVICE_TOKEN, "production", SERVICE_TOKEN)


@pytest.mark.parametrize("env", ["dev", "test"])
def test_dev_and_test_derive_one_from_the_service_token_when_unset(env):
    derived = jwt_secret.resolve(None, env, SERVICE_TOKEN)
    assert derived == jwt_secret.derive_from_service_token(SERVICE_TOKEN)
    assert len(derived) == 64 and SERVICE_TOKEN not in derived
    assert derived != jwt_secret.derive_from_service_token(SERVICE_TOKEN + "x")
    assert jwt_secret.resolve("short", env, SERVICE_TOKEN) == "short"
