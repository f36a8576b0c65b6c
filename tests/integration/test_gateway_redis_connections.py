"""The gateway's own script connections: each reply reaches its caller, lost scripts are loaded again."""

import concurrent.futures

import redis

from gateway.redis_client import GatewayRedis
from gateway.redis_client import RedisUnavailableError
from gateway.redis_client import connect
from tests.integration.processes import wait_until

ECHO_LUA = "return {KEYS[1], ARGV[1], ARGV[2]}"


def test_concurrent_scripts_each_get_their_own_reply(redis_server) -> None:
    client = connect(redis_server.url, timeout_seconds=5.0)
    gateway_redis = GatewayRedis(client)
    script = gateway_redis.script(ECHO_LUA)

    def echo(number: int) -> list:
        return gateway_redis.run(script, [f"key-{number}"], [f"value-{number}", number])

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        replies = list(pool.map(echo, range(500)))
    assert replies == [[f"key-{n}".encode(), f"value-{n}".encode(), str(n).encode()] for n in range(500)]
    client.close()


def test_arguments_of_any_type_and_bytes_are_sent_as_given(redis_server) -> None:
    client = connect(redis_server.url, timeout_seconds=5.0)
    gateway_redis = GatewayRedis(client)
    script = gateway_redis.script(ECHO_LUA)
    assert gateway_redis.run(script, ["k\r\nk"], [b"\x00\xff", "é"]) == [b"k\r\nk", b"\x00\xff", "é".encode()]
    client.close()


def test_connections_closed_by_redis_are_opened_again(redis_server) -> None:
    client = connect(redis_server.url, timeout_seconds=5.0)
    gateway_redis = GatewayRedis(client, pause_seconds=0.05)
    script = gateway_redis.script(ECHO_LUA)
    assert gateway_redis.run(script, ["k"], ["before", 1])[1] == b"before"
    admin = redis.Redis.from_url(redis_server.url)
    admin.client_kill_filter(_type="normal", skipme=True)
    admin.close()

    def answers() -> bool:
        try:
            return gateway_redis.run(script, ["k"], ["after", 2])[1] == b"after"
        except RedisUnavailableError:
            return False

    wait_until(answers, what="the script connection to be opened again")
    client.close()


def test_concurrent_scripts_after_a_script_flush_are_all_answered(redis_server) -> None:
    client = connect(redis_server.url, timeout_seconds=5.0)
    gateway_redis = GatewayRedis(client)
    script = gateway_redis.script(ECHO_LUA + " -- flushed")
    nothing = gateway_redis.script("return nil")
    assert gateway_redis.run(nothing, [], []) is None
    admin = redis.Redis.from_url(redis_server.url)
    admin.script_flush()
    admin.close()

    def echo(number: int) -> list:
        return gateway_redis.run(script, [f"key-{number}"], [f"value-{number}", number])

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(echo, range(200)))
    assert replies == [[f"key-{n}".encode(), f"value-{n}".encode(), str(n).encode()] for n in range(200)]
    assert gateway_redis.run(nothing, [], []) is None
    client.close()
