"""Centrifugo compatibility: client protocol (JSON) over WebSocket, SSE and HTTP streaming,
bidirectional emulation, unidirectional transports, JWT auth, presence and the server API.

``install`` mounts everything on an ``App``; see docs/centrifugo.md.
"""

from __future__ import annotations

from livehub.protocols.centrifugo.api import install_api
from livehub.protocols.centrifugo.node import CentrifugoNode
from livehub.protocols.centrifugo.settings import CentrifugoSettings
from livehub.protocols.centrifugo.transports import install_transports
from livehub.transports.routing import Router

__all__ = ["CentrifugoSettings", "install"]


def install(app: Router, settings: CentrifugoSettings) -> CentrifugoNode:
    """Create this process's Centrifugo node and mount its endpoints and the server API."""
    node = CentrifugoNode(app.ctx, settings)
    install_transports(app, node)
    install_api(app, node)
    return node
