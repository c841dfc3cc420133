"""Channel names, namespaces and the options each namespace gives its channels.

A channel name is 1-255 characters from a URL- and log-friendly set.  Its namespace is the
part before the first ``:`` (``chat:room1`` is in ``chat``); a name without ``:`` uses the
default options.  Channels exist on demand; a channel in a namespace that is not configured is
refused with ``UnknownNamespace``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from livehub.errors import BadChannel, ConfigError, UnknownNamespace

CHANNEL_RE = re.compile(r"[A-Za-z0-9_\-.:@/=+,!~*$|#]{1,255}")
NAMESPACE_RE = re.compile(r"[A-Za-z0-9_\-.]{1,64}")
NAMESPACE_SEPARATOR = ":"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelOptions:
    """What a namespace allows.  Defaults keep history so reconnecting clients miss nothing."""

    history_size: int = 100
    """Publications kept per channel (0: none; resume then works only if nothing was missed)."""
    history_ttl: float = 300.0
    """Seconds a publication stays in history."""
    history_bytes: int = 16 * 1024 * 1024
    """Bytes of history kept per channel (payloads plus a per-entry overhead); the oldest
    publications are dropped first, and a client resuming from before them gets a reset."""
    namespace_history_bytes: int = 0
    """Bytes of history over all channels of the namespace, oldest evicted first (memory
    broker; 0: only the broker's ``history_memory``).  Keeps a namespace open to anonymous
    clients from pushing the other namespaces' history out."""
    client_publish: bool = False
    """Whether subscribers may publish (raw WebSocket messages, client publish commands)."""
    anonymous_subscribe: bool = False
    """Whether clients without a user (no token) may subscribe too, when
    ``allow_subscribe_for_client`` lets clients subscribe (``PUBLIC_READ`` for the default)."""
    presence: bool = False
    """Keep who is subscribed (Centrifugo ``presence``/``presence_stats``)."""
    join_leave: bool = False
    """Send join/leave events to the broker when clients (un)subscribe."""

    # -- Centrifugo client protocol permissions ("Channel permission model") ---------------
    allow_subscribe_for_client: bool = False
    """Any client with a user may subscribe without a subscription token (channels whose name
    starts with ``$`` or holds ``#`` never; see ``livehub.core.permissions``).  Off by default,
    as in Centrifugo, except for channels without a namespace (``PUBLIC_READ``)."""
    allow_user_limited_channels: bool = False
    """``ns:name#42,43`` may be subscribed to by users 42 and 43 without a token (and by
    nobody else without one)."""
    allow_publish_for_subscriber: bool = False
    """Clients subscribed to the channel may publish (``client_publish``: any client may)."""
    allow_presence_for_subscriber: bool = False
    """Clients subscribed to the channel may read its presence."""
    allow_presence_for_client: bool = False
    """Any client that could see the channel may read its presence."""
    allow_history_for_subscriber: bool = False
    """Clients subscribed to the channel may read its history."""
    allow_history_for_client: bool = False
    """Any client that could see the channel may read its history."""
    force_push_join_leave: bool = False
    """Push join/leave to every subscriber, not only to those asking with ``join_leave``."""
    force_recovery: bool = False
    """Make every subscription recoverable (needs history); otherwise a client asks for it
    with ``recoverable`` and needs history permission."""
    force_positioning: bool = False
    """Make every Centrifugo subscription positioned (the client is told when it missed
    publications), not only those asking with ``positioned``."""
    write_delay: float | None = None
    """Batching window in seconds of the connections subscribed here (Centrifugo PRO's
    ``client.write_delay``, per namespace): publications to one subscriber within it share one
    write, at the price of up to this much latency.  None: the server's ``write_delay``; a
    connection subscribed in several namespaces gets the smallest window."""

    def __post_init__(self) -> None:
        if self.history_size < 0 or self.history_size > 1_000_000:
            raise ConfigError(f"history_size must be in 0..1000000, not {self.history_size}")
        if self.history_ttl < 0:
            raise ConfigError(f"history_ttl must be >= 0, not {self.history_ttl}")
        if self.history_bytes < 0 or self.namespace_history_bytes < 0:
            raise ConfigError("history_bytes and namespace_history_bytes must be >= 0")
        if self.write_delay is not None:
            check_write_delay(self.write_delay)


PUBLIC_READ: dict[str, bool] = {"allow_subscribe_for_client": True, "anonymous_subscribe": True}
"""What channels without a namespace allow by default: any client, with or without a token,
may subscribe (the textbook ``EventSource``/``WebSocket`` examples need no token)."""


def public_options(**values: object) -> ChannelOptions:
    """``ChannelOptions`` readable by anyone (``PUBLIC_READ``), with ``values`` on top."""
    return ChannelOptions(**{**PUBLIC_READ, **values})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Namespaces:
    """Resolves a channel name to its options."""

    default: ChannelOptions = field(default_factory=public_options)
    namespaces: Mapping[str, ChannelOptions] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.namespaces:
            if not NAMESPACE_RE.fullmatch(name):
                raise ConfigError(f"invalid namespace name {name!r}")

    def options(self, channel: str) -> ChannelOptions:
        """Options of ``channel``; raise ``BadChannel`` or ``UnknownNamespace``."""
        check_channel(channel)
        ns, sep, _ = channel.partition(NAMESPACE_SEPARATOR)
        if not sep:
            return self.default
        try:
            return self.namespaces[ns]
        except KeyError:
            raise UnknownNamespace(f"unknown namespace {ns!r} of channel {channel!r}") from None


MAX_WRITE_DELAY = 1.0
"""The longest batching window accepted (seconds); a few milliseconds is the useful range."""


def check_write_delay(delay: float) -> None:
    """Raise ``ConfigError`` unless ``delay`` is a batching window in 0..``MAX_WRITE_DELAY``."""
    if not 0.0 <= delay <= MAX_WRITE_DELAY:
        raise ConfigError(f"write_delay must be in 0..{MAX_WRITE_DELAY} seconds, not {delay}")


def check_channel(channel: str) -> None:
    """Raise ``BadChannel`` unless ``channel`` is a valid name."""
    if not CHANNEL_RE.fullmatch(channel):
        shown = channel if len(channel) <= 60 else channel[:60] + "..."
        raise BadChannel(f"invalid channel name {shown!r}: 1-255 characters of "
                         "letters, digits and _-.:@/=+,!~*$|#")
