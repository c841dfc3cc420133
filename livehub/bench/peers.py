"""The peer servers of ``livehub bench compare``: their source, and their install into a cache.

Common convention, so one generator drives every server the same way:

- WebSocket subscribers connect to ``ws://127.0.0.1:PORT/ws?channel=bench``; the publisher is
  one more WebSocket client on that URL whose text messages the server broadcasts to every
  client (the publisher included, as livehub does). ``/echo`` answers ``Echo: <message>``.
- SSE subscribers ``GET /events?channel=bench``; the publisher POSTs the raw payload to
  ``/publish?channel=bench`` on one keep-alive connection; the server writes
  ``data: <payload>\\n\\n`` to every subscriber and answers 204.
- The peers ignore the channel name: there is one channel per server.

Each server listens on 127.0.0.1 and the port in ``BENCH_PORT``. The textbook ones
(``node-ws-echo``, ``express-sse``) are copied as the textbooks show them, only the port is read
from the environment. The rest are ours and kept as plain as their libraries' own examples.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from livehub.bench.socketio import PY_SOCKETIO

NODE_PACKAGES = {"ws": "^8", "express": "^5"}
PYTHON_PACKAGES = [
    "websockets",
    "uvloop",
    "picows",
    "aiohttp",
    "sse-starlette",
    "starlette",
    "uvicorn",
    "httptools",
    "python-socketio",
]

NODE_WS_ECHO = """\
// The textbook echo server of the `ws` package; only the port comes from the environment.
const WebSocket = require('ws');
const wss = new WebSocket.Server({ host: '127.0.0.1', port: Number(process.env.BENCH_PORT) });
wss.on('connection', function connection(ws) {
  ws.on('message', function incoming(message) {
    ws.send('Echo: ' + message);
  });
});
"""

NODE_WS_BROADCAST = """\
// The `ws` README broadcast server ("broadcast to all connected clients, including itself").
const WebSocket = require('ws');
const wss = new WebSocket.Server({ host: '127.0.0.1', port: Number(process.env.BENCH_PORT) });
wss.on('connection', function connection(ws, req) {
  if (req.url.startsWith('/echo')) {
    ws.on('message', (message) => ws.send('Echo: ' + message));
    return;
  }
  ws.on('message', function message(data, isBinary) {
    wss.clients.forEach(function each(client) {
      if (client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    });
  });
});
"""

NODE_WS_ROOMS = """\
// `ws` with a room map (the chat shape): a client joins the room named by ?channel=, and what
// a member sends goes to every member of its room (sender included). permessage-deflate as the
// `ws` README configures it; it is used only with clients that offer it.
const { WebSocketServer, WebSocket } = require('ws');
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.env.BENCH_PORT),
  perMessageDeflate: {
    zlibDeflateOptions: { chunkSize: 1024, memLevel: 7, level: 3 },
    zlibInflateOptions: { chunkSize: 10 * 1024 },
    clientNoContextTakeover: true,
    serverNoContextTakeover: true,
    serverMaxWindowBits: 10,
    concurrencyLimit: 10,
    threshold: 1024,
  },
});
const rooms = new Map();
wss.on('connection', function connection(ws, req) {
  const room = new URL(req.url, 'http://localhost').searchParams.get('channel') || '';
  let members = rooms.get(room);
  if (!members) {
    members = new Set();
    rooms.set(room, members);
  }
  members.add(ws);
  ws.on('message', function message(data, isBinary) {
    for (const client of members) {
      if (client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    }
  });
  ws.on('close', function close() {
    members.delete(ws);
    if (members.size === 0 && rooms.get(room) === members) rooms.delete(room);
  });
});
"""

EXPRESS_SSE = """\
// The textbook Express SSE endpoint (a message every second); only the port is ours.
const express = require('express');
const app = express();
app.get('/events', (req, res) => {
  res.setHeader('Content-Type', 'text/event-stream');
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Connection', 'keep-alive');
  res.flushHeaders();
  let counter = 0;
  const interval = setInterval(() => {
    counter++;
    res.write(`data: ${JSON.stringify({ counter, time: new Date().toISOString() })}\\n\\n`);
  }, 1000);
  req.on('close', () => {
    clearInterval(interval);
    res.end();
  });
});
app.listen(Number(process.env.BENCH_PORT), '127.0.0.1');
"""

EXPRESS_SSE_FANOUT = """\
// The textbook Express SSE endpoint turned into fan-out: POST /publish writes to every client.
const express = require('express');
const app = express();
const clients = new Set();
app.get('/events', (req, res) => {
  res.setHeader('Content-Type', 'text/event-stream');
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Connection', 'keep-alive');
  res.flushHeaders();
  clients.add(res);
  req.on('close', () => {
    clients.delete(res);
    res.end();
  });
});
app.post('/publish', express.text({ type: '*/*', limit: '1mb' }), (req, res) => {
  const message = `data: ${req.body}\\n\\n`;
  for (const client of clients) client.write(message);
  res.status(204).end();
});
app.listen(Number(process.env.BENCH_PORT), '127.0.0.1');
"""

PY_WEBSOCKETS = """\
\"\"\"websockets (asyncio implementation, uvloop) broadcast and echo server.\"\"\"
import asyncio
import os

import uvloop
from websockets.asyncio.server import broadcast, serve

CLIENTS = set()


async def handler(ws):
    if ws.request.path.startswith("/echo"):
        async for message in ws:
            await ws.send("Echo: " + message)
        return
    CLIENTS.add(ws)
    try:
        async for message in ws:
            broadcast(CLIENTS, message)
    finally:
        CLIENTS.discard(ws)


async def main():
    async with serve(handler, "127.0.0.1", int(os.environ["BENCH_PORT"])) as server:
        await server.serve_forever()


uvloop.run(main())
"""

PY_PICOWS = """\
\"\"\"picows broadcast and echo server (uvloop).\"\"\"
import asyncio
import os

import uvloop
from picows import WSListener, WSMsgType, ws_create_server

CLIENTS = set()


class Broadcast(WSListener):
    def on_ws_connected(self, transport):
        CLIENTS.add(transport)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            for client in CLIENTS:
                client.send(WSMsgType.TEXT, payload)
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport):
        CLIENTS.discard(transport)


