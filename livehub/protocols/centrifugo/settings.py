"""Settings of the Centrifugo-compatible endpoints (``[centrifugo]`` in the TOML file).

Every field ``name`` also has the environment variable ``LIVEHUB_<NAME>`` and the flag
``--<name>`` (see ``livehub.config``).  Secure by default: no anonymous connections,
emulation and unidirectional transports off.  Token keys and ``client_insecure`` are shared by
every protocol: ``livehub.core.auth.AuthSettings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from livehub.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class CentrifugoSettings:
    client_anonymous: bool = False
    """Accept connections without a token (user ``""``)."""
    client_ping_interval: float = 25.0
    """Seconds between server pings; a WebSocket client that has not answered one by the next
    is closed with 3012 (no pong).  Also the presence refresh period (keep it under
    ``presence_ttl``); 0 disables pings and presence refresh."""
    client_expired_close_delay: float = 25.0
    """Grace after a connection expired (token ``exp``) before it is closed with 3005."""
    client_stale_close_delay: float = 10.0
    """Seconds a connection may stay without a ``connect`` command (then closed with 3502)."""
    client_channel_limit: int = 128
    """Channels one connection may be subscribed to (106 limit exceeded after that)."""
    client_max_commands: int = 256
    """Commands in one frame."""
    presence_ttl: float = 60.0
    """Seconds a presence entry lives unless refreshed (refreshed on every heartbeat tick)."""
    node_name: str = ""
    """This node's name in the server API ``info`` ('': ``livehub-`` and the start of its id)."""
    node_heartbeat_interval: float = 3.0
    """Seconds between this node's heartbeat control messages (id, name, counts), from which
    every node learns the others for ``info`` and ``channels``; a node not heard from for two
    intervals plus a second is dropped.  0: no heartbeats (``info`` and ``channels`` describe
    this node only)."""
    emulation: bool = False
    """``/connection/http_stream``, ``/connection/sse`` and ``POST /emulation``."""
    uni: bool = False
    """``/connection/uni_websocket``, ``/connection/uni_sse``, ``/connection/uni_http_stream``."""
    uni_max_connect_size: int = 65536
    """Bytes of a unidirectional connect request (query, body or first message)."""
    server_channels: Sequence[str] = ()
    """Channels every connection is subscribed to server-side; ``{user}`` is replaced by the
    user id (entries that would need a user are skipped for anonymous connections)."""

    def __post_init__(self) -> None:
        if self.client_ping_interval < 0:
            raise ConfigError("client_ping_interval must be >= 0")
        if self.client_channel_limit < 1 or self.client_max_commands < 1:
            raise ConfigError("client_channel_limit and client_max_commands must be >= 1")
        if self.presence_ttl <= 0:
            raise ConfigError("presence_ttl must be > 0")
        if self.node_heartbeat_interval < 0:
            raise ConfigError("node_heartbeat_interval must be >= 0")
