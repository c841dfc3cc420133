"""The landing page, the demo pages and the client helper, served from ``livehub/static/``."""

from __future__ import annotations

import re
from importlib import resources

from livehub.transports.context import ServerContext
from livehub.transports.http import Request, Response
from livehub.transports.routing import Exchange

HTML = "text/html; charset=utf-8"
PAGES: dict[str, tuple[str, str]] = {
    "/": ("index.html", HTML),
    "/static/livehub.css": ("livehub.css", "text/css; charset=utf-8"),
    "/static/livehub.js": ("livehub.js", "text/javascript; charset=utf-8"),
}
"""Always served: the landing page and the client helper."""
DEMO_PAGES: dict[str, tuple[str, str]] = {
    "/demo/chat": ("chat.html", HTML),
    "/demo/whiteboard": ("whiteboard.html", HTML),
    "/demo/ticker": ("ticker.html", HTML),
    "/demo/scores": ("scores.html", HTML),
    "/demo/notifications": ("notifications.html", HTML),
    "/demo/compare": ("compare.html", HTML),
    "/static/demo.css": ("demo.css", "text/css; charset=utf-8"),
}
"""Served in demo mode only (``demos``), like the namespaces they use."""

_cache: dict[str, bytes] = {}
_DEMOS = re.compile(rb"<!-- demos -->.*?<!-- /demos -->\n?", re.DOTALL)
"""The landing page's links to the demos, left out when demo mode is off."""


def pages(*, demos: bool) -> dict[str, tuple[str, str]]:
    return {**PAGES, **DEMO_PAGES} if demos else dict(PAGES)


def _read(name: str) -> bytes:
    body = _cache.get(name)
    if body is None:
        body = _cache[name] = resources.files("livehub").joinpath("static", name).read_bytes()
    return body


async def page_endpoint(ctx: ServerContext, request: Request, http: Exchange) -> Response:
    name, content_type = PAGES.get(request.path) or DEMO_PAGES[request.path]
    body = _read(name)
    if name == "index.html" and not ctx.settings.demos:
        body = _without_demos(body)
    return Response(200, body, content_type,
                    [("cache-control", "no-cache"), ("x-content-type-options", "nosniff")])


def _without_demos(page: bytes) -> bytes:
    body = _cache.get("index.html#plain")
    if body is None:
        body = _cache["index.html#plain"] = _DEMOS.sub(b"", page)
    return body
