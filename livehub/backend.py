"""Which broker and presence store a node uses, and how many worker processes serve the port.

The ``[broker]`` settings (env ``LIVEHUB_BROKER``, ``LIVEHUB_REDIS_URL``...; see ``config``) and
``build`` that turns them into a ``Broker`` and a ``PresenceManager``.  ``workers`` lives here
because more than one worker process needs a broker that every process shares (Redis).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from livehub.core.broker import Broker
from livehub.core.limits import Limits
from livehub.core.memory import MemoryBroker
from livehub.core.presence import MemoryPresence, PresenceManager
from livehub.core.redis.codec import PREFIX_RE
from livehub.errors import ConfigError

BROKERS = ("memory", "redis")


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerSettings:
    broker: str = "memory"
    """``memory`` (one process, nothing else needed) or ``redis`` (many processes/machines)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """``redis://[user:password@]host:port/db``, ``rediss://`` for TLS, or ``unix://path``;
    several comma-separated URLs spread channels over those Redis instances (consistent
    hashing, ``livehub.core.redis.shards``)."""
    redis_password: str | None = None
    """Password (overrides one in the URL; keeps it out of the URL and logs)."""
    redis_username: str | None = None
    """Username (Redis 6 ACL; overrides one in the URL)."""
    redis_tls_ca: str | None = None
    """CA bundle (PEM file) that signed the Redis server's certificate (rediss:// only)."""
    redis_tls_cert: str | None = None
    """Client certificate (PEM file) for mutual TLS."""
    redis_tls_key: str | None = None
    """Private key (PEM file) of ``redis_tls_cert``."""
    redis_tls_verify: bool = True
    """Verify the server certificate and host name (turn off for development only)."""
    redis_prefix: str = "livehub"
    """Prefix of every key and topic, so several livehub clusters can share one Redis."""
    redis_timeout: float = 2.0
    """Seconds to connect or wait for Redis before a request fails with 503."""
    workers: int = 1
    """Processes serving the same port (SO_REUSEPORT); more than 1 needs ``broker = redis``."""

    def __post_init__(self) -> None:
        if self.broker not in BROKERS:
            raise ConfigError(f"broker must be one of {', '.join(BROKERS)}, not {self.broker!r}")
        if not 1 <= self.workers <= 256:
            raise ConfigError(f"workers must be 1-256, not {self.workers}")
        if self.workers > 1 and self.broker != "redis":
            raise ConfigError(
                f"workers = {self.workers} needs a broker that every worker shares: set "
                "broker = \"redis\" (LIVEHUB_BROKER=redis, --broker redis) and redis_url; the "
                "memory broker works in one process only")
        if not PREFIX_RE.fullmatch(self.redis_prefix):
            raise ConfigError("redis_prefix must be 1-64 of A-Z a-z 0-9 _ . -, not "
                              f"{self.redis_prefix!r}")
        if self.redis_timeout <= 0:
            raise ConfigError(f"redis_timeout must be > 0, not {self.redis_timeout}")

    def describe(self) -> str:
        if self.broker == "memory":
            return "broker: memory (one process)"
        workers = f", {self.workers} workers" if self.workers > 1 else ""
        urls = ", ".join(redacted(url) for url in self.redis_urls)
        return f"broker: redis at {urls}, prefix {self.redis_prefix!r}{workers}"

    @property
    def redis_urls(self) -> list[str]:
        """The Redis instances (more than one: channels are sharded over them)."""
        return [url.strip() for url in self.redis_url.split(",") if url.strip()]


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def build(settings: BrokerSettings, limits: Limits | None = None
          ) -> tuple[Broker, PresenceManager]:
    """The broker and presence store of a node (Redis ones share one client)."""
    limits = limits if limits is not None else Limits()
    if settings.broker == "memory":
        return MemoryBroker(history_memory=limits.history_memory), MemoryPresence()
    try:
        from livehub.core.redis.client import (  # noqa: PLC0415 - redis is an optional dependency
            RedisBroker,
            RedisOptions,
            RedisPresence,
            connect,
        )
    except ImportError as exc:
        raise ConfigError(f"broker = redis needs the redis package ({exc.name} is missing): "
                          "pip install 'livehub[redis]'") from None
    from livehub.core.redis.shards import (  # noqa: PLC0415 - needs redis too
        ShardedRedisBroker,
        ShardedRedisPresence,
    )

    urls = settings.redis_urls
    if not urls:
        raise ConfigError("redis_url is empty")
    brokers: list[RedisBroker] = []
    presences: list[RedisPresence] = []
    for url in urls:
        client = connect(RedisOptions(
            url=url, password=settings.redis_password,
            username=settings.redis_username, tls_ca=settings.redis_tls_ca,
            tls_cert=settings.redis_tls_cert, tls_key=settings.redis_tls_key,
            tls_verify=settings.redis_tls_verify, timeout=settings.redis_timeout))
        brokers.append(RedisBroker(client, prefix=settings.redis_prefix))
        presences.append(RedisPresence(client, prefix=settings.redis_prefix))
    if len(urls) == 1:
        return brokers[0], presences[0]
    names = [shard_name(url) for url in urls]
    return ShardedRedisBroker(brokers, names), ShardedRedisPresence(presences, names)


def shard_name(url: str) -> str:
    """A shard's name on the hash ring: its address without scheme or credentials, so the
    ring stays the same when passwords or TLS settings change."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    db = parts.path.strip("/") or "0"
    return f"{parts.hostname}:{parts.port or 6379}/{db}"
