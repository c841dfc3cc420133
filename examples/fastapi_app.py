"""livehub mounted in a FastAPI app: ``uvicorn examples.fastapi_app:app``.

The hub's endpoints live under ``/live`` (``/live/events``, ``/live/ws``, ``/live/stream``,
``/live/poll``, ``/live/connection/...``), the app's own routes publish, and the page at ``/``
subscribes with a plain ``EventSource``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

import livehub

hub = livehub.Hub()
app = FastAPI(lifespan=hub.lifespan)
app.mount("/live", hub.asgi())

PAGE = """<!doctype html>
<title>news</title>
<ul id="news"></ul>
<script>
const news = new EventSource("/live/events?channel=news");
news.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = JSON.parse(event.data).title;
  document.getElementById("news").append(item);
  console.log("news:", item.textContent);
};
</script>
"""


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return PAGE


@app.post("/news")
async def post_news(title: str) -> dict[str, object]:
    published = await hub.publish("news", {"title": title})
    return {"offset": published.offset, "cursor": published.cursor}
