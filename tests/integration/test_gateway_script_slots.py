"""The gateway's script connections: bounded in number, errors reported as Redis being unavailable."""

import concurrent.futures

import pytest
import redis

from gateway.redis_client import GatewayRedis
from gateway.redis_client import RedisUnavailableError
from tests.integration.processes import wait_until

ECHO_LUA = "return ARGV[1]"


def bounded_client(url: str, connections: int) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=connections, timeout=10.0, socket_timeout=10.0, socket_connect_timeout=10.0
    )
    return redis.Redis(connection_pool=pool)


def test_more_callers_than_connections_all_get_their_reply_on_at_most_that_many(redis_server) -> None:
    client = bounded_client(redis_server.url, connections=2)
    gateway_redis = GatewayRedis(client)
    script = gateway_redis.script(ECHO_LUA)
    admin = redis.Redis.from_url(redis_server.url)
    before = len(admin.client_list())

    def echo(number: int) -> bytes:
        return gateway_redis.run(script, [], [f"call-{number}"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(echo, range(300)))
    assert replies == [f"call-{n}".encode() for n in range(300)]
    assert len(admin.client_list()) - before <= 2
    admin.close()
    client.close()


def test_an_error_reply_is_redis_unavailable_and_pauses_the_client(redis_server) -> None:
    client = bounded_client(redis_server.url, connections=4)
    gateway_redis = GatewayRedis(client, pause_seconds=0.05)
    failing = gateway_redis.script("return redis.call('INCR', KEYS[1])")
    echo = gateway_redis.script("return ARGV[1]")
    admin = redis.Redis.from_url(redis_server.url)
    admin.set("not-a-number", "text")
    with pytest.raises(RedisUnavailableError, match="ResponseError"):
        gateway_redis.run(failing, ["not-a-number"], [])

    def answers() -> bool:
        try:
            return gateway_redis.run(echo, [], ["back"]) == b"back"
        except RedisUnavailableError:
            return False

    wait_until(answers, what="the client to answer again after its pause")
    admin.close()
    client.close()
