"""Connection budgets: connections in total and per client address, trusted proxies.

Theory of operation.  Every accepted socket holds one *lease* on the total budget, and one on
the budget of its client address, from ``connection_made`` until the socket is gone.  The
client address is the peer's, except for a peer listed in ``trusted_proxies``: its requests
carry the client's address in ``Forwarded`` (RFC 7239) or ``X-Forwarded-For``, and the
connection is charged to that address (re-charged when a request names another one).  The
forwarded addresses are read right to left and the first one that is not itself a trusted
proxy is the client: a client cannot spoof its address by sending the header itself, since
the proxy appends the real peer.  Headers from an untrusted peer are ignored.

A socket that is taken over (SSE, WebSocket) keeps its leases; the protocol that owns it is
not this layer's, so the end of such a socket is noticed by ``sweep`` (``is_closing()``),
which runs on every heartbeat and whenever a budget looks full.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from livehub.codes import ErrorCode
from livehub.errors import ConfigError
from livehub.ratelog import RateLimitedLog
from livehub.transports.messages import Refused, Response, refusal

log = logging.getLogger(__name__)
ratelog = RateLimitedLog(log, lines=1)
"""One line per kind of refusal per period, then a count of the suppressed ones."""

FD_RESERVE = 100
"""Descriptors kept for everything but client sockets (broker, logs, static files) when the
total budget is derived from ``ulimit -n``."""
SWEEP_INTERVAL = 0.5
"""A full budget re-checks the taken-over sockets at most this often (seconds)."""
RETRY_AFTER_TOTAL = 5
RETRY_AFTER_PER_IP = 10


def open_files_limit() -> int:
    """The soft ``RLIMIT_NOFILE`` (``ulimit -n``)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1_000_000 if soft == resource.RLIM_INFINITY else soft


def parse_networks(values: Sequence[str]) -> tuple[ipaddress.IPv4Network
                                                   | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())
    except ValueError as exc:
        raise ConfigError(f"trusted_proxies: {exc}") from None


def canonical(ip: str) -> str:
    """An IPv4 client seen on a dual-stack socket (``::ffff:192.0.2.1``) as plain IPv4, so it
    has one budget and matches IPv4 ``trusted_proxies``."""
    if ip.startswith("::ffff:"):
        try:
            mapped = ipaddress.IPv6Address(ip).ipv4_mapped
        except ValueError:
            return ip
        if mapped is not None:
            return sys.intern(str(mapped))
    # interned: the budget table and every lease of one address share one string
    return sys.intern(ip)


