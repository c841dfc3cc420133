"""livehub: one real-time hub for WebSocket, SSE, HTTP streaming and long-polling."""

from __future__ import annotations

__version__ = "0.1.0"
