"""API-key format, normalisation and hashing."""

from taskgate import api_keys


def test_generated_keys_are_well_formed_and_distinct():
    first, second = api_keys.generate_api_key(), api_keys.generate_api_key()

    assert first != second
    assert api_keys.normalise_api_key(first) == first
    assert len(first) == 3 + 64


def test_shannon_keys_normalise_to_the_sk_form():
    key = api_keys.generate_api_key()

    assert api_keys.normalise_api_key("sk-shannon-" + key[3:]) == key
    assert api_keys.normalise_api_key("  " + key.upper().replace("SK_", "sk_") + "\n") == key


def test_malformed_keys_are_rejected():
    for raw in ("", "sk_", "sk_" + "g" * 64, "sk_" + "a" * 63, "pk_" + "a" * 64, "sk-shannon-short"):
        assert api_keys.normalise_api_key(raw) is None, raw


def test_hash_comparison_and_prefix():
    key = api_keys.generate_api_key()
    stored = api_keys.hash_api_key(key)

    assert api_keys.key_matches(key, stored)
    assert not api_keys.key_matches(api_keys.generate_api_key(), stored)
    assert api_keys.lookup_prefix(key) == key[:11]
    assert key not in stored
