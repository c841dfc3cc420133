"""The namespaces the demo pages use: open to anonymous clients, bounded in count, age and bytes."""

from __future__ import annotations

from livehub.core.channels import PUBLIC_READ, ChannelOptions

MIB = 1024 * 1024

DEMO_NAMESPACES: dict[str, ChannelOptions] = {
    # chat rooms: anyone may read and post; the last messages are shown on join
    "chat": ChannelOptions(client_publish=True, history_size=100, history_ttl=600,
                           history_bytes=256 * 1024, namespace_history_bytes=16 * MIB,
                           **PUBLIC_READ),
    # what is not worth keeping: typing, presence pings, whiteboard cursors
    "signals": ChannelOptions(client_publish=True, history_size=0, **PUBLIC_READ),
    # whiteboard strokes: a late joiner replays the board (at most the resume budget)
    "board": ChannelOptions(client_publish=True, history_size=1000, history_ttl=3600,
                            history_bytes=4 * MIB, namespace_history_bytes=32 * MIB,
                            **PUBLIC_READ),
    # the simulated market and matches: published by the server only
    "market": ChannelOptions(history_size=100, history_ttl=120, **PUBLIC_READ),
    "scores": ChannelOptions(history_size=200, history_ttl=3600, **PUBLIC_READ),
    # per-user notifications: notify:inbox#alice is alice's alone (a token naming her)
    "notify": ChannelOptions(allow_user_limited_channels=True, history_size=50,
                             history_ttl=3600, history_bytes=64 * 1024),
    # the WebSocket-vs-SSE page: its own publisher, short-lived
    "vs": ChannelOptions(client_publish=True, history_size=200, history_ttl=60,
                         history_bytes=256 * 1024, namespace_history_bytes=8 * MIB,
                         **PUBLIC_READ),
}
"""Added to the configured namespaces in demo mode (a namespace of the file wins)."""
