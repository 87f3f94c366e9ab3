"""Where a webhook may be sent: the guard against server-side request forgery.

A subscriber names a URL and the exchange connects to it, so a URL must not
reach the exchange's own network: by default only `https` URLs whose host
resolves to public (globally routable) addresses are accepted — checked when the
subscription is made and again at every delivery, and the delivery connects to
the very address that was checked (no second lookup an attacker's DNS could
answer differently). Loopback, private, link-local (cloud metadata at
169.254.169.254), shared, reserved and multicast addresses are refused, as are
IPv4 addresses hidden in IPv6 (mapped, compatible, 6to4, Teredo, NAT64).
`allow_private` (EXCHANGE_WEBHOOK_ALLOW_PRIVATE) lifts both rules for development
and tests. Credentials in URLs are refused: they would be stored in the clear.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 2000


class Refused(ValueError):
    """A URL the exchange will not send to; the message says why."""


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    address: str
    port: int
    scheme: str

    @property
    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        parts = urlsplit(self.url)
        path = parts.path or "/"
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.scheme}://{host}:{self.port}{path}{query}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


# IPv6 prefixes that carry an IPv4 address a gateway may forward to: IPv4-compatible
# (deprecated), NAT64 (well-known and local-use).
_EMBEDDING = tuple(
    ipaddress.ip_network(prefix) for prefix in ("::/96", "64:ff9b::/96", "64:ff9b:1::/48")
)


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped or address.sixtofour or address.teredo:
            return False
        if any(address in network for network in _EMBEDDING):
            return False
    return address.is_global and not address.is_multicast


def checked(url: str, *, allow_private: bool) -> Target:
    """The URL's target, resolved and checked now; Refused with the reason otherwise."""
    if len(url) > MAX_URL:
        raise Refused(f"a webhook URL is at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(f"not a URL: {error}") from None
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed_schemes:
        raise Refused("a webhook URL must use https")
    if not parts.hostname:
        raise Refused("a webhook URL needs a host")
    if parts.username is not None or parts.password is not None:
        raise Refused("a webhook URL must not carry credentials")
    if parts.fragment:
        raise Refused("a webhook URL has no fragment")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Refused(f"{parts.hostname} does not resolve: {error}") from None
    addresses = sorted({ipaddress.ip_address(info[4][0].split("%")[0]) for info in found}, key=str)
    if not allow_private:
        refused = [str(a) for a in addresses if not _public(a)]
        if refused:
            raise Refused(
                f"{parts.hostname} resolves to {', '.join(refused)}, which is not a public "
                "address; webhooks are sent only to the public internet"
            )
    if not addresses:
        raise Refused(f"{parts.hostname} does not resolve")
    return Target(url, parts.hostname, str(addresses[0]), port, parts.scheme)
