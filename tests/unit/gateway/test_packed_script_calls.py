"""A script's call packed once but for its first argument is the same command as one packed whole."""

from gateway.redis_client import LuaScript


def test_a_packed_call_with_its_first_argument_is_the_whole_call() -> None:
    script = LuaScript.of("return {KEYS[1], ARGV[1]}")
    keys = ["tg:{u:1}:rl:c:minute", "tg:{u:1}:rl:c:hour"]
    later = [2, 60, 60_000, "é", b"\x00\r\n"]
    packed = script.packed_call(keys, later)
    for member in ("a1", "9f3c00ff12ab7", ""):
        assert packed.command(member) == script.call(keys, [member, *later])


def test_a_call_without_keys_or_later_arguments_is_packed_too() -> None:
    script = LuaScript.of("return ARGV[1]")
    assert script.packed_call([], []).command("only") == script.call([], ["only"])
