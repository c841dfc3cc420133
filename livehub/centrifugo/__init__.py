"""Centrifugo compatibility: client protocol (JSON) over WebSocket, SSE and HTTP streaming,
bidirectional emulation, unidirectional transports, JWT auth, presence and the server API.

``install`` mounts everything on an ``App``; see docs/centrifugo.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livehub.centrifugo.api import install_api
from livehub.centrifugo.node import CentrifugoNode
from livehub.centrifugo.settings import CentrifugoSettings
from livehub.centrifugo.transports import install_transports
from livehub.core.presence import PresenceManager

if TYPE_CHECKING:
    from livehub.server.app import App

__all__ = ["CentrifugoSettings", "install"]


def install(app: App, settings: CentrifugoSettings, presence: PresenceManager
            ) -> CentrifugoNode:
    """Create this process's Centrifugo node and mount its endpoints and the server API."""
    node = CentrifugoNode(app.ctx, settings, presence)
    install_transports(app, node)
    install_api(app, node)
    return node
