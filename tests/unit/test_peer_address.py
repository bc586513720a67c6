"""Reading the caller's address from gRPC's peer string, for per-key network allowlists."""

from __future__ import annotations

import pytest

from ordergate_server.api.interceptors import peer_address


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:203.0.113.7:51234", "203.0.113.7"),
        ("ipv6:[::1]:51234", "::1"),
        ("ipv6:[2001:db8::5]:443", "2001:db8::5"),
        ("unix:/tmp/ordergate.sock", ""),
        ("", ""),
    ],
)
def test_peer_address(peer: str, address: str) -> None:
    assert peer_address(peer) == address
