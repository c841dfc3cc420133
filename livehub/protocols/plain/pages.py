"""The landing page and demo pages, served from the package's ``static`` folder."""

from __future__ import annotations

from importlib import resources

from livehub.transports.context import ServerContext
from livehub.transports.http import Request, Response
from livehub.transports.routing import Exchange

PAGES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/demo/chat": ("chat.html", "text/html; charset=utf-8"),
    "/static/livehub.css": ("livehub.css", "text/css; charset=utf-8"),
}

_cache: dict[str, bytes] = {}


def _read(name: str) -> bytes:
    body = _cache.get(name)
    if body is None:
        body = _cache[name] = resources.files("livehub").joinpath("static", name).read_bytes()
    return body


async def page_endpoint(ctx: ServerContext, request: Request, http: Exchange) -> Response:
    name, content_type = PAGES[request.path]
    return Response(200, _read(name), content_type,
                    [("cache-control", "no-cache"), ("x-content-type-options", "nosniff")])
