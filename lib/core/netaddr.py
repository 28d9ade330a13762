"""The client's network address, as the throttles count it, behind named reverse proxies.

Streamlit (1.67, uvicorn underneath) listens on ``::``, so a proxy on the same machine connects
as ``::ffff:127.0.0.1``; uvicorn's own proxy handling trusts only ``127.0.0.1`` and ``::1``
(``FORWARDED_ALLOW_IPS``), so it ignored ``X-Forwarded-For`` and every visitor had the proxy's
address. The rule here:

- the proxies to believe are named in ``TRUSTED_PROXIES`` (addresses or CIDR networks, comma
  or space separated; default loopback, ``127.0.0.1`` and ``::1``; empty: believe nobody);
- an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is its IPv4 address, for the peer, for the
  trusted list and for the address finally used;
- ``X-Forwarded-For`` is read from the right: while the hop we stand on is trusted, step to the
  address it says it received the request from; the first untrusted hop is the client. A value
  a client wrote itself (anything left of that hop) is never believed; an unreadable hop stops
  the walk at the last address a trusted proxy vouched for, so garbage cannot mint new identities;
- an IPv6 client counts as its /64 network, which one subscriber holds whole: stepping through
  its addresses must not reset a limit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from lib.core.config import ConfigError

TRUSTED_PROXIES_ENV = "TRUSTED_PROXIES"
DEFAULT_TRUSTED_PROXIES = "127.0.0.1, ::1"
MAX_HOPS = 16  # proxies we walk back through at most; a longer header is a client's invention
MAX_HOP_CHARS = 64
IPV6_PREFIX = 64
UNKNOWN = "unknown"

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

_PORT_V4 = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$")
_BRACKETED = re.compile(r"^\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\](?::\d{1,5})?$")


def _unmapped(address: Address) -> Address:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_address(text: object) -> Address | None:
    """An address as a proxy or a socket writes it (``1.2.3.4``, ``1.2.3.4:5678``, ``::1``,
    ``[::1]:443``), IPv4-mapped made IPv4; None for anything else."""
    if not isinstance(text, str) or len(text) > MAX_HOP_CHARS:
        return None
    text = text.strip()
    if match := _PORT_V4.match(text) or _BRACKETED.match(text):
        text = match.group(1)
    try:
        return _unmapped(ip_address(text))
    except ValueError:
        return None


def parse_trusted(text: str) -> tuple[Network, ...]:
    """The trusted proxies from the setting's text. A wrong entry stops the app with a clear
    error rather than silently trusting less (or more) than was meant; "*" is refused, since
    trusting every hop lets any client write its own address."""
    networks: list[Network] = []
    for entry in filter(None, re.split(r"[\s,]+", text.strip())):
        try:
            network = ip_network(entry, strict=True)
        except ValueError as err:
            raise ConfigError(f"{TRUSTED_PROXIES_ENV}: {entry!r} is not an address or a network "
                              f"({err})") from None
        if isinstance(network, IPv6Network) and network.prefixlen >= 96 \
                and network.network_address.ipv4_mapped is not None:
            mapped = network.network_address.ipv4_mapped
            network = IPv4Network(f"{mapped}/{network.prefixlen - 96}")
        networks.append(network)
    return tuple(networks)


def trusted_proxies() -> tuple[Network, ...]:
    """``TRUSTED_PROXIES`` (default loopback). Read each time: a few entries cost microseconds."""
    return parse_trusted(os.environ.get(TRUSTED_PROXIES_ENV, DEFAULT_TRUSTED_PROXIES))


def is_trusted(address: Address, trusted: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_ip(peer: object, forwarded_for: Iterable[str], trusted: Iterable[Network]) -> Address | None:
    """The client's address: the peer, or, while the hop is a trusted proxy, the address that
    proxy appended to ``X-Forwarded-For`` (every header line, in order, read from the right).
    None when the peer itself is unreadable."""
    trusted = tuple(trusted)
    current = parse_address(peer)
    if current is None:
        return None
    hops = [hop for line in forwarded_for if isinstance(line, str) for hop in line.split(",")]
    for hop in list(reversed(hops))[:MAX_HOPS]:
        if not is_trusted(current, trusted):
            break
        previous = parse_address(hop)
        if previous is None:
            break  # unreadable: the last address a trusted proxy vouched for stands
        current = previous
    return current


def throttle_address(address: Address | None) -> str:
    """The text the throttles count a client by: the IPv4 address, or the IPv6 /64 network."""
    if address is None:
        return UNKNOWN
    if isinstance(address, IPv6Address) and not address.is_loopback:
        return str(IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def client_address(peer: object, forwarded_for: Iterable[str],
                   trusted: Iterable[Network] | None = None) -> str:
    """What the throttles count a request by, from its peer and its ``X-Forwarded-For`` lines,
    believing only ``trusted`` proxies (default: the ``TRUSTED_PROXIES`` setting)."""
    return throttle_address(client_ip(peer, forwarded_for,
                                      trusted_proxies() if trusted is None else trusted))
