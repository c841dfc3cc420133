"""The examples of ``docs/embedding.md`` (``examples/``) run as written under uvicorn: a Django
ASGI app and a Starlette app whose views publish and whose sessions name the subscriber."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ..sseclient import take
from .conftest import AsgiFactory, load_example

INBOX = "/live/events?channel=notes:inbox%23alice"


@pytest.mark.parametrize("name", ["django_app", "starlette_app"])
async def test_view_publishes_to_the_session_user(serve_asgi: AsgiFactory, name: str) -> None:
    example = load_example(name)
    app = example.application if name == "django_app" else example.app
    server = await asyncio.to_thread(serve_asgi, app)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as alice, \
            httpx.AsyncClient(base_url=server.url, timeout=10) as mallory:
        assert (await alice.get("/login?user=alice")).status_code == 200
        assert (await mallory.get("/login?user=mallory")).status_code == 200
        assert (await mallory.get(INBOX)).status_code == 403
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as anonymous:
            assert (await anonymous.get(INBOX)).status_code == 403
        async with alice.stream("GET", INBOX) as response:
            assert response.status_code == 200
            sent = await alice.post("/notify", params={"user": "alice", "text": "hello"})
            assert sent.status_code == 200 and sent.json()["offset"] == 1
            (event,) = await take(response, 1)
        assert event.data == '{"text":"hello"}'
