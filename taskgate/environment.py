"""Reading ``TASKGATE_*`` variables: the one set of rules both services' settings are read by.

Every value is stripped of surrounding whitespace first (a secret mounted from a file ends with a
newline, and both services must read the same token from it), and a value that is empty once
stripped counts as unset. Every refusal is a SettingsError whose message is one line naming the
variable and what is wrong with it. Only readers of values that cannot be secret (numbers,
switches, choices, addresses) quote the value back.
"""

import math
import re
import urllib.parse
from collections.abc import Mapping

# The values of TASKGATE_ENV; dev and test relax the rules meant for real deployments.
ENVIRONMENTS = ("dev", "test", "production")
RELAXED_ENVIRONMENTS = ("dev", "test")

_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_ADDRESS = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._\-]+):(?P<port>[0-9]{1,5})")
_MAX_PORT = 65535


class SettingsError(ValueError):
    """A configuration variable is missing or has an unusable value; the message names it."""


def split_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` allowed) into its host, without brackets, and port.

    Raises ValueError when the address is not of that shape or the port is above 65535.
    """
    match = _ADDRESS.fullmatch(address)
    if match is None or int(match["port"]) > _MAX_PORT:
        raise ValueError(f"not a host:port address: {address!r}")
    return match["host"].strip("[]"), int(match["port"])


class Environment:
    """Typed reads of one mapping of variables (``os.environ``, or a test's dict)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        """Return the value without surrounding whitespace, or None when it is unset or blank."""
        value = self._environ.get(name, "").strip()
        return value or None

    def string(self, name: str, default: str, max_length: int) -> str:
        """Read free text of at most ``max_length`` characters."""
        value = self.raw(name)
        if value is None:
            return default
        if len(value) > max_length:
            raise SettingsError(f"{name} must be at most {max_length} characters")
        return value

    def secret(self, name: str, min_length: int) -> str | None:
        """Read an optional secret of at least ``min_length`` characters; never quoted back."""
        value = self.raw(name)
        if value is not None and len(value) < min_length:
            raise SettingsError(f"{name} must be at least {min_length} characters")
        return value

    def required_secret(self, name: str, min_length: int) -> str:
        """Read a secret that must be set, of at least ``min_length`` characters."""
        value = self.secret(name, min_length)
        if value is None:
            raise SettingsError(f"{name} is required (at least {min_length} characters)")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...], upper: bool = False) -> str:
        """Read one of ``allowed``, compared lower-case (upper-case with ``upper``)."""
        value = self.raw(name)
        if value is None:
            return default
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        """Read a whole number from ``minimum`` to ``maximum`` (no upper bound when None)."""
        value = self.raw(name)
        if value is None:
            return default
        number = int(value) if _INTEGER.fullmatch(value) else None
        if number is None or number < minimum or (maximum is not None and number > maximum):
            bounds = f"of at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise SettingsError(f"{name} must be an integer {bounds}, got {value!r}")
        return number

    def number(
        self,
        name: str,
        default: float,
        minimum: float = 0.0,
        maximum: float = math.inf,
        above_minimum: bool = False,
    ) -> float:
        """Read a finite number from ``minimum`` (excluded with ``above_minimum``) to ``maximum``."""
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        too_low = number <= minimum if above_minimum else number < minimum
        if not math.isfinite(number) or too_low or number > maximum:
            low = f"greater than {minimum:g}" if above_minimum else f"at least {minimum:g}"
            bounds = low if maximum == math.inf else f"{low} and at most {maximum:g}"
            raise SettingsError(f"{name} must be a number {bounds}, got {value!r}")
        return number

    def boolean(self, name: str, default: bool = False) -> bool:
        """Read a switch: 1, true, yes, on or 0, false, no, off, in any case."""
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered not in _TRUE_WORDS + _FALSE_WORDS:
            raise SettingsError(f"{name} must be 1 or 0 (or true/false, yes/no, on/off), got {value!r}")
        return lowered in _TRUE_WORDS

    def items(self, name: str) -> tuple[str, ...]:
        """Read a comma-separated list: each item stripped, empty items left out; () when unset."""
        value = self.raw(name) or ""
        return tuple(item.strip() for item in value.split(",") if item.strip())

    def host_port(self, name: str, default: str) -> str:
        """Read a ``host:port`` address (``[v6]:port`` allowed, port 0..65535)."""
        value = self.raw(name) or default
        try:
            split_address(value)
        except ValueError:
            raise SettingsError(
                f"{name} must be host:port with a port from 0 to 65535, got {value!r}"
            ) from None
        return value

    def url(self, name: str, schemes: tuple[str, ...], require_host: bool = False) -> str | None:
        """Read an optional URL of one of ``schemes``; never quoted back, since it may hold a password."""
        value = self.raw(name)
        if value is None:
            return None
        parts = urllib.parse.urlsplit(value)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if parts.scheme not in schemes or not port_ok or (require_host and not parts.hostname):
            kinds = ", ".join(f"{scheme}://" for scheme in schemes)
            raise SettingsError(f"{name} must be a URL starting with one of {kinds}")
        return value
