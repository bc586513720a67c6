"""Where webhooks may go: not into the server's own networks (server-side request forgery).

A target's host is resolved and every address it resolves to is checked: a private, loopback,
link-local, multicast, reserved or unspecified address is refused unless one of the
ORDERGATE_WEBHOOK_ALLOWED_NETWORKS holds it (a deployment that does deliver into its own
network, or a test's local receiver). The sender checks again at every delivery, on the address
it then connects to, so a name that later resolves elsewhere (DNS rebinding) is caught too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from ...domain.limits import shown
from ...domain.webhooks import Network
from ..errors import ErrorKind, FieldViolation, ServiceError

Networks = Sequence[Network]
MAX_URL_LENGTH = 2000


def check_target(url: str, allowed: Networks, *, resolve: bool) -> list[str]:
    """The addresses `url` may be delivered to; ServiceError for a URL that is not http(s), or
    a host that resolves into a forbidden network (or, with `resolve`, does not resolve)."""
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refused(
            "WEBHOOK_URL_INVALID",
            f"{shown(url)} is not an http(s) URL of at most {MAX_URL_LENGTH} characters.",
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, ValueError, UnicodeError):
        if not resolve:
            return []
        raise _refused(
            "WEBHOOK_URL_INVALID", f"The host {shown(parts.hostname)} does not resolve."
        ) from None
    addresses = sorted({str(info[4][0]) for info in found})
    for address in addresses:
        if not allowed_address(address, allowed):
            raise _refused(
                "WEBHOOK_TARGET_FORBIDDEN",
                f"{shown(parts.hostname)} is in a private, loopback or link-local network "
                f"({address}); such targets need ORDERGATE_WEBHOOK_ALLOWED_NETWORKS.",
            )
    return addresses


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def allowed_address(address: str, allowed: Networks) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if any(ip in network for network in allowed):
        return True
    if not ip.is_global or ip.is_multicast:
        return False
    # An IPv6 address that carries an IPv4 one (6to4, Teredo, NAT64) is judged by that too:
    # [64:ff9b::7f00:1] is 127.0.0.1 to a NAT64 gateway.
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return all(allowed_address(str(inner), allowed) for inner in embedded if inner)
    return True


def _refused(reason: str, message: str) -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID_ARGUMENT,
        reason,
        message,
        field_violations=[FieldViolation("url", message[:150])],
    )
