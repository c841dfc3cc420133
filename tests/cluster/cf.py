"""Centrifugo clients for the cluster tests: centrifuge-python in this process, centrifuge-js in
Node (``agent.cjs``, driven over its stdin/stdout), both reporting into one ``Events`` log with
the same shape, and a TCP proxy that can be repointed at another node.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    ConnectingContext,
    DisconnectedContext,
    JoinContext,
    LeaveContext,
    PublicationContext,
    ServerPublicationContext,
    ServerSubscribedContext,
    ServerUnsubscribedContext,
    SubscribedContext,
    SubscriptionEventHandler,
    UnsubscribedContext,
)
from centrifuge.types import ClientInfo

SECRET = "cluster-centrifugo-secret-0123456789abcdef0123456789abcdef"
PING_INTERVAL = 1.0
"""``client_ping_interval`` of the cluster nodes: also how often presence is refreshed."""
PRESENCE_TTL = 3.0
"""``presence_ttl`` of the cluster nodes (default 60 s): a killed node's clients disappear
from presence after this."""
HEARTBEAT_INTERVAL = 1.0
"""``node_heartbeat_interval`` of the cluster nodes (node discovery for ``info``)."""
NODE_TTL = 2 * HEARTBEAT_INTERVAL + 1
"""How long a node that stopped sending heartbeats stays in ``info``."""
NS = "room"
"""Namespace with presence, join/leave pushed to everyone, recovery and history."""

CONFIG = f"""
[auth]
token_hmac_secret = "{SECRET}"

[centrifugo]
emulation = true
client_ping_interval = {PING_INTERVAL}
presence_ttl = {PRESENCE_TTL}
node_heartbeat_interval = {HEARTBEAT_INTERVAL}

