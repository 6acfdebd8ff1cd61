"""Which receivers the service may call: URL checks, and the addresses a host resolves to.

A URL's host is resolved when the endpoint is created or changed **and** before every send,
and the request then goes to the address that was checked (DNS rebinding cannot swap in
another): loopback, private (RFC 1918, ULA), link-local, multicast, reserved and unspecified
addresses are refused unless the operator allows private networks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

RESOLVE_TIMEOUT_SECONDS = 5

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The URL cannot be called: its message says why (for a 422 or a delivery's error)."""


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL as given, and the checked address to connect to."""

    url: str
    host: str
    address: str

    @property
    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (``Host`` and SNI keep the
        name)."""
        parts = urlsplit(self.url)
        address = f"[{self.address}]" if ":" in self.address else self.address
        netloc = address if parts.port is None else f"{address}:{parts.port}"
        return parts._replace(netloc=netloc).geturl()

    @property
    def host_header(self) -> str:
        parts = urlsplit(self.url)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if parts.port is None else f"{host}:{parts.port}"


def check_url(url: str) -> SplitResult:
    """The URL's parts, if it can name a receiver at all: http or https, a host, no
    credentials, no fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AddressRefused(f"Not a valid URL: {exc}.") from exc
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("The URL must start with https:// or http://.")
    if not parts.hostname:
        raise AddressRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise AddressRefused("The URL must not carry credentials.")
    if parts.fragment:
        raise AddressRefused("The URL must not carry a fragment.")
    if port == 0:
        raise AddressRefused("The URL's port must not be 0.")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise AddressRefused("The URL must not contain spaces or control characters.")
    return parts


def refusal(address: IPAddress) -> str | None:
    """Why an address may not be called (without the operator's permission), or ``None``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped)
    checks = (
        (address.is_loopback, "loopback"),
        (address.is_unspecified, "unspecified"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "non-public"),
    )
    for refused, name in checks:
        if refused:
            return name
    return None


async def resolve(url: str, *, allow_private: bool) -> Target:
    """Check the URL and resolve its host now; the first allowed address. Raises
    ``AddressRefused`` when it cannot be resolved or resolves to a refused address (one is
    enough: a name that also points inside is refused)."""
    parts = check_url(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise AddressRefused(f"Unknown host {host!r}: it does not resolve.") from exc
        addresses = []
        for *_, sockaddr in found:
            try:
                addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]))
            except ValueError:
                continue
        if not addresses:
            raise AddressRefused(f"Unknown host {host!r}: it does not resolve.")
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise AddressRefused(
                    f"Address not allowed: {host} resolves to {address} ({reason}); see "
                    "INTERVENTIONS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS."
                )
    return Target(url=url, host=host, address=str(addresses[0]))
