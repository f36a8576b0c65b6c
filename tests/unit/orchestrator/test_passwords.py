"""Password hashing: argon2id, checked without revealing whether an account has a password."""

import asyncio

import argon2

from orchestrator.passwords import PasswordHasher


def cheap() -> PasswordHasher:
    return PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def test_a_hash_is_argon2id_salted_and_checks_only_its_password():
    async def scenario():
        hasher = cheap()
        first, second = await hasher.hash("correct horse"), await hasher.hash("correct horse")
        assert first.startswith("$argon2id$") and first != second
        assert await hasher.verify(first, "correct horse")
        assert not await hasher.verify(first, "wrong horse")
        assert not await hasher.verify("not a hash", "correct horse")

    asyncio.run(scenario())


def test_no_hash_is_checked_against_a_dummy_and_never_matches():
    async def scenario():
        hasher = cheap()
        assert not await hasher.verify(None, "")
        assert not await hasher.verify(None, "anything at all")

    asyncio.run(scenario())


def test_the_default_parameters_are_the_rfc_9106_profile():
    encoded = asyncio.run(PasswordHasher().hash("correct horse"))
    assert encoded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
