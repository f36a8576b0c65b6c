"""The client's address for per-address limits: the peer, or X-Forwarded-For behind trusted proxies.

``X-Forwarded-For`` is believed only when the peer is a trusted proxy
(``TASKGATE_TRUSTED_PROXIES``); then the list is read from the right, skipping trusted proxies,
and the first address that is not one is the client (entries further left were written by the
client itself and could be anything). A peer without an address (a unix-socket bind) counts as a
proxy only when ``unix`` is in the list.

Per-address limits count a client's *group* (``client_group``): an IPv4 address on its own, an
IPv6 address with its whole /64. One IPv6 subscriber is routinely given a /64 (RFC 6177) and can
pick any of its 2**64 addresses for each request, so counting single IPv6 addresses would give
them unlimited tries. An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) counts as its IPv4 address.
"""

import dataclasses
import ipaddress

import falcon

UNIX_PEER = "unix"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# The prefix of an IPv6 address one subscriber may hold as a whole.
IPV6_GROUP_PREFIX = 64


@dataclasses.dataclass(frozen=True)
class TrustedProxies:
    """The networks whose X-Forwarded-For is believed, and whether a unix-socket peer is trusted."""

    networks: tuple[IpNetwork, ...] = ()
    unix_socket: bool = False

    @classmethod
    def parse(cls, text: str) -> "TrustedProxies":
        """Read a comma-separated list of CIDRs or addresses (and ``unix``); ValueError if malformed."""
        networks = []
        unix_socket = False
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            if item.lower() == UNIX_PEER:
                unix_socket = True
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return cls(networks=tuple(networks), unix_socket=unix_socket)

    def trusts(self, address: str) -> bool:
        """Return whether a peer or hop address belongs to a trusted proxy."""
        if not address:
            return self.unix_socket
        parsed = _parse_address(address)
        return parsed is not None and any(parsed in network for network in self.networks)


def client_address(req: falcon.Request, trusted: TrustedProxies) -> str:
    """Return the address requests are counted under for per-address limits."""
    peer = req.env.get("REMOTE_ADDR") or ""
    forwarded = req.get_header("X-Forwarded-For")
    if not forwarded or not trusted.trusts(peer):
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        parsed = _parse_address(hop)
        if parsed is None:
            # A hop a trusted proxy would not write: count under the nearest proxy instead.
            return peer
        if not trusted.trusts(str(parsed)):
            return str(parsed)
    return str(_parse_address(hops[0])) if hops else peer


def client_group(req: falcon.Request, trusted: TrustedProxies) -> str:
    """Return the group of addresses a request counts under: its client's address, or the /64 of it."""
    return address_group(client_address(req, trusted))


def address_group(address: str) -> str:
    """Return an IPv4 address as it is, an IPv6 address as its /64 network; anything else unchanged."""
    parsed = _parse_address(address) if address else None
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_GROUP_PREFIX), strict=False))
    return str(parsed) if parsed is not None else address


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse an address as proxies write it (``[v6]``, ``[v6]:port`` or ``v4:port`` allowed)."""
    value = text.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
