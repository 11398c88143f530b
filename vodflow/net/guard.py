"""Which hosts vodflow may fetch sources from or post webhooks to, and an httpx transport that enforces it.

By default only `http(s)` URLs whose host resolves to public addresses are used: loopback, private,
link-local, shared (CGNAT), multicast, reserved and cloud metadata addresses are refused, also when embedded
in an IPv6 address (mapped, IPv4-compatible, SIIT, 6to4, NAT64, Teredo). A `NetPolicy` opens host names and
networks for on-prem use (`VODFLOW_ALLOWED_HOSTS`, or the webhook settings block's `allowed_hosts`).

`GuardedTransport` resolves each request's host once, checks every address, and connects to the address
it checked (TLS still verifies the host name), so a DNS answer cannot change between check and connect.
Clients follow redirects through the same transport, so every hop is checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from vodflow.net.deadline import DeadlineTransport
from vodflow.net.tls import ssl_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance metadata services (AWS, ECS, Azure wireserver, Alibaba, AWS IPv6): never opened by a name.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "168.63.129.16", "100.100.100.200", "fd00:ec2::254")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated `::a.b.c.d`
_SIIT = ipaddress.ip_network("::ffff:0:0:0/96")  # `::ffff:0:a.b.c.d`, IPv4-translated (RFC 2765)
# Never public, whatever follows the prefix: local-use NAT64 (RFC 8215) and deprecated site-local unicast.
_REFUSED_V6 = {
    ipaddress.ip_network("64:ff9b:1::/48"): "nat64-local",
    ipaddress.ip_network("fec0::/10"): "site-local",
}
ALLOWED_SCHEMES = ("http", "https")


class AddressRefused(Exception):
    """The policy refuses a URL; `reason` is safe to show (it names the host, never a resolved address)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, IPv4-compatible, SIIT, 6to4, Teredo, NAT64)."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if int(ip) > 1 and any(ip in net for net in (_NAT64, _IPV4_COMPATIBLE, _SIIT)):  # not `::` or `::1`
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refused_kind(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address (`loopback`, `private`, `metadata`...), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if (inner := _embedded_ipv4(ip)) is not None:
            return refused_kind(inner)
        for network, kind in _REFUSED_V6.items():
            if ip in network:
                return kind
    if ip in METADATA_ADDRESSES:
        return "metadata"
    for kind in ("loopback", "link_local", "unspecified", "multicast", "private", "reserved", "site_local"):
        if getattr(ip, f"is_{kind}", False):
            return kind.replace("_", "-")
    return None if ip.is_global else "reserved"


def normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class NetPolicy:
    """Allowed schemes, plus host names and networks opened beyond the public internet."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    schemes: tuple[str, ...] = ALLOWED_SCHEMES

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> NetPolicy:
        """From host names and IP addresses or CIDRs (`10.0.0.0/8`, `::1`); ValueError for a bad entry."""
        hosts, networks = set(), []
        for entry in (normalise_host(e) for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if "/" in entry or not all(part for part in entry.split(".")):
                    raise ValueError(
                        f"allowed host {entry!r}: expected a host name, an address or a CIDR"
                    ) from None
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def address_allowed(self, host: str, ip: IPAddress) -> bool:
        """True for public addresses, addresses in an allowed network, and (except metadata) allowed hosts."""
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)) is not None:
            candidates.append(inner)
        if any(c in net for c in candidates for net in self.allowed_networks if c.version == net.version):
            return True
        kind = refused_kind(ip)
        return kind is None or (kind != "metadata" and normalise_host(host) in self.allowed_hosts)

    def check_url(self, url: httpx.URL | str) -> str:
        """The URL's host when its scheme is allowed and it names one; AddressRefused otherwise."""
        url = httpx.URL(url) if isinstance(url, str) else url
        if url.scheme not in self.schemes:
            raise AddressRefused(f"scheme {url.scheme or 'none'!r} is not allowed; use http or https")
        if not url.host:
            raise AddressRefused("URL has no host")
        return normalise_host(url.host)

    def checked_addresses(self, url: httpx.URL) -> list[str]:
        """Resolve the URL's host once and return its addresses; AddressRefused when any of them is not
        allowed (a name mixing public and internal addresses is refused whole)."""
        host = self.check_url(url)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve_host(host, port)]
        except (OSError, UnicodeError) as exc:
            raise AddressRefused(f"host {host} cannot be resolved ({type(exc).__name__})") from None
        if not addresses:
            raise AddressRefused(f"host {host} has no address")
        for ip in addresses:
            if not self.address_allowed(host, ip):
                raise AddressRefused(
                    f"host {host} is a {refused_kind(ip)} address; allow it in VODFLOW_ALLOWED_HOSTS"
                )
        return [str(ip) for ip in addresses]


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (an IP literal is itself). Tests replace this function."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedTransport(httpx.BaseTransport):
    """Checks every request against a `NetPolicy` and connects to the checked address, not a new lookup.

    Connections are not kept alive, so one pinned to an address is never reused for another host name.
    Every socket operation honours the caller's `vodflow.net.deadline.io_deadline()`.
    """

    def __init__(self, policy: NetPolicy, inner: httpx.BaseTransport | None = None) -> None:
        self.policy = policy
        self._inner = inner or DeadlineTransport(
            verify=ssl_context(), limits=httpx.Limits(max_keepalive_connections=0)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = self.policy.check_url(request.url)
        addresses = self.policy.checked_addresses(request.url)
        for index, address in enumerate(addresses):  # in resolver order; the next one if it refuses
            pinned = httpx.Request(
                request.method,
                request.url.copy_with(host=address),
                headers=request.headers,  # keeps the Host header of the name
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": host},
            )
            try:
                return self._inner.handle_request(pinned)
            except httpx.ConnectError:
                if index == len(addresses) - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._inner.close()


def guarded_client(policy: NetPolicy, **kwargs: Any) -> httpx.Client:
    """An httpx client whose every request and redirect goes through `GuardedTransport`.

    Proxy variables are ignored (`trust_env=False`): a proxy would resolve names where the guard cannot see.
    """
    return httpx.Client(transport=GuardedTransport(policy), trust_env=False, **kwargs)