class Echo(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            transport.send(WSMsgType.TEXT, b"Echo: " + frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


def factory(request):
    return Echo() if request.path.startswith(b"/echo") else Broadcast()


async def main():
    server = await ws_create_server(factory, "127.0.0.1", int(os.environ["BENCH_PORT"]))
    await server.serve_forever()


uvloop.run(main())
"""

PY_PICOWS_ROOMS = """\
\"\"\"picows room server (uvloop): a dict of sets, one set of members per ?channel= room.\"\"\"
import os
from urllib.parse import parse_qs, urlsplit

import uvloop
from picows import WSListener, WSMsgType, ws_create_server

ROOMS = {}


class Member(WSListener):
    def __init__(self, room):
        self.room = room

    def on_ws_connected(self, transport):
        ROOMS.setdefault(self.room, set()).add(transport)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            for member in ROOMS.get(self.room, ()):
                member.send(WSMsgType.TEXT, payload)
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport):
        members = ROOMS.get(self.room)
        if members is not None:
            members.discard(transport)
            if not members:
                del ROOMS[self.room]


def factory(request):
    query = parse_qs(urlsplit(request.path.decode()).query)
    return Member(query.get("channel", [""])[0])


async def main():
    server = await ws_create_server(factory, "127.0.0.1", int(os.environ["BENCH_PORT"]))
    await server.serve_forever()


uvloop.run(main())
"""

PY_AIOHTTP = """\
\"\"\"aiohttp broadcast and echo server (uvloop).\"\"\"
import asyncio
import os

import uvloop
from aiohttp import WSMsgType, web

CLIENTS = set()


async def broadcast(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    CLIENTS.add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                for client in list(CLIENTS):
                    await client.send_str(msg.data)
    finally:
        CLIENTS.discard(ws)
    return ws


async def echo(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str("Echo: " + msg.data)
    return ws


app = web.Application()
app.add_routes([web.get("/ws", broadcast), web.get("/echo", echo)])
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
web.run_app(app, host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), print=None,
            access_log=None)
"""

PY_SSE_STARLETTE = """\
\"\"\"sse-starlette fan-out server: GET /events subscribes, POST /publish broadcasts.\"\"\"
import asyncio

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

QUEUES = set()


async def events(request):
    queue = asyncio.Queue()
    QUEUES.add(queue)

    async def stream():
        try:
            while True:
                yield {"data": await queue.get()}
        finally:
            QUEUES.discard(queue)

    return EventSourceResponse(stream())


async def publish(request):
    data = (await request.body()).decode()
    for queue in QUEUES:
        queue.put_nowait(data)
    return Response(status_code=204)


app = Starlette(routes=[Route("/events", events), Route("/publish", publish, methods=["POST"])])
"""

PY_LIVEHUB_ASGI = """\
\"\"\"livehub's ASGI adapter as the whole app (``hub.asgi()``), for uvicorn: the same endpoints
and config as ``livehub serve``, framed by the ASGI server.\"\"\"
import os

import livehub

app = livehub.Hub(config=os.environ["LIVEHUB_BENCH_CONFIG"]).asgi()
"""

SCRIPTS = {
    "node-ws-echo.js": NODE_WS_ECHO,
    "node-ws-broadcast.js": NODE_WS_BROADCAST,
    "express-sse.js": EXPRESS_SSE,
    "express-sse-fanout.js": EXPRESS_SSE_FANOUT,
    "py_websockets.py": PY_WEBSOCKETS,
    "py_picows.py": PY_PICOWS,
    "node-ws-rooms.js": NODE_WS_ROOMS,
    "py_picows_rooms.py": PY_PICOWS_ROOMS,
    "py_aiohttp.py": PY_AIOHTTP,
    "py_sse_starlette.py": PY_SSE_STARLETTE,
    "livehub_asgi.py": PY_LIVEHUB_ASGI,
    "py_socketio.py": PY_SOCKETIO,
}


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def write_scripts(cache: Path) -> Path:
    """Write every peer script into ``cache/peers``; return that folder."""
    folder = cache / "peers"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in SCRIPTS.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return folder


def install(cache: Path, *, node: bool = True, python: bool = True) -> dict[str, str]:
    """Install the peers' packages into ``cache`` (npm prefix, venv) once; return versions."""
    cache.mkdir(parents=True, exist_ok=True)
    (cache / ".gitignore").write_text("*\n")
    write_scripts(cache)
    manifest_path = cache / "manifest.json"
    wanted = {"node": NODE_PACKAGES, "python": PYTHON_PACKAGES}
    manifest: dict[str, object] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
    if manifest.get("wanted") != wanted:
        manifest = {"wanted": wanted}
    if node and not manifest.get("node_ok"):
        node_dir = cache / "node"
        node_dir.mkdir(exist_ok=True)
        (node_dir / "package.json").write_text(
            json.dumps({"name": "livehub-bench-peers", "private": True,
                        "dependencies": NODE_PACKAGES}, indent=2)
        )
        _log(f"installing Node peers into {node_dir} (npm)")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"],
            cwd=node_dir, check=True, timeout=600,
        )
        manifest["node_ok"] = True
    if python and not manifest.get("python_ok"):
        venv = cache / "pyvenv"
        if not (venv / "bin" / "python").exists():
            _log(f"creating the peers' virtualenv {venv}")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        _log("installing Python peers (pip): " + " ".join(PYTHON_PACKAGES))
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", *PYTHON_PACKAGES],
            check=True, timeout=900,
        )
        manifest["python_ok"] = True
    manifest["versions"] = installed_versions(cache)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    versions = manifest["versions"]
    assert isinstance(versions, dict)
    return versions


def installed_versions(cache: Path) -> dict[str, str]:
    """Versions of the peer packages found in ``cache``."""
    versions: dict[str, str] = {}
    for package in NODE_PACKAGES:
        meta = cache / "node" / "node_modules" / package / "package.json"
        if meta.exists():
            versions[f"npm:{package}"] = str(json.loads(meta.read_text()).get("version", ""))
    python = cache / "pyvenv" / "bin" / "python"
    if python.exists():
        code = (
            "import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            f"for name in {PYTHON_PACKAGES!r}:\n"
            "    try: out[name] = m.version(name)\n"
            "    except m.PackageNotFoundError: pass\n"
            "out['python'] = sys.version.split()[0]\n"
            "print(json.dumps(out))\n"
        )
        done = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode == 0:
            for name, version in json.loads(done.stdout).items():
                versions[f"pypi:{name}"] = version
    return versions
