"""The Centrifugo layer of one node: its sessions, join/leave fan-out and control messages.

One ``CentrifugoNode`` per process.  It listens to the hub for join/leave events and control
messages (both delivered by the broker from every node), keeps the local sessions by client,
user and session id, and pings every connected session on a timer (no task per connection).
Join/leave pushes are encoded once per wire variant, like publications.

Node discovery: every ``node_heartbeat_interval`` seconds each node publishes a ``node``
control message with its id, name and counts; every node keeps the others it heard from
within ``2 * interval + 1`` seconds, which the server API ``info`` lists with this node.  A
node that hears from an unknown node answers with a heartbeat of its own at once, so nodes
that start together (or one that joins later) know each other within one interval.

Surveys: the server API ``channels`` asks every known node for its channels with a ``survey``
control message; each node answers with a ``survey_reply`` addressed to the asking node, which
merges the answers that arrive within ``SURVEY_TIMEOUT`` with its own.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.hub import Hub
from livehub.core.node import Node
from livehub.core.presence import ClientInfo
from livehub.errors import LivehubError
from livehub.protocols.centrifugo import control, protocol
from livehub.protocols.centrifugo.commands import (
    HANDLERS,
    connect,
    server_subscribe,
    server_unsubscribe,
)
from livehub.protocols.centrifugo.session import ChannelSub, Session, State
from livehub.protocols.centrifugo.settings import CentrifugoSettings
from livehub.protocols.centrifugo.variants import PushVariant
from livehub.transports.context import ServerContext

log = logging.getLogger(__name__)

SURVEY_TIMEOUT = 2.0
"""Seconds a survey waits for the other nodes' answers."""


