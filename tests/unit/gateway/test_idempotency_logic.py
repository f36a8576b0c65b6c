"""Idempotency's pure parts: key rule, body fingerprint, stored records, the in-process store."""

import pytest

from gateway.idempotency.claims import PendingClaim
from gateway.idempotency.records import MalformedRecordError
from gateway.idempotency.records import StoredResponse
from gateway.idempotency.records import final_value
from gateway.idempotency.records import parse_record
from gateway.idempotency.records import pending_value
from gateway.idempotency.requests import body_fingerprint
from gateway.idempotency.requests import is_valid_key
from gateway.idempotency.store import InMemoryIdempotencyStore
from gateway.middleware.idempotency import is_storable

FINGERPRINT = "f" * 64


@pytest.mark.parametrize("key", ["a", "x" * 255, "order-42 retry #1", "~!@#$%^&*()_+{}|:<>?"])
def test_printable_keys_up_to_255_characters_are_valid(key) -> None:
    assert is_valid_key(key)


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "new\nline", "trailing\n", "caf\u00e9", "\x7f"])
def test_empty_long_control_or_non_ascii_keys_are_invalid(key) -> None:
    assert not is_valid_key(key)


def test_the_fingerprint_ignores_whitespace_and_key_order() -> None:
    compact = b'{"query":"hi","context":{"a":1,"b":[1,2]}}'
    spaced = b'{\n  "context": {"b": [1, 2], "a": 1},\n  "query": "hi"\n}\n'
    assert body_fingerprint(compact) == body_fingerprint(spaced)


def test_the_fingerprint_sees_every_value_change() -> None:
    base = body_fingerprint(b'{"query":"hi","context":{"a":1}}')
    assert body_fingerprint(b'{"query":"hi","context":{"a":2}}') != base
    assert body_fingerprint(b'{"query":"hi ","context":{"a":1}}') != base
    assert body_fingerprint(b'{"query":"hi","context":{"a":1},"mode":null}') != base
    assert body_fingerprint(b'{"b":[1,2]}') != body_fingerprint(b'{"b":[2,1]}')


def test_escapes_of_the_same_text_are_the_same_value() -> None:
    assert body_fingerprint('{"q":"caf\u00e9"}'.encode()) == body_fingerprint(b'{"q":"caf\\u00e9"}')


def test_a_body_that_is_not_json_is_fingerprinted_by_its_bytes() -> None:
    assert body_fingerprint(b"not json") == body_fingerprint(b"not json")
    assert body_fingerprint(b"not json") != body_fingerprint(b"not  json")
    assert body_fingerprint(b'{"a": NaN}') != body_fingerprint(b'{"a":NaN}')
    assert body_fingerprint(b"") != body_fingerprint(b'""')


def test_a_done_record_keeps_status_headers_and_the_exact_body() -> None:
    body = b'{"task_id": "t-1"}\n\x00\xff binary \n tail'
    response = StoredResponse(201, (("content-type", "application/json"), ("link", "<x>; rel=stream")), body)
    record = parse_record(final_value(FINGERPRINT, response))
    assert record.fingerprint == FINGERPRINT
    assert record.response == response


def test_a_pending_record_has_no_response() -> None:
    record = parse_record(pending_value(FINGERPRINT, "0" * 32))
    assert (record.fingerprint, record.response) == (FINGERPRINT, None)


@pytest.mark.parametrize(
    "value", [b"", b"X" + FINGERPRINT.encode(), b"D" + FINGERPRINT.encode() + b"{}", b"Pshort"]
)
def test_foreign_values_are_refused(value) -> None:
    with pytest.raises(MalformedRecordError):
        parse_record(value)


@pytest.mark.parametrize(
    ("status", "kept"),
    [(200, True), (201, True), (404, True), (409, True), (429, False), (500, False), (503, False)],
)
def test_2xx_and_4xx_are_kept_except_429(status, kept) -> None:
    assert is_storable(status) is kept


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def claim(owner: str = "1" * 32, lease_ms: int = 5000) -> PendingClaim:
    return PendingClaim("u:p", "tg:{u:p}:idem:k", FINGERPRINT, pending_value(FINGERPRINT, owner), lease_ms)


def test_the_in_process_store_gives_a_key_to_one_owner_until_its_lease_ends() -> None:
    clock = FakeClock()
    store = InMemoryIdempotencyStore(clock)
    first, second = claim("1" * 32), claim("2" * 32)
    assert store.claim(first).existing is None
    assert store.claim(second).existing.response is None
    clock.now += 5.0
    assert store.claim(second).existing is None
    assert not store.complete(first, b"late", 60_000)


def test_the_in_process_store_completes_and_releases_only_for_the_owner() -> None:
    clock = FakeClock()
    store = InMemoryIdempotencyStore(clock)
    owner, other = claim("1" * 32), claim("2" * 32)
    store.claim(owner)
    store.release(other)
    response = StoredResponse(200, (), b"{}")
    assert store.complete(owner, final_value(FINGERPRINT, response), 60_000)
    assert store.claim(other).existing.response == response
    clock.now += 60.0
    assert store.claim(other).existing is None
    store.release(other)
    assert store.claim(owner).existing is None
