"""Admin sessions: the login check, signed session cookies, CSRF tokens and the login budget.

Theory of operation
-------------------
A session is a cookie that this process can verify without storing anything, so every node and
worker configured with the same secrets accepts it (a load balancer may send the next request
anywhere): ``v1.<expires>.<nonce>.<signature>``, the signature an HMAC-SHA256 of the rest under
a key derived (scrypt) from the admin password and token.  Changing either secret ends every
session; a session ends by itself at ``expires`` (``admin_session_ttl``); logging out clears the
browser's cookie.  The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no
other site's page makes the browser send it) and ``Path=/admin``.

State-changing requests (every ``POST``) need more than the cookie (CSRF): an ``Origin``, when
the browser sends one, naming this server, and the ``X-CSRF-Token`` header, an HMAC of the
session that the dashboard page carries and no other origin can read.  Scripts may instead send
``Authorization: Bearer <admin_token>``, which a browser never adds by itself.

Login attempts are counted per client address (the address a trusted proxy names) with the one
``TokenBucket`` of ``livehub.core.limits``: a burst, then a slow average rate.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import time

from livehub.admin.settings import AdminSettings
from livehub.core.limits import TokenBucket

COOKIE = "livehub_admin"
VERSION = "v1"
MAX_TRACKED = 10_000
"""Client addresses whose login budget is remembered; beyond it full buckets are forgotten."""


def derive_key(settings: AdminSettings) -> bytes:
    """The signing key of sessions (scrypt of the secrets: a stolen cookie does not help to
    guess a weak password offline)."""
    secret = f"{settings.admin_password or ''}\0{settings.admin_token or ''}".encode()
    return hashlib.scrypt(secret, salt=b"livehub admin session v1", n=2 ** 13, r=8, p=1,
                          dklen=32)


def _same(given: str, expected: str | None) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


class Sessions:
    """Verifies secrets, makes and checks session cookies and their CSRF tokens."""

    def __init__(self, settings: AdminSettings) -> None:
        self.settings = settings
        self._key = derive_key(settings)

    def password_ok(self, given: str) -> bool:
        """Whether ``given`` is the admin password or token (constant time)."""
        s = self.settings
        return _same(given, s.admin_password) | _same(given, s.admin_token)

    def token_ok(self, given: str) -> bool:
        """Whether ``given`` is the admin token (``Authorization: Bearer``)."""
        return _same(given, self.settings.admin_token)

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new(self, now: float | None = None) -> str:
        """A new session cookie value, valid for ``admin_session_ttl`` seconds."""
        expires = int((time.time() if now is None else now) + self.settings.admin_session_ttl)
        body = f"{VERSION}.{expires}.{os.urandom(16).hex()}"
        return f"{body}.{self._sign(body)}"

    def valid(self, value: str | None, now: float | None = None) -> bool:
        """Whether ``value`` is a session this key signed that has not expired."""
        if not value:
            return False
        body, _, signature = value.rpartition(".")
        version, _, rest = body.partition(".")
        expires, _, _nonce = rest.partition(".")
        if version != VERSION or not expires.isdigit():
            return False
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return False
        return int(expires) > (time.time() if now is None else now)

    def csrf(self, session: str) -> str:
        """The CSRF token of a session (what the dashboard sends in ``X-CSRF-Token``)."""
        return self._sign("csrf." + session)

    def csrf_ok(self, session: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given).encode(),
                                                   self.csrf(session).encode())


def client_ip(client: str) -> str:
    """The address part of a request's client (``ip:port``, ``[v6]:port`` or a bare address a
    trusted proxy named)."""
    try:
        return str(ipaddress.ip_address(client.strip("[]")))
    except ValueError:
        return client.rpartition(":")[0].strip("[]") or client


class LoginBudget:
    """Login attempts per client address: ``admin_login_burst`` at once, then
    ``admin_login_rate`` per second (``TokenBucket``)."""

    def __init__(self, settings: AdminSettings) -> None:
        self.rate = settings.admin_login_rate
        self.burst = settings.admin_login_burst
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, ip: str, now: float | None = None) -> bool:
        """Spend one attempt of ``ip``; False when it has none left."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._forget_full(now)
            bucket = self._buckets[ip] = TokenBucket(self.rate, self.burst, now=now)
        return bucket.take(now)

    def retry_after(self) -> int:
        """Seconds until one more attempt is allowed, rounded up."""
        return max(1, int(1 / self.rate + 0.999))

    def _forget_full(self, now: float) -> None:
        """Forget addresses whose budget has refilled (they are like new ones)."""
        for ip, bucket in list(self._buckets.items()):
            if not bucket.in_debt(now) and bucket.full:
                del self._buckets[ip]
        if len(self._buckets) >= MAX_TRACKED:  # all in use: the oldest go first
            for ip in list(self._buckets)[: MAX_TRACKED // 10]:
                del self._buckets[ip]
