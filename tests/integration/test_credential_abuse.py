"""Credential abuse through the real gateway and orchestrator: failures per address, the rejected-key
cache, per-account login throttling (SQLite and PostgreSQL) and the password hasher's bounded queue.

Clients are told apart by ``X-Forwarded-For``, which the gateways believe from 127.0.0.1 (a
trusted proxy), so one test machine can be many addresses, IPv4 and IPv6.
"""

import concurrent.futures
import secrets

import httpx
import pytest

from tests.integration.processes import Gateway
from tests.integration.processes import create_api_key
from tests.integration.processes import free_port
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration

FAILURE_LIMIT = 6
VALIDATE_RPC = "AuthService/ValidateApiKey"
PASSWORD = "correct horse battery staple"
REFUSAL_SECONDS = 10


def random_key() -> str:
    return "sk_" + secrets.token_hex(32)


def get_tasks(url: str, address: str, key: str) -> httpx.Response:
    return httpx.get(
        url + "/api/v1/tasks", headers={"X-API-Key": key, "X-Forwarded-For": address}, timeout=30
    )


def validations(stack) -> int:
    """Return how many ValidateApiKey calls the orchestrator has logged so far."""
    return stack.orchestrator.log_path.read_text().count(VALIDATE_RPC)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert (body["code"], body["window"]) == ("too_many_auth_failures", "minute")
    assert body["error"] and body["request_id"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "WWW-Authenticate" not in response.headers


@pytest.fixture()
def shared_gateways(tmp_path, redis_server):
    """An orchestrator and two gateways (two workers each) sharing one Redis, with a small failure limit."""
    stack = start_stack(
        tmp_path,
        TASKGATE_ENV="test",
        TASKGATE_REDIS_URL=redis_server.url,
        TASKGATE_TRUSTED_PROXIES="127.0.0.1",
        TASKGATE_AUTH_FAILURES_PER_MINUTE=str(FAILURE_LIMIT),
    )
    bind = f"127.0.0.1:{free_port()}"
    second = Gateway(
        env={**stack.env, "TASKGATE_GATEWAY_BIND": bind},
        url=f"http://{bind}",
        log_path=tmp_path / "gateway-2.log",
    )
    try:
        second.start()
        yield stack, [stack.url, second.url]
    finally:
        second.stop()
        stack.stop()


def test_failures_from_one_address_are_refused_across_gateways_and_cost_no_lookups_once_over(shared_gateways):
    stack, urls = shared_gateways
    good_key = create_api_key(stack.env, "ada@example.com")
    before = validations(stack)
    answers = [get_tasks(urls[n % 2], "198.51.100.10", random_key()) for n in range(FAILURE_LIMIT)]
    assert [answer.status_code for answer in answers] == [401] * FAILURE_LIMIT
    # Counted in Redis, so the limit holds across both gateways and all their workers.
    for n in range(30):
        assert_refused(get_tasks(urls[n % 2], "198.51.100.10", random_key()))
    # Once a worker has seen the address over, it refuses without asking the orchestrator: at most
    # one more lookup per worker (2 gateways x 2 workers) beyond the counted failures.
    wait_until(lambda: validations(stack) >= before + FAILURE_LIMIT, what="the failures' lookups")
    assert validations(stack) - before <= FAILURE_LIMIT + 4

    # Another address still authenticates, and its own failures are its own.
    for url in urls:
        assert get_tasks(url, "198.51.100.11", good_key).status_code == 200
        assert get_tasks(url, "198.51.100.11", random_key()).status_code == 401


def test_an_ipv6_neighbour_in_the_same_64_shares_the_window_and_the_next_64_does_not(shared_gateways):
    stack, urls = shared_gateways
    good_key = create_api_key(stack.env, "bob@example.com")
    for n in range(FAILURE_LIMIT):
        address = f"2001:db8:77:1::{n + 1:x}"
        assert get_tasks(urls[n % 2], address, random_key()).status_code == 401
    for url in urls:
        assert_refused(get_tasks(url, "2001:db8:77:1:ffff:eeee:dddd:cccc", random_key()))
        assert_refused(get_tasks(url, "[2001:db8:77:1::abc]:443", random_key()))
        assert get_tasks(url, "2001:db8:77:2::1", random_key()).status_code == 401
        assert get_tasks(url, "2001:db8:77:2::1", good_key).status_code == 200


def test_failed_logins_count_against_the_address_too(shared_gateways):
    stack, urls = shared_gateways
    body = {"email": "nobody@example.com", "password": "not the password"}
    statuses = [
        httpx.post(
            urls[n % 2] + "/api/v1/auth/login",
            json=body,
            headers={"X-Forwarded-For": "203.0.113.5"},
            timeout=30,
        ).status_code
        for n in range(FAILURE_LIMIT + 3)
    ]
    assert statuses == [401] * FAILURE_LIMIT + [429] * 3


def test_one_bad_key_repeated_reaches_the_orchestrator_once_per_ttl_per_worker(tmp_path, redis_server):
    stack = start_stack(
        tmp_path,
        TASKGATE_ENV="test",
        TASKGATE_REDIS_URL=redis_server.url,
        TASKGATE_API_KEY_REJECTION_CACHE_SECONDS="60",
        TASKGATE_GATEWAY_WORKERS="2",
    )
    try:
        bad_key = random_key()
        before = validations(stack)
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(lambda _: get_tasks(stack.url, "127.0.0.1", bad_key).status_code, range(60))
            )
        assert statuses == [401] * 60
        wait_until(lambda: validations(stack) > before, what="the first lookup")
        # Concurrent misses of one key in a worker wait for one lookup; each worker asks once.
        assert validations(stack) - before <= 2
        # A different bad key is looked up on its own.
        assert get_tasks(stack.url, "127.0.0.1", random_key()).status_code == 401
        wait_until(lambda: validations(stack) - before >= 2, what="the second key's lookup")
    finally:
        stack.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def throttled_stack(request, tmp_path):
    """A stack refusing an email's logins after 3 failures, on each store.

    The first refusal is long enough for the test's next logins to meet it on a busy machine.
    """
    overrides = {}
    if request.param == "postgres":
        overrides["TASKGATE_DATABASE_URL"] = request.getfixturevalue("postgres_server").create_database()
    stack = start_stack(
        tmp_path,
        TASKGATE_ENV="test",
        TASKGATE_LOGIN_THROTTLE_AFTER_FAILURES="3",
        TASKGATE_LOGIN_THROTTLE_BASE_SECONDS=str(REFUSAL_SECONDS),
        TASKGATE_LOGIN_THROTTLE_MAX_SECONDS=str(REFUSAL_SECONDS * 2),
        **overrides,
    )
    yield stack
    stack.stop()


