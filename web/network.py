"""What the panel believes about the network a request came through: the names it answers to
(the Host header), the client's address and whether the browser used https — the last two from
a reverse proxy's X-Forwarded-* headers only when that proxy is listed in panel.trusted_proxies.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from config import Config

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _split_host(value: str) -> tuple[str, int | None] | None:
    """("name", port) of a Host header or an allowed_hosts entry; None if it is not one."""
    try:
        parts = urlsplit("//" + value)
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class NetworkPolicy:
    """panel.allowed_hosts, panel.trusted_proxies and panel.secure_cookies, ready to use."""

    allowed_hosts: tuple[tuple[str, int | None], ...] = ()
    trusted_proxies: tuple[Network, ...] = ()
    secure_cookies: bool = False

    @classmethod
    def from_config(cls, config: Config) -> NetworkPolicy:
        entries = list(config.panel.allowed_hosts)
        if config.panel.host not in ("0.0.0.0", "::"):  # a panel bound to one address answers to it
            entries.append(f"[{config.panel.host}]:{config.panel.port}" if ":" in config.panel.host
                           else f"{config.panel.host}:{config.panel.port}")
        hosts = tuple(h for h in (_split_host(e) for e in entries) if h is not None)
        proxies = tuple(ipaddress.ip_network(p, strict=False) for p in config.panel.trusted_proxies)
        return cls(allowed_hosts=hosts, trusted_proxies=proxies, secure_cookies=config.panel.secure_cookies)

    def _trusted(self, address: str | None) -> bool:
        ip = _address(address) if address else None
        return ip is not None and any(ip in net for net in self.trusted_proxies)

    def host_allowed(self, request: web.Request) -> bool:
        """Whether the Host header names this panel: a loopback name on the port the request came
        in on, or an entry of panel.allowed_hosts (without a port there: any port)."""
        header = request.headers.get("Host")
        split = _split_host(header) if header else None
        if split is None or not split[0]:
            return False
        name, port = split
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        local_port = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
        if name in LOOPBACK_NAMES and port == local_port:
            return True
        return any(name == allowed and (allowed_port is None or allowed_port == port)
                   for allowed, allowed_port in self.allowed_hosts)

    def client_address(self, request: web.Request) -> str:
        """The client's address: the connection's, or behind trusted proxies the last address
        in X-Forwarded-For that is not one of them (earlier entries are the client's say)."""
        remote = request.remote or ""
        if not self._trusted(remote):
            return remote
        hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
        for hop in reversed(hops):
            if _address(hop) is None:
                return remote  # garbage in the header: believe only the connection
            if not self._trusted(hop):
                return str(_address(hop))
        return str(_address(hops[0])) if hops else remote

    def https(self, request: web.Request) -> bool:
        """Whether the browser reached the panel over https (cookies then get Secure)."""
        if self.secure_cookies or request.secure:
            return True
        if not self._trusted(request.remote):
            return False
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return proto == "https"


NETWORK = web.AppKey("network", NetworkPolicy)


@web.middleware
async def host_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request for a name the panel is not served under (DNS rebinding: a hostile page
    whose name resolves to 127.0.0.1 still sends its own name)."""
    if not request.app[NETWORK].host_allowed(request):
        return web.Response(status=421, text=(
            "421 Misdirected Request: this panel answers only to 127.0.0.1, localhost or [::1] on "
            "its port, and to the names in panel.allowed_hosts (add the name it is served under "
            "behind a reverse proxy there)\n"))
    return await handler(request)
