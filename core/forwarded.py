"""Who the client is behind our reverse proxies: ``[http] trusted_proxies``.

``X-Forwarded-For`` is written by whoever sends the request: a client can put any address in
it. Each proxy appends the address it got the request from, so the list read from the right
is trustworthy only as far as the proxies we run: the client is the rightmost address that is
not one of ours. When the peer itself is not a trusted proxy, the header is ignored (someone
reached us directly and may have written anything in it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple)


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "::1"]`` as networks (a bare address is a network of one)."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def trust_proxies(app: web.Application, cidrs: Iterable[str]) -> None:
    """Tell ``app``'s requests which peers' ``X-Forwarded-For`` to believe (before it starts)."""
    app[TRUSTED_PROXIES] = parse_networks(cidrs)


def client_address(request: web.Request) -> str | None:
    """The client's address: the peer's, or from ``X-Forwarded-For`` when the peer is ours."""
    trusted: tuple[Network, ...] = request.config_dict.get(TRUSTED_PROXIES, ())
    peer = request.remote
    if not trusted or peer is None or not _within(peer, trusted):
        return peer
    hops = [hop.strip() for header in request.headers.getall("X-Forwarded-For", [])
            for hop in header.split(",")]
    client = peer
    for hop in reversed(hops):
        if not _is_ip(hop):
            break  # not written by a proxy of ours: the last one we believe is the answer
        client = hop
        if not _within(hop, trusted):
            break
    return client


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)
