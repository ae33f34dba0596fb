"""Which webhook URLs may be called: http(s), not this API itself, not into the private network.

Addresses refused always: link-local ones (169.254.0.0/16, where cloud metadata services answer
at 169.254.169.254, and fe80::/10), the other known metadata addresses (fd00:ec2::254,
100.100.100.200) and multicast. Refused unless WEBHOOK_ALLOW_PRIVATE_URLS (default false; the
test suite and scripts/dev.sh turn it on for receivers on 127.0.0.1): loopback (127.0.0.0/8,
::1, 0.0.0.0, ::), the private ranges (10/8, 172.16/12, 192.168/16, fc00::/7), shared address
space (100.64/10) and whatever else is not globally routable. An IPv4-mapped IPv6 address
counts as its IPv4 address.

Checked twice:
- when an endpoint's URL is set (POST, PATCH; 422 `url_not_allowed` naming `url`): an IP
  literal as it is; a name, when private URLs are not allowed, by resolving it (DNS_TIMEOUT_SECONDS;
  one that does not resolve now is accepted: delivery checks again) and refusing it when any of
  its addresses is refused. With private URLs allowed only literals are judged (no lookup).
  Never this API itself either: the host and port the request reached (the server's socket, the
  Host header) and PUBLIC_BASE_URL's, loopback names counting as one host; a receiver on
  loopback at another port is another service.
- at every delivery: the worker's httpx connects through `GuardedBackend`, which resolves the host
  itself, refuses when any address is refused and connects to the very address it checked (no
  second lookup that DNS could answer differently). A name that pointed somewhere public when the
  endpoint was made and points inside now is never called: the delivery fails for good with the
  reason (delivery.py).
"""
import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import httpcore
import httpx
from fastapi import Request

from app.core.errors import validation_error
from app.core.settings import get_settings

DNS_TIMEOUT_SECONDS = 1.0
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
ALLOW_HINT = "set WEBHOOK_ALLOW_PRIVATE_URLS=true to allow receivers on loopback and private networks"


class Refused(Exception):
    """A webhook URL's address may not be called (the message says which and why)."""


# --------------------------------------------------------------------------- addresses

def refusal(address: str, allow_private: bool) -> str | None:
    """Why an IP address may not be called, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA:
        return "a cloud metadata address (never called)"
    if ip.is_link_local:
        return "a link-local address (never called: cloud metadata services answer there)"
    if ip.is_multicast:
        return "a multicast address (never called)"
    if allow_private:
        return None
    if ip.is_loopback or ip.is_unspecified:
        return f"a loopback address ({ALLOW_HINT})"
    if ip.is_private or ip in SHARED_ADDRESS_SPACE or not ip.is_global:
        return f"a private address ({ALLOW_HINT})"
    return None


def literal(host: str) -> str | None:
    """The host as an IP address when it is one."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def resolve(host: str, port: int, timeout: float) -> list[str]:
    """The host's addresses (the system resolver). Tests replace it to play DNS."""
    infos = await asyncio.wait_for(
        asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def allowed_addresses(host: str, port: int, timeout: float) -> list[str]:
    """The addresses to connect to for `host`; Refused when any of them may not be called."""
    allow_private = get_settings().webhook_allow_private_urls
    addresses = [host] if literal(host) else await resolve(host, port, timeout)
    for address in addresses:
        why = refusal(address, allow_private)
        if why:
            shown = host if address == host else f"{host} resolves to {address}, which"
            raise Refused(f"{shown} is {why}")
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address check in front of every TCP connection."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend):
        self._inner = inner

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = await allowed_addresses(host, port, timeout or DNS_TIMEOUT_SECONDS)
        except (OSError, asyncio.TimeoutError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc or type(exc).__name__}") from exc
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):  # pragma: no cover
        raise httpcore.ConnectError("webhooks are delivered over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guard(transport: httpx.AsyncHTTPTransport) -> httpx.AsyncHTTPTransport:
    """The transport with GuardedBackend under its connection pool (httpx has no public hook for
    the network backend; httpx is pinned, and the delivery tests fail should this ever stop working)."""
    pool = transport._pool
    pool._network_backend = GuardedBackend(pool._network_backend)
    return transport


# --------------------------------------------------------------------------- URLs as given

def host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80)


def is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _ours(request: Request) -> set[tuple[str, int]]:
    """(host, port) pairs this service answers on, as far as the request tells."""
    out = set()
    server = request.scope.get("server")
    if server and server[0] and server[1]:
        out.add((str(server[0]).lower(), int(server[1])))
    host = request.headers.get("host")
    if host:
        found = host_port(f"{request.url.scheme}://{host}/")
        if found:
            out.add(found)
    found = host_port(get_settings().public_base_url)
    if found:
        out.add(found)
    return out


async def _addresses_now(host: str, port: int) -> list[str]:
    try:
        return await resolve(host, port, DNS_TIMEOUT_SECONDS)
    except (OSError, asyncio.TimeoutError, UnicodeError, ValueError):
        return []  # not resolvable now: delivery checks again (and fails and retries), which harms nobody


async def check_url(request: Request, url: str, field: str = "url") -> str:
    """The URL as given, when it may be an endpoint's (see the module doc); else 422."""
    found = host_port(url)
    if found is None:
        raise validation_error(field, "Must be an http:// or https:// URL with a host (and a valid port).")
    host, port = found
    ours = _ours(request)
    local_ports = {p for h, p in ours if is_local(h)}
    if (host, port) in ours or (is_local(host) and port in local_ports):
        raise validation_error(field, "Points at this API itself: give the receiver's own URL.", code="url_not_allowed")
    allow_private = get_settings().webhook_allow_private_urls
    ip = literal(host)
    addresses = None
    if ip is None and host.endswith(".localhost"):
        addresses = ["127.0.0.1"]  # loopback by definition (RFC 6761): never asked of DNS
    elif ip is None and (not allow_private or (local_ports and port in local_ports)):
        addresses = await _addresses_now(host, port)
        if port in local_ports and any(is_local(a.split("%")[0]) for a in addresses):
            raise validation_error(field, "Resolves to this API itself: give the receiver's own URL.", code="url_not_allowed")
    for address in [ip] if ip else addresses or ():
        why = refusal(address, allow_private)
        if why:
            shown = "Its host is" if address == ip else f"{host} resolves to {address}, which is"
            raise validation_error(field, f"{shown} {why}.", code="url_not_allowed")
    return url