[namespaces.{NS}]
allow_subscribe_for_client = true
anonymous_subscribe = true
presence = true
join_leave = true
force_push_join_leave = true
force_recovery = true
history_size = 100
history_ttl = 300
client_publish = true
allow_presence_for_subscriber = true
allow_history_for_subscriber = true
"""


def write_config(directory: Path) -> Path:
    path = directory / "livehub.toml"
    path.write_text(CONFIG)
    return path


def token(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")


class Events:
    """Events of every client of a test, taken out in order with ``next``."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def add(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        self._changed.set()

    def _find(self, event: str, match: dict[str, Any]) -> dict[str, Any] | None:
        for i, item in enumerate(self.items):
            if item.get("event") == event and all(item.get(k) == v for k, v in match.items()):
                return self.items.pop(i)
        return None

    async def next(self, event: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """The oldest event ``event`` whose fields equal ``match`` (removed from the log)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = self._find(event, match)
                    if found is not None:
                        return found
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {event} {match} within {timeout} s; "
                                 f"events: {self.items}") from None

    def pending(self, event: str, **match: Any) -> list[dict[str, Any]]:
        return [item for item in self.items if item.get("event") == event
                and all(item.get(k) == v for k, v in match.items())]


def _info(info: ClientInfo | None) -> dict[str, str] | None:
    return None if info is None else {"user": info.user, "client": info.client}


class _ClientEvents(ClientEventHandler):
    def __init__(self, name: str, events: Events) -> None:
        self.name = name
        self.events = events

    def _add(self, event: str, **fields: Any) -> None:
        self.events.add({"event": event, "client": self.name, **fields})

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self._add("connected", id=ctx.client)

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        self._add("connecting", code=ctx.code)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self._add("disconnected", code=ctx.code)

    async def on_subscribed(self, ctx: ServerSubscribedContext) -> None:
        self._add("server_subscribed", channel=ctx.channel)

    async def on_unsubscribed(self, ctx: ServerUnsubscribedContext) -> None:
        self._add("server_unsubscribed", channel=ctx.channel)

    async def on_publication(self, ctx: ServerPublicationContext) -> None:
        self._add("server_publication", channel=ctx.channel, data=ctx.pub.data,
                  offset=ctx.pub.offset)


class _SubEvents(SubscriptionEventHandler):
    def __init__(self, name: str, channel: str, events: Events) -> None:
        self.base = {"client": name, "channel": channel}
        self.events = events

    def _add(self, event: str, **fields: Any) -> None:
        self.events.add({"event": event, **self.base, **fields})

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self._add("subscribed", recovered=ctx.recovered, wasRecovering=ctx.was_recovering,
                  recoverable=ctx.recoverable)

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        self._add("unsubscribed", code=ctx.code)

    async def on_publication(self, ctx: PublicationContext) -> None:
        self._add("publication", data=ctx.pub.data, offset=ctx.pub.offset,
                  publisher=_info(ctx.pub.info))

    async def on_join(self, ctx: JoinContext) -> None:
        self._add("join", info=_info(ctx.info))

    async def on_leave(self, ctx: LeaveContext) -> None:
        self._add("leave", info=_info(ctx.info))


class PyClient:
    """centrifuge-python over WebSocket, named ``name`` in the event log."""

    def __init__(self, name: str, url: str, user: str, events: Events) -> None:
        self.name = name
        self.events = events
        self.client = Client(url, events=_ClientEvents(name, events), token=token(user),
                             min_reconnect_delay=0.3, max_reconnect_delay=1.0)

    async def connect(self) -> str:
        """Connect; the client id."""
        await self.client.connect()
        return str((await self.events.next("connected", client=self.name))["id"])

    async def subscribe(self, channel: str, **options: Any) -> dict[str, Any]:
        sub = self.client.new_subscription(
            channel, events=_SubEvents(self.name, channel, self.events), **options)
        await sub.subscribe()
        return await self.events.next("subscribed", client=self.name, channel=channel)

    async def presence(self, channel: str) -> list[dict[str, str]]:
        sub = self.client.get_subscription(channel)
        assert sub is not None
        result = await sub.presence()
        return [{"user": i.user, "client": i.client} for i in result.clients.values()]

    async def presence_stats(self, channel: str) -> dict[str, int]:
        sub = self.client.get_subscription(channel)
        assert sub is not None
        stats = await sub.presence_stats()
        return {"num_clients": stats.num_clients, "num_users": stats.num_users}

    async def disconnect(self) -> None:
        await self.client.disconnect()
        # The SDK closes its WebSocket in a task it does not await: let that finish, so no
        # socket is left open (a ResourceWarning) when the test's event loop closes.
        pending = list(getattr(self.client, "_background_tasks", ()))
        if pending:
            await asyncio.wait(pending, timeout=5)


class JsAgent:
    """A Node process running centrifuge-js clients (``agent.cjs``)."""

    def __init__(self, modules: Path, events: Events) -> None:
        self.modules = modules
        self.events = events
        self.proc: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.stderr: list[str] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "node", str(Path(__file__).with_name("agent.cjs")), str(self.modules),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            message = json.loads(line)
            if "event" in message:
                self.events.add(message)
                continue
            future = self._replies.pop(message["id"], None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(AssertionError(f"agent: {message['error']}"))
                else:
                    future.set_result(message.get("result"))
        for future in self._replies.values():
            if not future.done():
                future.set_exception(AssertionError("agent exited"))

    async def call(self, op: str, timeout: float = 10, **fields: Any) -> Any:
        assert self.proc is not None and self.proc.stdin is not None
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        self.proc.stdin.write(json.dumps({"id": request_id, "op": op, **fields}).encode()
                              + b"\n")
        await self.proc.stdin.drain()
        async with asyncio.timeout(timeout):
            return await future

    async def connect(self, name: str, user: str, transport: str, endpoint: str,
                      emulation_endpoint: str | None = None) -> str:
        await self.call("connect", name=name, transport=transport, endpoint=endpoint,
                        token=token(user), emulationEndpoint=emulation_endpoint)
        return str((await self.events.next("connected", client=name))["id"])

    async def subscribe(self, name: str, channel: str, **options: Any) -> dict[str, Any]:
        await self.call("subscribe", name=name, channel=channel, options=options)
        return await self.events.next("subscribed", client=name, channel=channel)

    async def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            proc.kill()  # our own child, by its handle
            await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        self.proc = None


@contextlib.asynccontextmanager
async def js_agent(modules: Path, events: Events) -> AsyncIterator[JsAgent]:
    agent = JsAgent(modules, events)
    await agent.start()
    try:
        yield agent
    finally:
        await agent.stop()


class Proxy:
    """A TCP proxy on 127.0.0.1 forwarding to ``target`` (a port); ``repoint`` changes the
    target for new connections, ``drop`` cuts the current ones."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def repoint(self, target: int) -> None:
        self.target = target

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        pipes = [asyncio.ensure_future(self._pipe(reader, up_writer)),
                 asyncio.ensure_future(self._pipe(up_reader, writer))]
        self._pipes.update(pipes)
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        self._pipes.difference_update(pipes)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    def drop(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
