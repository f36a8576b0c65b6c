"""The environment reader both services' settings use: stripping, blanks as unset, typed values, one error."""

import pytest

from taskgate.environment import Environment
from taskgate.environment import SettingsError
from taskgate.environment import split_address


def read(**variables: str) -> Environment:
    return Environment(variables)


def one_line_naming(raised: pytest.ExceptionInfo[SettingsError], name: str) -> str:
    message = str(raised.value)
    assert message.startswith(name) and "\n" not in message
    return message


@pytest.mark.parametrize("value", ["value", " value", "value\n", "\tvalue \r\n"])
def test_values_are_stripped(value: str) -> None:
    assert read(NAME=value).raw("NAME") == "value"


@pytest.mark.parametrize("value", ["", " ", "\n", " \t\r\n"])
def test_a_blank_value_is_unset(value: str) -> None:
    environment = read(NAME=value)
    assert environment.raw("NAME") is None
    assert environment.string("NAME", "default", 10) == "default"
    assert environment.integer("NAME", 7, minimum=0) == 7
    assert environment.number("NAME", 1.5) == 1.5
    assert environment.boolean("NAME") is False
    assert environment.items("NAME") == ()
    assert environment.url("NAME", ("redis",)) is None
    assert environment.secret("NAME", 4) is None


def test_settings_errors_are_value_errors() -> None:
    assert issubclass(SettingsError, ValueError)


def test_string_has_a_length_limit() -> None:
    assert read(NAME=" issuer \n").string("NAME", "default", 6) == "issuer"
    with pytest.raises(SettingsError) as raised:
        read(NAME="i" * 7).string("NAME", "default", 6)
    assert one_line_naming(raised, "NAME") == "NAME must be at most 6 characters"


def test_secrets_are_checked_for_length_and_never_quoted() -> None:
    assert read(TOKEN="s3cret-value\n").secret("TOKEN", 8) == "s3cret-value"
    with pytest.raises(SettingsError) as raised:
        read(TOKEN="s3cret").secret("TOKEN", 8)
    assert "s3cret" not in one_line_naming(raised, "TOKEN")
    with pytest.raises(SettingsError, match="TOKEN is required") as raised:
        read().required_secret("TOKEN", 8)
    with pytest.raises(SettingsError, match="TOKEN is required"):
        read(TOKEN=" \n").required_secret("TOKEN", 8)


def test_choice_normalises_case() -> None:
    assert read(LEVEL=" debug\n").choice("LEVEL", "INFO", ("DEBUG", "INFO"), upper=True) == "DEBUG"
    assert read(ENV=" Production ").choice("ENV", "dev", ("dev", "production")) == "production"
    with pytest.raises(SettingsError) as raised:
        read(ENV="staging").choice("ENV", "dev", ("dev", "production"))
    assert one_line_naming(raised, "ENV") == "ENV must be one of dev, production, got 'staging'"


@pytest.mark.parametrize(("value", "expected"), [("0", 0), (" 10\n", 10), ("+3", 3)])
def test_integers_within_bounds(value: str, expected: int) -> None:
    assert read(COUNT=value).integer("COUNT", 5, minimum=0, maximum=10) == expected


@pytest.mark.parametrize("value", ["-1", "11", "1.5", "ten", "1_0", "0x10", "٣"])
def test_integers_out_of_bounds_or_malformed_are_refused(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        read(COUNT=value).integer("COUNT", 5, minimum=0, maximum=10)
    assert one_line_naming(raised, "COUNT").startswith("COUNT must be an integer from 0 to 10")


def test_an_integer_without_an_upper_bound() -> None:
    assert read(COUNT="1000000").integer("COUNT", 5, minimum=1) == 1000000
    with pytest.raises(SettingsError, match="COUNT must be an integer of at least 1, got '0'"):
        read(COUNT="0").integer("COUNT", 5, minimum=1)


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), (" 2.5\n", 2.5), ("1e1", 10.0)])
def test_numbers_within_bounds(value: str, expected: float) -> None:
    assert read(SECONDS=value).number("SECONDS", 1.0, minimum=0.0, maximum=10.0) == expected


@pytest.mark.parametrize("value", ["-0.1", "10.5", "nan", "inf", "-inf", "soon"])
def test_numbers_out_of_bounds_or_not_finite_are_refused(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        read(SECONDS=value).number("SECONDS", 1.0, minimum=0.0, maximum=10.0)
    assert one_line_naming(raised, "SECONDS").startswith("SECONDS must be a number at least 0 and at most 10")


def test_a_number_above_its_minimum() -> None:
    assert read(SECONDS="0.001").number("SECONDS", 1.0, above_minimum=True) == 0.001
    with pytest.raises(SettingsError, match="SECONDS must be a number greater than 0, got '0'"):
        read(SECONDS="0").number("SECONDS", 1.0, above_minimum=True)


@pytest.mark.parametrize("value", ["1", "true", "YES", " on\n"])
def test_switches_on(value: str) -> None:
    assert read(SWITCH=value).boolean("SWITCH") is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off\n"])
def test_switches_off(value: str) -> None:
    assert read(SWITCH=value).boolean("SWITCH", default=True) is False


def test_a_switch_that_is_neither_is_refused() -> None:
    with pytest.raises(SettingsError) as raised:
        read(SWITCH="maybe").boolean("SWITCH")
    assert one_line_naming(raised, "SWITCH").startswith("SWITCH must be 1 or 0")


def test_lists_are_comma_separated_stripped_and_skip_empty_items() -> None:
    assert read(LIST=" a, b ,,c,\n").items("LIST") == ("a", "b", "c")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:50052", ("127.0.0.1", 50052)),
        ("[::1]:0", ("::1", 0)),
        ("orchestrator_1:80", ("orchestrator_1", 80)),
    ],
)
def test_addresses_split_into_host_and_port(value: str, expected: tuple[str, int]) -> None:
    assert split_address(value) == expected
    assert read(ADDR=f" {value}\n").host_port("ADDR", "127.0.0.1:1") == value


@pytest.mark.parametrize("value", ["localhost", ":8080", "host:port", "host:65536", "host:80\nx", "a b:80"])
def test_bad_addresses_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        split_address(value)
    with pytest.raises(SettingsError) as raised:
        read(ADDR=value).host_port("ADDR", "127.0.0.1:1")
    one_line_naming(raised, "ADDR")


def test_urls_are_checked_by_scheme_and_never_quoted() -> None:
    assert read(URL=" redis://:pw@cache:6379/0\n").url("URL", ("redis", "unix")) == "redis://:pw@cache:6379/0"
    assert read(URL="unix:///run/redis.sock").url("URL", ("redis", "unix")) == "unix:///run/redis.sock"
    for bad in ("http://:hunter2@cache", "redis://:hunter2@cache:port", "cache:6379"):
        with pytest.raises(SettingsError) as raised:
            read(URL=bad).url("URL", ("redis", "unix"))
        assert "hunter2" not in one_line_naming(raised, "URL")
    with pytest.raises(SettingsError, match="URL must be a URL starting with one of http://, https://"):
        read(URL="http://").url("URL", ("http", "https"), require_host=True)
