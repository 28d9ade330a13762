"""The client's address behind trusted proxies (lib.core.netaddr), with hostile headers: a
client may write any X-Forwarded-For it likes, and must never choose the address it is
counted by."""

from __future__ import annotations

import pytest

from lib.core import netaddr
from lib.core.config import ConfigError
from lib.core.netaddr import client_address, parse_trusted

LOOPBACK = parse_trusted(netaddr.DEFAULT_TRUSTED_PROXIES)
CLIENT = "203.0.113.7"


def test_the_default_trusts_loopback_only(monkeypatch):
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    assert [str(n) for n in netaddr.trusted_proxies()] == ["127.0.0.1/32", "::1/128"]
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    assert netaddr.trusted_proxies() == ()


@pytest.mark.parametrize("peer", ["::ffff:127.0.0.1", "127.0.0.1", "::1"])
def test_a_local_proxy_is_believed_however_the_socket_names_it(peer):
    """Streamlit listens on ``::``: a proxy on 127.0.0.1 arrives as ``::ffff:127.0.0.1``."""
    assert client_address(peer, [CLIENT], LOOPBACK) == CLIENT


@pytest.mark.parametrize("peer,forwarded,expected", [
    # A client that is not a proxy: its own header is ignored, whatever it says.
    ("198.51.100.1", ["1.2.3.4"], "198.51.100.1"),
    ("::ffff:198.51.100.1", ["127.0.0.1"], "198.51.100.1"),
    # The leftmost values were written by the client; only the proxy's last entry counts.
    ("::ffff:127.0.0.1", ["6.6.6.6, 127.0.0.1, " + CLIENT], CLIENT),
    ("127.0.0.1", ["6.6.6.6", CLIENT], CLIENT),  # two header lines, read in order
    # Garbage a client wrote left of the real hop is never reached.
    ("127.0.0.1", ["<script>, unknown, ' OR 1=1--, " + CLIENT], CLIENT),
    # An unreadable last hop: the proxy that forwarded it is what we can vouch for.
    ("127.0.0.1", ["garbage"], "127.0.0.1"),
    ("127.0.0.1", ["6.6.6.6, garbage"], "127.0.0.1"),  # the walk never skips past it
    ("127.0.0.1", [""], "127.0.0.1"),
    ("127.0.0.1", ["２０３.０.１１３.７"], "127.0.0.1"),  # full-width digits are not an address
    ("127.0.0.1", ["127.1"], "127.0.0.1"),
    ("127.0.0.1", [], "127.0.0.1"),
    # Ports and brackets as proxies write them; IPv4-mapped made IPv4.
    ("127.0.0.1", [CLIENT + ":5555"], CLIENT),
    ("127.0.0.1", ["::ffff:" + CLIENT], CLIENT),
    ("127.0.0.1", ["[::ffff:" + CLIENT + "]:443"], CLIENT),
    # IPv6 clients count by their /64, which one subscriber holds whole.
    ("127.0.0.1", ["[2001:db8:1:2:aaaa::1]:443"], "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", [], "2001:db8:1:2::/64"),
    # Nothing readable from the socket.
    (None, [CLIENT], "unknown"),
    ("", [CLIENT], "unknown"),
    ("unix:/run/app.sock", [CLIENT], "unknown"),
])
def test_hostile_and_odd_headers(peer, forwarded, expected):
    assert client_address(peer, forwarded, LOOPBACK) == expected


def test_a_chain_of_trusted_proxies_is_walked_back_to_the_first_untrusted_hop():
    trusted = parse_trusted("127.0.0.1, 10.0.0.0/8 ::1")
    header = ["6.6.6.6, " + CLIENT + ", 10.1.2.3, 10.9.9.9"]
    assert client_address("::ffff:127.0.0.1", header, trusted) == CLIENT
    # Without the inner proxies named, the innermost untrusted hop is the one counted.
    assert client_address("::ffff:127.0.0.1", header, LOOPBACK) == "10.9.9.9"


def test_a_client_cannot_walk_past_the_hop_limit_or_crash_on_a_huge_header():
    trusted = parse_trusted("10.0.0.0/8, 127.0.0.1")
    header = ["6.6.6.6, " + ", ".join(f"10.0.0.{i % 250}" for i in range(50_000))]
    address = client_address("127.0.0.1", header, trusted)
    assert address != "6.6.6.6" and address.startswith("10.0.0.")


def test_the_address_counted_is_the_same_for_every_spelling_of_a_client():
    spellings = [CLIENT, "::ffff:" + CLIENT, CLIENT + ":1", "[::ffff:" + CLIENT + "]:2"]
    assert {client_address("::ffff:127.0.0.1", [s], LOOPBACK) for s in spellings} == {CLIENT}


@pytest.mark.parametrize("text", ["*", "10.0.0.0/33", "10.0.0.5/8", "localhost", "127.0.0.1;",
                                  "::1/129"])
def test_a_wrong_trusted_proxy_setting_stops_the_app(monkeypatch, text):
    monkeypatch.setenv("TRUSTED_PROXIES", text)
    with pytest.raises(ConfigError):
        netaddr.trusted_proxies()


def test_mapped_entries_in_the_setting_mean_their_ipv4_form():
    assert [str(n) for n in parse_trusted("::ffff:192.0.2.1 ::ffff:192.0.2.0/120")] == \
        ["192.0.2.1/32", "192.0.2.0/24"]
    assert client_address("192.0.2.1", [CLIENT], parse_trusted("::ffff:192.0.2.1")) == CLIENT
