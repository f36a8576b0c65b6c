"""The JWT secret policy: strong outside dev/test, derived from the service token inside."""

import pytest

from taskgate import jwt_secret

STRONG = "5e8a1c3f7b9d2e4a6c8f0b1d3e5a7c9f"
SERVICE_TOKEN = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b"


@pytest.mark.parametrize(
    "secret",
    [
        "your-256-bit-secret",
        "secret",
        "changeme-changeme-changeme-changeme",
        "development-only-secret-change-in-production",
        "this-is-my-placeholder-jwt-secret-value",
        "a" * 64,
        "abababababababababababababababababab",
        "0123456701234567012345670123456701234567",
        "short-but-random-9f8e7d",
    ],
)
def test_weak_or_well_known_secrets_are_refused_outside_dev_and_test(secret):
    assert jwt_secret.weakness(secret) is not None
    with pytest.raises(ValueError, match="TASKGATE_JWT_SECRET") as refused:
        jwt_secret.resolve(secret, "production", SERVICE_TOKEN)
    assert secret not in str(refused.value)


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
