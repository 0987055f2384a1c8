"""Where a webhook may point: public internet addresses only.

A webhook makes Vigil's notifier send an HTTP request to a URL a user chose. Left open, that
is a server-side request forgery: a user points it at the cloud metadata service
(169.254.169.254), the database port on 127.0.0.1 or a host on the private network, and
reads the answer in the delivery log. So a destination is checked twice:

- at registration (:func:`url_problem`): only ``http``/``https``, no localhost-style names,
  and a literal address in any spelling a resolver accepts (``127.1``, ``0x7f000001``,
  ``2130706433``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]``, trailing dots) must be public;
- at delivery (:class:`PublicOnlyTransport`): the host name is resolved, every address it
  resolves to must be public, and the connection goes to the address that was checked, so a
  DNS answer that changes between the check and the connect (rebinding) cannot slip through.

The core is :func:`address_problem`, built on :mod:`ipaddress` (``is_global``) plus the
ranges older Pythons count as global although no receiver can live there (multicast,
reserved, IETF protocol assignments), with IPv4 addresses embedded in IPv6 (mapped, 6to4,
Teredo, NAT64) checked as the IPv4 address they carry.

``allow_private`` (the ``VIGIL_WEBHOOK_ALLOW_PRIVATE`` setting, default off, for local test
receivers and on-premise installations) additionally lets through loopback, private-use
(10/8, 172.16/12, 192.168/16, fc00::/7) and shared (100.64/10) addresses and localhost
names. Link-local (the metadata service), unspecified (0.0.0.0 reaches localhost on Linux),
multicast, broadcast and reserved addresses are refused always.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import typing

import anyio
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_S = 10.0

# Counted as global by some Python versions, but never a webhook receiver.
_NEVER = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "2001::/23", "2002::/16")
)
# What ``allow_private`` lets through (besides localhost names).
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa")

REFUSED = "not a public internet address"


class DestinationRefused(httpx.ConnectError):
    """A webhook destination that is not public (raised at connect time)."""


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), else ``ip``."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_problem(ip: IPAddress, allow_private: bool = False) -> str | None:
    """None when a webhook may connect to ``ip``; otherwise why not."""
    inner = embedded_ipv4(ip)
    mapped = isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None
    for addr in {inner} if mapped else {ip, inner}:
        if allow_private and any(addr in net for net in _PRIVATE if addr.version == net.version):
            continue
        special = (
            addr.is_multicast
            or addr.is_reserved
            or addr.is_unspecified
            or addr.is_link_local
            or any(addr in net for net in _NEVER if addr.version == net.version)
        )
        if special or not addr.is_global:
            return f"{ip} is {REFUSED}"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, in any spelling a resolver accepts (decimal,
    hex, octal, short forms like ``127.1``, brackets, trailing dots); None for a name."""
    h = host.strip().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        pass
    if not h or not all(c in "0123456789abcdefxABCDEFX." for c in h):
        return None  # a name (inet_aton would also take '1a', never a real host name)
    try:
        return ipaddress.IPv4Address(socket.inet_aton(h))
    except OSError:
        return None


def name_problem(name: str, allow_private: bool = False) -> str | None:
    """Host names that always mean this machine or the local network."""
    n = name.lower().rstrip(".")
    if allow_private:
        return None
    if n == "localhost" or n.endswith(_LOCAL_SUFFIXES) or "." not in n:
        return f"{name} is {REFUSED}"
    return None


def url_problem(url: str, allow_private: bool = False) -> str | None:
    """None when ``url`` may be registered as a webhook; otherwise why not (pure: names are
    not resolved here, see :func:`resolve_public`)."""
    if len(url) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return "not a valid URL"
    if parsed.scheme not in SCHEMES:
        return "must be an http or https URL"
    if not parsed.host:
        return "has no host"
    ip = literal_address(parsed.host)
    if ip is not None:
        return address_problem(ip, allow_private)
    return name_problem(parsed.host, allow_private)


async def resolve_public(host: str, port: int, allow_private: bool = False) -> list[str]:
    """The addresses ``host`` resolves to, all of them allowed (else DestinationRefused;
    one refused address refuses the name, since a resolver may pick any of them)."""
    problem = name_problem(host, allow_private) if literal_address(host) is None else None
    if problem is not None:
        raise DestinationRefused(problem)
    with anyio.fail_after(RESOLVE_TIMEOUT_S):
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for a in addresses:
        problem = address_problem(ipaddress.ip_address(a.split("%", 1)[0]), allow_private)
        if problem is not None:
            raise DestinationRefused(problem)
    if not addresses:
        raise DestinationRefused(f"{host} does not resolve")
    return addresses


def shown_url(url: str | None) -> str | None:
    """A webhook URL as it may be shown: without user:password and without the query string
    or fragment (where receivers put their tokens)."""
    if url is None:
        return None
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return "(unparseable URL)"
    return str(parsed.copy_with(username=None, password=None, query=None, fragment=None))


Resolver = typing.Callable[[str, int, bool], typing.Awaitable[list[str]]]


class _PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks the host, then connects to the checked address (TLS still
    verifies the certificate against the host name: httpcore passes the URL's host as SNI)."""

    def __init__(self, allow_private: bool, resolve: Resolver) -> None:
        self.allow_private = allow_private
        self.resolve = resolve
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        (address, *_) = await self.resolve(host, port, self.allow_private)
        return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("unix sockets are not webhook destinations")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """httpx transport that connects only to allowed addresses (see module docstring).
    No proxies from the environment (the proxy would make the connection instead)."""

    def __init__(self, allow_private: bool = False, resolve: Resolver = resolve_public) -> None:
        super().__init__(trust_env=False)
        # httpx has no public hook for the network backend: replace its connection pool with
        # one built the same way, over the checking backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_PublicOnlyBackend(allow_private, resolve),
        )


def webhook_client(
    timeout_s: float, allow_private: bool = False, resolve: Resolver = resolve_public
) -> httpx.AsyncClient:
    """The client webhooks are posted with: checked destinations, no redirects followed, no
    environment proxies. httpx logs each request's full URL at INFO, and webhook URLs carry
    receivers' secrets: its log stays at WARNING."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return httpx.AsyncClient(
        transport=PublicOnlyTransport(allow_private, resolve),
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
    )