class CentrifugoNode:
    """Sessions of this node and the cluster-wide operations that reach them."""

    def __init__(self, ctx: ServerContext, settings: CentrifugoSettings) -> None:
        self.ctx = ctx
        self.core: Node = ctx.node
        """The core node: publish, history, presence, join/leave and control go through it."""
        self.hub: Hub = ctx.hub
        self.settings = settings
        self.verifier = ctx.verifier
        self.auth = ctx.auth
        self.handlers = HANDLERS
        self.connect = connect
        self.node_id = str(uuid.uuid4())
        self.name = settings.node_name or f"livehub-{self.node_id[:8]}"
        self.started = time.time()
        self.peers: dict[str, tuple[dict[str, object], float]] = {}
        """Other nodes by id: their last heartbeat and when it arrived (monotonic)."""
        self._beat_timer: asyncio.TimerHandle | None = None
        self._beat_soon = False
        self._surveys: dict[str, tuple[dict[str, dict[str, int]], set[str], asyncio.Event]] = {}
        """Surveys in progress by id: answers by node, nodes asked, set when all answered."""
        self.sessions: dict[str, Session] = {}
        """Every session by session id (emulation requests find theirs here)."""
        self.clients: dict[str, Session] = {}
        self.users: dict[str, dict[Session, None]] = {}
        self._listeners: dict[str, dict[ChannelSub, None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.TimerHandle | None = None
        self.core.add_join_leave_listener(self)
        self.core.add_control_listener(self.on_control)
        if settings.client_ping_interval > 0:
            self._ticker = asyncio.get_running_loop().call_later(
                settings.client_ping_interval, self._tick)
        if settings.node_heartbeat_interval > 0:
            # the first one soon (the broker starts meanwhile), then every interval
            self._beat_timer = asyncio.get_running_loop().call_later(
                min(settings.node_heartbeat_interval, 0.5), self._beat)

    # -- registry --------------------------------------------------------------------------

    def register(self, session: Session) -> None:
        self.clients[session.client] = session
        self.users.setdefault(session.user, {})[session] = None

    def unregister(self, session: Session) -> None:
        self.sessions.pop(session.session_id, None)
        if self.clients.get(session.client) is session:
            del self.clients[session.client]
        group = self.users.get(session.user)
        if group is not None:
            group.pop(session, None)
            if not group:
                del self.users[session.user]

    def track(self, sub: ChannelSub) -> None:
        """Send join/leave pushes of ``sub.channel`` to ``sub``'s session."""
        self._listeners.setdefault(sub.channel, {})[sub] = None

    def untrack(self, sub: ChannelSub) -> None:
        group = self._listeners.get(sub.channel)
        if group is not None and group.pop(sub, False) is None and not group:
            del self._listeners[sub.channel]

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a side effect (presence, join/leave, server-side subscribe) in a task whose
        failure is logged."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("centrifugo background operation failed", exc_info=task.exception())

    def _tick(self) -> None:
        self._ticker = asyncio.get_running_loop().call_later(
            self.settings.client_ping_interval, self._tick)
        now = time.time()
        grace = self.settings.client_expired_close_delay
        for session in list(self.clients.values()):
            for sub in list(session.subs.values()):
                if sub.expire_at is not None and sub.expire_at + grace < now:
                    session.close(Disconnect.SUBSCRIPTION_EXPIRED)
                    break
            session.ping()

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._beat_timer is not None:
            self._beat_timer.cancel()
            self._beat_timer = None
        self._beat_soon = False

    # -- node discovery --------------------------------------------------------------------

    def _beat(self) -> None:
        self._beat_timer = asyncio.get_running_loop().call_later(
            self.settings.node_heartbeat_interval, self._beat)
        self._send_heartbeat()

    def _beat_now(self) -> None:
        if self._beat_soon:
            self._beat_soon = False
            self._send_heartbeat()

    def _send_heartbeat(self) -> None:
        task = asyncio.get_running_loop().create_task(self._publish_heartbeat())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_heartbeat(self) -> None:
        try:
            await self.core.publish_control(control.encode("node", **self.info()))
        except LivehubError as exc:  # the broker is down: the next beat tries again
            log.debug("node heartbeat not sent: %s", exc.message)

    @property
    def node_ttl(self) -> float:
        """Seconds a node stays listed after its last heartbeat."""
        return 2 * self.settings.node_heartbeat_interval + 1

    def _heartbeat(self, fields: dict[str, Any]) -> None:
        uid = fields.get("uid")
        if not isinstance(uid, str) or uid == self.node_id or self._beat_timer is None:
            return
        now = time.monotonic()
        for stale in [k for k, (_, seen) in self.peers.items() if now - seen > self.node_ttl]:
            del self.peers[stale]
        if uid not in self.peers and not self._beat_soon:
            # a node we did not know: tell it about us now rather than in an interval
            self._beat_soon = True
            asyncio.get_running_loop().call_later(0.05, self._beat_now)
        info: dict[str, object] = {"uid": uid, "name": str(fields.get("name") or uid)}
        info["version"] = str(fields.get("version") or "")
        for key in ("num_clients", "num_users", "num_channels", "num_subs", "uptime"):
            value = fields.get(key)
            info[key] = value if isinstance(value, int) else 0
        self.peers[uid] = (info, now)

    def live_peers(self) -> list[str]:
        now = time.monotonic()
        return [uid for uid, (_, seen) in self.peers.items() if now - seen <= self.node_ttl]

    # -- surveys ---------------------------------------------------------------------------

    def local_channels(self, pattern: str | None) -> dict[str, int]:
        """Channels with subscribers on this node (every transport) and their numbers."""
        hub = self.hub
        return {name: count for name in hub.channel_names()
                if (count := hub.subscriber_count(name)) > 0
                and (not pattern or fnmatch.fnmatchcase(name, pattern))}

    async def channels(self, pattern: str | None) -> dict[str, int]:
        """Channels with subscribers on any node, with their numbers summed over the nodes
        that answered the survey in time (the others are missing, and logged)."""
        counts = self.local_channels(pattern)
        asked = set(self.live_peers())
        if not asked:
            return counts
        survey_id = uuid.uuid4().hex
        answers: dict[str, dict[str, int]] = {}
        done = asyncio.Event()
        self._surveys[survey_id] = (answers, asked, done)
        try:
            await self.core.publish_control(control.encode(
                "survey", id=survey_id, origin=self.node_id, op="channels",
                pattern=pattern or None))
            try:
                async with asyncio.timeout(SURVEY_TIMEOUT):
                    await done.wait()
            except TimeoutError:
                silent = [str(self.peers[uid][0]["name"]) if uid in self.peers else uid
                          for uid in asked - answers.keys()]
                log.warning("channels: no answer within %s s from nodes %s (left out)",
                            SURVEY_TIMEOUT, ", ".join(sorted(silent)))
        finally:
            del self._surveys[survey_id]
        for channels in answers.values():
            for name, count in channels.items():
                counts[name] = counts.get(name, 0) + count
        return counts

    def _survey(self, fields: dict[str, Any]) -> None:
        origin = fields.get("origin")
        if not isinstance(origin, str) or origin == self.node_id:
            return
        if fields.get("op") != "channels":
            log.debug("unknown survey %r", fields.get("op"))
            return
        pattern = fields.get("pattern")
        self.spawn(self.core.publish_control(control.encode(
            "survey_reply", id=str(fields.get("id")), to=origin, origin=self.node_id,
            channels=self.local_channels(pattern if isinstance(pattern, str) else None))))

    def _survey_reply(self, fields: dict[str, Any]) -> None:
        if fields.get("to") != self.node_id:
            return
        survey = self._surveys.get(str(fields.get("id")))
        channels = fields.get("channels")
        origin = fields.get("origin")
        if survey is None or not isinstance(origin, str) or not isinstance(channels, dict):
            return
        answers, asked, done = survey
        answers[origin] = {str(k): v for k, v in channels.items() if isinstance(v, int)}
        if asked <= answers.keys():
            done.set()

    def nodes(self) -> list[dict[str, object]]:
        """This node, then the others heard from within ``node_ttl`` (by name)."""
        others = [self.peers[uid][0] for uid in self.live_peers()]
        others.sort(key=lambda info: (str(info["name"]), str(info["uid"])))
        return [self.info(), *others]

    # -- join/leave (JoinLeaveListener) ------------------------------------------------------

    def on_join(self, channel: str, info: ClientInfo) -> None:
        self._join_leave("join", channel, info)

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        self._join_leave("leave", channel, info)

    def _join_leave(self, kind: str, channel: str, info: ClientInfo) -> None:
        group = self._listeners.get(channel)
        if not group:
            return
        body = b'{"info":' + protocol.client_info(info) + b"}"
        encoded: dict[PushVariant, bytes] = {}
        for sub in group:
            variant = sub.session.transport.variant
            data = encoded.get(variant)
            if data is None:
                data = encoded[variant] = variant.encode_push(kind, body, channel)
            sub.write(data)

    # -- control messages ------------------------------------------------------------------

    def on_control(self, data: bytes) -> None:
        decoded = control.decode(data)
        if decoded is None:
            return
        kind, fields = decoded
        try:
            if kind == "emulation":
                self._emulation(fields)
            elif kind == "node":
                self._heartbeat(fields)
            elif kind == "survey":
                self._survey(fields)
            elif kind == "survey_reply":
                self._survey_reply(fields)
            else:
                self._user_op(kind, fields)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("malformed centrifugo control message %s: %s", kind, exc)

    def _emulation(self, fields: dict[str, Any]) -> None:
        if fields.get("node") not in (None, "", self.node_id):
            return
        session = self.sessions.get(str(fields.get("session")))
        if session is None or not session.transport.emulation:
            return
        payload = fields.get("data")
        if isinstance(payload, str):
            session.feed(payload)
        elif isinstance(payload, list):
            session.feed("\n".join(protocol.dumps(c).decode() for c in payload))
        elif isinstance(payload, dict):
            session.feed(protocol.dumps(payload))

    def _targets(self, fields: dict[str, Any]) -> list[Session]:
        group = self.users.get(str(fields.get("user", "")), {})
        client = fields.get("client")
        session_id = fields.get("session")
        return [s for s in group if s.state is State.CONNECTED
                and (not client or s.client == client)
                and (not session_id or s.session_id == session_id)]

    def _user_op(self, kind: str, fields: dict[str, Any]) -> None:
        targets = self._targets(fields)
        if kind == "disconnect":
            keep = set(fields.get("whitelist") or ())
            advice = DisconnectInfo(
                int(fields.get("code") or Disconnect.FORCE_NO_RECONNECT.code),
                str(fields.get("reason") or Disconnect.FORCE_NO_RECONNECT.reason))
            for session in targets:
                if session.client not in keep:
                    session.close(advice)
            if not fields.get("client") and not fields.get("session"):
                # the user's connections of the other protocols (SSE, raw WebSocket...)
                self.ctx.disconnect_user(str(fields.get("user", "")), advice)
        elif kind == "unsubscribe":
            for session in targets:
                server_unsubscribe(session, str(fields["channel"]))
        elif kind == "subscribe":
            info = fields.get("info")
            for session in targets:
                self.spawn(server_subscribe(
                    session, str(fields["channel"]), info=protocol.info_bytes(info),
                    data=fields.get("data"), since=fields.get("recover_since")))
        elif kind == "refresh":
            for session in targets:
                if fields.get("expired"):
                    session.close(Disconnect.EXPIRED)
                    continue
                expire_at = fields.get("expire_at")
                session.set_expiry(float(expire_at) if expire_at else None)
                body: dict[str, object] = {}
                ttl = session.ttl()
                if ttl is not None:
                    body = {"expires": True, "ttl": ttl}
                session.push("refresh", protocol.dumps(body))
        else:
            log.debug("unknown centrifugo control message %s", kind)

    # -- stats -----------------------------------------------------------------------------

    def info(self) -> dict[str, object]:
        return {"uid": self.node_id, "name": self.name,
                "version": "livehub", "num_clients": len(self.clients),
                "num_users": len(self.users), "num_channels": self.hub.channel_count(),
                "num_subs": sum(len(s.subs) for s in self.clients.values()),
                "uptime": int(time.time() - self.started)}
