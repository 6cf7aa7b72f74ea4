"""Which redirects a source fetch follows: a decision on URLs alone, no I/O.

A source is a URL the operator configured. A redirect may lead elsewhere on the internet (a
feed moved, http to https), but not into the machine or network the service runs in: a page
must not make the service read its own web app, a database's HTTP port or a router's admin
page and put what it says into a mail. So a redirect is followed only when

- it leads to http or https (never file:, data:, ...), and not from https down to plain http;
- it is at most MAX_REDIRECTS deep;
- its target is a public host, or exactly the configured URL's own host and port (a local
  source may move a path on its own server, never to another port or host).

A host is local when it is an IP address that is not global (loopback, private, link-local,
shared, unspecified, multicast; IPv4-mapped and NAT64 IPv6 by the IPv4 inside), a number that
a resolver reads as an IPv4 address ("2130706433", "0x7f.1"), "localhost" or a name under
.localhost, .local, .internal or .home.arpa, or a name without a dot. A public name that
resolves to a private address is not caught here (that needs the resolved address of each
connection, which a proxy hides).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

MAX_REDIRECTS = 5
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def redirect_refusal(configured: str, current: str, target: str) -> str | None:
    """Why the redirect from `current` to `target` must not be followed for a source
    configured at `configured`, or None when it may be."""
    try:
        to = urlsplit(target)
        scheme = to.scheme.lower()
        host = (to.hostname or "").rstrip(".").lower()
        port = to.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return "the target is not a valid URL"
    if scheme not in ("http", "https"):
        return f"its target's scheme is {scheme!r}, not http(s)"
    if not host:
        return "the target names no host"
    if is_local_host(host) and (host, port) != _origin(configured):
        return (
            f"it leads to a local or private address ({host}:{port}) that is not the "
            "configured source's own"
        )
    if scheme == "http" and urlsplit(current).scheme.lower() == "https":
        return "it leads from https down to plain http"
    return None


def is_local_host(host: str) -> bool:
    """True when `host` (lower case, without a trailing dot) names this machine or a private
    network (see the module docstring)."""
    host = host.strip("[]")
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES):
        return True
    if "." not in host and ":" not in host:  # "intranet": a search domain makes it local
        return True
    address = _address(host)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _NAT64:
            address = ipaddress.IPv4Address(address.packed[-4:])
    return not address.is_global or address.is_multicast


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # Resolvers read "2130706433", "0x7f.1" and "127.1" as IPv4 addresses (inet_aton).
    if _NUMERIC_HOST.fullmatch(host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _origin(url: str) -> tuple[str, int | None]:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return (parts.hostname or "").rstrip(".").lower(), parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return "", None
