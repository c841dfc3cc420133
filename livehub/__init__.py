"""livehub: one real-time hub for WebSocket, SSE, HTTP streaming and long-polling.

The public Python API (stable: see "Stable API" in ``docs/embedding.md``)::

    import livehub

    hub = livehub.Hub()                       # embedded; Hub(broker="redis://...") to share
    await hub.publish("news", {"title": "hi"})
    app.mount("/live", hub.asgi())            # FastAPI / Starlette; FastAPI(lifespan=hub.lifespan)
    async with hub.serve(port=8001):          # livehub's own fast server, in this loop
        ...

    client = livehub.Client("http://livehub:8000", api_key="...")   # a hub elsewhere
    client.publish("news", {"title": "hi"})

Names are imported on first use, so ``import livehub`` stays cheap (a Celery worker that only
publishes through ``Client`` never imports the server).  Their types are declared in
``__init__.pyi`` (a stub, so that type checkers see them and the layer contracts do not see
the package importing its own top layer).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "History",
    "Hub",
    "LivehubError",
    "Member",
    "Message",
    "Published",
    "Unavailable",
]

_WHERE = {
    "Hub": "livehub.embedded",
    "Client": "livehub.client",
    "AsyncClient": "livehub.client",
    "History": "livehub.results",
    "Member": "livehub.results",
    "Message": "livehub.results",
    "Published": "livehub.results",
    "LivehubError": "livehub.errors",
    "Unavailable": "livehub.errors",
}

def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'livehub' has no attribute {name!r}")
    import importlib  # noqa: PLC0415 - only when a public name is first used

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
