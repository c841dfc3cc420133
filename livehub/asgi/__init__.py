"""The ASGI adapter: livehub's endpoints inside FastAPI, Starlette or Django (ASGI).

A second front end at the level of ``livehub.transports``: the endpoints of the protocol
plug-ins run unchanged on an ``AsgiExchange`` instead of an HTTP/1.1 connection.  Built by
``livehub.Hub.asgi``; see ``docs/embedding.md``.
"""

from __future__ import annotations

from livehub.asgi.app import AsgiApp, Authenticate, Site

__all__ = ["AsgiApp", "Authenticate", "Site"]