def _address(text: str) -> str | None:
    """An IP address out of a ``Forwarded: for=`` or ``X-Forwarded-For`` element, or None
    (``unknown``, obfuscated identifiers, garbage)."""
    text = text.strip().strip('"')
    if text.startswith("["):  # "[2001:db8::1]:4711"
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # "192.0.2.60:4711"
        text = text.partition(":")[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def forwarded_chain(headers: Mapping[str, str]) -> list[str]:
    """The client addresses a proxy chain recorded, nearest proxy last: the ``for=``
    parameters of ``Forwarded`` (RFC 7239 §4), else the list of ``X-Forwarded-For``."""
    chain: list[str] = []
    forwarded = headers.get("forwarded")
    if forwarded is not None:
        for element in forwarded.split(","):
            for pair in element.split(";"):
                name, _, value = pair.partition("=")
                if name.strip().lower() == "for":
                    chain.append(value)
    else:
        chain = headers.get("x-forwarded-for", "").split(",")
    return [a for a in map(_address, chain) if a is not None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    max_connections: int
    """Open client sockets in total (503 beyond); 0 means derived from ``ulimit -n``."""
    max_connections_per_ip: int
    """Open sockets per client address (429 beyond); 0 means no per-address budget."""
    trusted_proxies: Sequence[str] = ()
    """Addresses or networks (``10.0.0.0/8``) whose forwarding headers are believed."""


class Admission:
    """The budgets of one server: leases per address and in total."""

    def __init__(self, limits: ConnectionLimits) -> None:
        files = open_files_limit()
        self.max_total = limits.max_connections or max(files - FD_RESERVE, 16)
        """The default leaves ``FD_RESERVE`` descriptors, so clients get a 503 before the
        kernel runs out of descriptors and resets them."""
        self.max_per_ip = limits.max_connections_per_ip
        self._proxies = parse_networks(limits.trusted_proxies)
        self.total = 0
        self.refused: Counter[str] = Counter()
        """Connections refused, by budget (``total``, ``per_ip``): metrics."""
        self.per_ip: dict[str, int] = {}
        self._handed: dict[asyncio.BaseTransport, str | None] = {}
        """Taken-over sockets and the address each is charged to (None: total only)."""
        self._swept = 0.0
        self._files = files
        self._fd_warn = files - FD_RESERVE // 2
        """An accepted descriptor number above which ``ulimit -n`` is about to be hit (the
        kernel hands out the lowest free number): uvloop's accept drops connections silently
        when it is, so this is where it gets logged."""

    # -- addresses -----------------------------------------------------------------------------

    def trusted(self, ip: str) -> bool:
        if not self._proxies:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self._proxies)

    def client_of(self, peer: str, headers: Mapping[str, str]) -> str:
        """The client address of a request that came from ``peer`` (a trusted proxy)."""
        for addr in reversed(forwarded_chain(headers)):
            if not self.trusted(addr):
                return addr
        return peer

    # -- leases --------------------------------------------------------------------------------

    def admit(self, ip: str | None, fileno: int = -1) -> Response | None:
        """Take the leases of a new socket from ``ip`` (None: a trusted proxy, charged per
        request instead); the refusal to answer with, or None."""
        if fileno >= self._fd_warn:
            ratelog.warning("emfile", "file descriptor %d of ulimit -n %d in use: new clients "
                            "will be reset by the kernel; raise ulimit -n or lower "
                            "max_connections", fileno, self._files)
        if self.total >= self.max_total:
            self._sweep_soon()
            if self.total >= self.max_total:
                self.refused["total"] += 1
                ratelog.warning("total", "refusing connections: %d open, max_connections is %d",
                                self.total, self.max_total)
                return refusal(503, f"server at its connection limit ({self.max_total}); "
                               "retry later", code=ErrorCode.NOT_AVAILABLE,
                               retry_after=RETRY_AFTER_TOTAL)
        if ip is not None:
            refused = self.charge(ip)
            if refused is not None:
                return refused
        self.total += 1
        return None

    def charge(self, ip: str) -> Response | None:
        """Take a lease on ``ip``'s budget; the refusal if it is full."""
        if self.max_per_ip:
            count = self.per_ip.get(ip, 0)
            if count >= self.max_per_ip:
                self._sweep_soon()
                count = self.per_ip.get(ip, 0)
            if count >= self.max_per_ip:
                self.refused["per_ip"] += 1
                ratelog.warning("per-ip", "refusing connections from %s: %d open, "
                                "max_connections_per_ip is %d", ip, count, self.max_per_ip)
                return refusal(429, f"too many connections from {ip} (at most "
                               f"{self.max_per_ip}); close some or retry later",
                               code=ErrorCode.LIMIT_EXCEEDED, retry_after=RETRY_AFTER_PER_IP)
            self.per_ip[ip] = count + 1
        return None

    def discharge(self, ip: str) -> None:
        if self.max_per_ip:
            count = self.per_ip.get(ip, 0) - 1
            if count > 0:
                self.per_ip[ip] = count
            else:
                self.per_ip.pop(ip, None)

    def release(self, ip: str | None) -> None:
        """A socket that held leases (``ip``: its charged address, if any) is gone."""
        self.total -= 1
        if ip is not None:
            self.discharge(ip)

    def hand_over(self, transport: asyncio.BaseTransport, ip: str | None) -> None:
        """The socket's leases now end when ``transport`` closes (see ``sweep``)."""
        self._handed[transport] = ip

    def _sweep_soon(self) -> None:
        if time.monotonic() - self._swept >= SWEEP_INTERVAL:
            self.sweep()

    def sweep(self) -> None:
        """Release the leases of taken-over sockets that have closed."""
        self._swept = time.monotonic()
        gone = [t for t in self._handed if t.is_closing()]
        for transport in gone:
            self.release(self._handed.pop(transport))


class Lease:
    """The leases one socket holds, from ``connection_made`` until it is gone or handed
    over with the socket (``hand_over``)."""

    __slots__ = ("_admission", "_charged", "_held", "peer", "proxied")

    def __init__(self, admission: Admission, peer: str) -> None:
        self._admission = admission
        self.peer = peer
        self.proxied = admission.trusted(peer)
        """The peer is a trusted proxy: each request names its client (``forwarded``)."""
        self._charged: str | None = None
        self._held = False

    def take(self, fileno: int) -> Response | None:
        """Take the socket's leases; the refusal to answer if a budget is full."""
        charged = None if self.proxied else self.peer
        refused = self._admission.admit(charged, fileno)
        if refused is None:
            self._held = True
            self._charged = charged
        return refused

    def forwarded(self, headers: Mapping[str, str]) -> str | None:
        """The client a trusted proxy names in ``headers`` (None: the proxy's own request),
        now charged with this socket; ``Refused`` if that client is over its budget."""
        admission = self._admission
        client = admission.client_of(self.peer, headers)
        if client == self.peer:
            return None
        if client != self._charged:
            refused = admission.charge(client)
            if refused is not None:
                raise Refused(refused)
            if self._charged is not None:
                admission.discharge(self._charged)
            self._charged = client
        return client

    def release(self) -> None:
        if self._held:
            self._held = False
            self._admission.release(self._charged)

    def hand_over(self, transport: asyncio.BaseTransport) -> None:
        """The leases now end when ``transport`` closes (``Admission.sweep``)."""
        if self._held:
            self._held = False
            self._admission.hand_over(transport, self._charged)
