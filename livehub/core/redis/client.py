"""The Redis backend: ``connect`` makes the client, ``RedisBroker`` and ``RedisPresence`` use it.

The client is redis-py's asyncio client (hiredis parses replies when installed) with redis-py's
own retries turned off: a publish must fail fast with ``Unavailable`` rather than wait, and it
is not idempotent, so it is never resent.  The pub/sub connection reconnects by itself
(``redis_pubsub``).  See docs/redis.md for the key layout, the epoch rule and failure behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from livehub.core.redis.broker import RedisBroker
from livehub.core.redis.presence import RedisPresence
from livehub.errors import ConfigError

__all__ = ["RedisBroker", "RedisOptions", "RedisPresence", "connect"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisOptions:
    """How to reach Redis.  TLS is on for ``rediss://`` URLs."""

    url: str = "redis://127.0.0.1:6379/0"
    password: str | None = None
    """Overrides a password in the URL."""
    username: str | None = None
    tls_ca: str | None = None
    """CA bundle (PEM) to verify the server with; the system's when unset."""
    tls_cert: str | None = None
    """Client certificate (PEM) for mutual TLS."""
    tls_key: str | None = None
    tls_verify: bool = True
    """Verify the server's certificate (turn off for development only)."""
    timeout: float = 2.0
    """Seconds to connect and to wait for a reply before a command fails with 503."""
    max_connections: int = 64
    """Pooled connections per Redis; more concurrent commands wait (up to ``timeout``) for one
    instead of failing, so a burst of subscribes (each reads history) is queued, not refused."""


def connect(options: RedisOptions) -> Redis:
    """A client for ``options`` (connects lazily); raise ``ConfigError`` for a bad URL."""
    url = options.url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"redis_url must start with redis://, rediss:// or unix://, "
                          f"not {url.split('://')[0]!r}")
    kwargs: dict[str, object] = {
        "socket_connect_timeout": options.timeout,
        "socket_timeout": options.timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "decode_responses": False,
    }
    if options.password is not None:
        kwargs["password"] = options.password
    if options.username is not None:
        kwargs["username"] = options.username
    if url.startswith("rediss://"):
        kwargs["ssl_cert_reqs"] = "required" if options.tls_verify else "none"
        kwargs["ssl_check_hostname"] = options.tls_verify
        if options.tls_ca:
            kwargs["ssl_ca_certs"] = options.tls_ca
        if options.tls_cert:
            kwargs["ssl_certfile"] = options.tls_cert
        if options.tls_key:
            kwargs["ssl_keyfile"] = options.tls_key
    elif options.tls_ca or options.tls_cert or options.tls_key:
        raise ConfigError("redis TLS options need a rediss:// URL")
    try:
        pool = BlockingConnectionPool.from_url(url, max_connections=options.max_connections,
                                               timeout=options.timeout, **kwargs)
        return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
    except ValueError as exc:
        raise ConfigError(f"invalid redis_url: {exc}") from None
