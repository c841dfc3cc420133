"""livehub in a Starlette app with sessions: ``uvicorn examples.starlette_app:app``.

The hub knows the user from Starlette's session (``authenticate``), so ``/live/events`` and
``/live/ws`` on ``notes:inbox#alice`` are open to alice's session only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route

import livehub


def session_user(scope: dict[str, Any]) -> str | None:
    user = scope["session"].get("user")
    return str(user) if user else None


hub = livehub.Hub(config=Path(__file__).with_name("livehub.toml"), authenticate=session_user)


async def login(request: Request) -> PlainTextResponse:
    request.session["user"] = request.query_params["user"]
    return PlainTextResponse("logged in")


async def notify(request: Request) -> JSONResponse:
    user, text = request.query_params["user"], request.query_params["text"]
    published = await hub.publish(f"notes:inbox#{user}", {"text": text})
    return JSONResponse({"offset": published.offset})


app = Starlette(
    routes=[Route("/login", login), Route("/notify", notify, methods=["POST"]),
            Mount("/live", hub.asgi())],
    middleware=[Middleware(SessionMiddleware, secret_key="example-only-change-me")],
    lifespan=hub.lifespan,
)