def login(stack, email: str, password: str) -> httpx.Response:
    return httpx.post(
        stack.url + "/api/v1/auth/login", json={"email": email, "password": password}, timeout=300
    )


def shape(response: httpx.Response) -> tuple:
    """What a client learns from a login's answer, its request id aside."""
    body = {key: value for key, value in response.json().items() if key != "request_id"}
    return response.status_code, body, "Retry-After" in response.headers


def test_logins_of_an_email_are_throttled_alike_with_or_without_an_account_and_a_success_resets(
    throttled_stack,
):
    stack = throttled_stack
    registered = httpx.post(
        stack.url + "/api/v1/auth/register",
        json={"email": "ada@example.com", "password": PASSWORD},
        timeout=30,
    )
    assert registered.status_code in (200, 201), registered.text
    known = [shape(login(stack, "ada@example.com", "wrong password")) for _ in range(4)]
    # While refused, even the right password is refused (and costs no hashing).
    throttled = login(stack, "ada@example.com", PASSWORD)
    assert throttled.status_code == 429 and 1 <= int(throttled.headers["Retry-After"]) <= REFUSAL_SECONDS
    unknown = [shape(login(stack, "nobody@example.com", "wrong password")) for _ in range(4)]
    assert known == unknown
    assert [status for status, _, _ in known] == [401, 401, 401, 429]
    assert known[3][1]["code"] == "login_throttled"

    # A refusal is not a failure, so trying the right password until the refusal ends lets it in.
    def logged_in():
        response = login(stack, "ada@example.com", PASSWORD)
        assert response.status_code in (200, 429), response.text
        return response.status_code == 200

    wait_until(logged_in, timeout=REFUSAL_SECONDS * 4, interval=0.5, what="the refusal to end")
    # The success forgot the failures: wrong passwords are ordinary failures again, up to the threshold.
    assert [login(stack, "ada@example.com", "wrong password").status_code for _ in range(3)] == [401] * 3
    assert login(stack, "ada@example.com", "wrong password").status_code == 429


def test_a_flood_of_logins_beyond_the_hashers_queue_is_answered_503_at_once_never_left_hanging(tmp_path):
    # A long deadline: on a loaded machine one argon2 hash takes seconds, and the logins admitted
    # must end in their own answer (401) rather than the gateway's 504 for this test to say anything.
    stack = start_stack(
        tmp_path,
        TASKGATE_ENV="test",
        TASKGATE_PASSWORD_QUEUE_LIMIT="1",
        TASKGATE_UPSTREAM_TIMEOUT_SECONDS="300",
    )
    try:

        def attempt(n: int) -> httpx.Response:
            return login(stack, f"flood-{n}@example.com", "not the password")

        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(attempt, range(64)))
        statuses = {answer.status_code for answer in answers}
        # Every login was answered (none timed out): checked and refused, or told to come back.
        assert statuses <= {401, 503}, statuses
        busy = [answer for answer in answers if answer.status_code == 503]
        assert busy, f"the flood never filled the queue: {sorted(answer.status_code for answer in answers)}"
        for answer in busy:
            assert answer.json()["code"] == "unavailable"
            assert int(answer.headers["Retry-After"]) >= 1
    finally:
        stack.stop()
