"""One Centrifugo client session: connect, command dispatch, pings, expiry and teardown.

Theory of operation
-------------------
A session belongs to one transport connection (WebSocket, SSE or HTTP stream, bidirectional
or unidirectional) and sees it only through ``Transport``: ``write`` takes already framed bytes,
``close`` says goodbye on that wire.  States go CONNECTING -> CONNECTED -> CLOSED; only
``connect`` is accepted while CONNECTING (a connection that sends nothing is closed as stale).

Commands of one connection are handled in arrival order by one worker task that exists only
while there is work, so an idle session owns no task.  Pongs (empty commands) are handled at
once.  Each channel subscription is a ``ChannelSub``: the hub's subscriber for that channel.
While a subscribe is being answered the ``ChannelSub`` holds what the hub writes (recovered and
live publications), so the reply always precedes the pushes it announces; see
``commands.subscribe_channel``.

Command handlers live in ``livehub.protocols.centrifugo.commands`` (one function per
command family).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Protocol

from livehub.codes import Disconnect, DisconnectInfo, ErrorCode
from livehub.core.hub import Subscription
from livehub.core.permissions import ANONYMOUS, Principal
from livehub.core.presence import ClientInfo
from livehub.errors import CommandError, InvalidToken, LivehubError, TokenExpired
from livehub.protocols.centrifugo import protocol
from livehub.protocols.centrifugo.protocol import Command, ProtocolViolation
from livehub.protocols.centrifugo.variants import PushVariant
from livehub.ratelog import RateLimitedLog

if TYPE_CHECKING:
    from livehub.protocols.centrifugo.node import CentrifugoNode

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)


class Transport(Protocol):
    """What a session needs from its connection."""

    name: str
    uni: bool
    emulation: bool
    variant: PushVariant
    ping_frame: bytes
    """A framed server ping."""

    def write(self, data: bytes) -> None:
        """Queue framed bytes (never blocks)."""

    def close(self, info: DisconnectInfo) -> None:
        """Say goodbye in this transport's way and close."""

    def begin_catch_up(self) -> None:
        """A catch-up (recovered publications) follows: exempt from ``max_buffer``."""

    def end_catch_up(self) -> None:
        """The catch-up is written; what it queued is allowed until the client read it."""


class State(enum.Enum):
    CONNECTING = 1
    CONNECTED = 2
    CLOSED = 3


class ChannelSub:
    """One channel of a session: the hub's subscriber for it (write-only face)."""

    __slots__ = (
        "chan_info",
        "channel",
        "expire_at",
        "held",
        "hub_sub",
        "join_leave",
        "options_presence",
        "push_join_leave",
        "server_side",
        "session",
    )

    def __init__(self, session: Session, channel: str, *, server_side: bool) -> None:
        self.session = session
        self.channel = channel
        self.server_side = server_side
        self.held: list[bytes] | None = []
        self.hub_sub: Subscription | None = None
        self.chan_info: bytes | None = None
        self.expire_at: float | None = None
        self.push_join_leave = False
        self.join_leave = False
        self.options_presence = False

    def write(self, data: bytes) -> None:
        held = self.held
        if held is not None:
            held.append(data)
        else:
            self.session.transport.write(data)

    def close(self, info: DisconnectInfo) -> None:
        self.session.close(info)

    def narrow_window(self, delay: float | None) -> None:
        """The namespace's batching window, for the session's connection (``hub.Windowed``)."""
        narrow = getattr(self.session.transport, "narrow_window", None)
        if narrow is not None:
            narrow(delay)

    def release(self) -> None:
        """Write what was held during the subscribe (the hub's catch-up: recovered, then
        live publications), then pass writes straight through.  Like every catch-up (the hub
        brackets them for every ``CatchUpWriter``) it is bounded by the resume budget, not
        by ``max_buffer``: released after the reply, so bracketed here."""
        held = self.held
        self.held = None
        if held:
            transport = self.session.transport
            transport.begin_catch_up()
            try:
                for data in held:
                    transport.write(data)
            finally:
                transport.end_catch_up()

    @property
    def client_info(self) -> ClientInfo:
        s = self.session
        return ClientInfo(s.client, s.user, s.conn_info, self.chan_info)


class Session:
    """A Centrifugo client session on one transport connection."""

    def __init__(self, node: CentrifugoNode, transport: Transport) -> None:
        self.node = node
        self.transport = transport
        self.client = str(uuid.uuid4())
        self.session_id = str(uuid.uuid4())
        self.user = ""
        self.principal: Principal = ANONYMOUS
        """Who the session is for the permission model (set by ``connect``)."""
        self.vouched: str | None = None
        """The user the host application vouches for (``Request.user``, the ASGI adapter's
        ``authenticate`` hook): ``connect`` without a token is that user's."""
        self.conn_info: bytes | None = None
        self.state = State.CONNECTING
        self.subs: dict[str, ChannelSub] = {}
        self.publish_bucket = node.core.limits.publish_bucket()
        self.expire_at: float | None = None
        self._expire_timer: asyncio.TimerHandle | None = None
        self._queue: deque[Command] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._awaiting_pong = False
        self._pings = transport.name == "websocket"
        loop = asyncio.get_running_loop()
        self._stale_timer: asyncio.TimerHandle | None = loop.call_later(
            node.settings.client_stale_close_delay, self._stale)
        node.sessions[self.session_id] = self

    # -- input -----------------------------------------------------------------------------

    def feed(self, data: str | bytes) -> None:
        """Handle one client frame (or one emulation request body)."""
        if self.state is State.CLOSED:
            return
        try:
            commands = protocol.parse_commands(
                data, max_commands=self.node.settings.client_max_commands,
                max_depth=self.node.core.limits.max_json_depth)
        except ProtocolViolation as exc:
            rlog.info("centrifugo-violation", "centrifugo client %s: %s", self.client,
                      exc.message)
            self.close(DisconnectInfo(Disconnect.BAD_REQUEST.code, exc.message))
            return
        for command in commands:
            if command.method is None:
                self._awaiting_pong = False
                continue
            self._queue.append(command)
        if self._queue and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        try:
            while self._queue and self.state is not State.CLOSED:
                command = self._queue.popleft()
                await self._dispatch(command)
        finally:
            self._worker = None
        if self._queue and self.state is not State.CLOSED:
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _dispatch(self, command: Command) -> None:
        method = command.method or ""
        try:
            if self.state is State.CONNECTING:
                if method != "connect":
                    raise ProtocolViolation(f"{method or 'unknown'} command before connect")
                await self.node.connect(self, command)
                return
            if method == "connect":
                raise ProtocolViolation("connect command on a connected session")
            handler = self.node.handlers.get(method)
            if handler is None:
                raise CommandError(ErrorCode.METHOD_NOT_FOUND)
            await handler(self, command)
        except TokenExpired:
            self.reply_error(command.id, ErrorCode.TOKEN_EXPIRED)
        except InvalidToken as exc:
            self.close(DisconnectInfo(Disconnect.INVALID_TOKEN.code, exc.message))
        except ProtocolViolation as exc:
            self.close(DisconnectInfo(Disconnect.BAD_REQUEST.code, exc.message))
        except LivehubError as exc:
            self.reply_error(command.id, exc.error_code, exc.message)
        except Exception:  # noqa: BLE001 - logged with its traceback (rate-limited)
            rlog.exception("centrifugo-command", "centrifugo command %s of client %s failed",
                           method, self.client)
            self.reply_error(command.id, ErrorCode.INTERNAL)

    # -- output ----------------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        """Frame and queue one reply or push."""
        if self.state is not State.CLOSED:
            self.transport.write(self.transport.variant.frame(payload))

    def reply(self, command_id: int, method: str, result: dict[str, object] | None = None
              ) -> None:
        self.send(protocol.reply(command_id, method, result))

    def reply_error(self, command_id: int, code: int, message: str | None = None) -> None:
        if command_id:
            self.send(protocol.error_reply(command_id, code, message))

    def push(self, kind: str, body: bytes, channel: str | None = None) -> None:
        self.send(protocol.push(kind, body, channel, uni=self.transport.uni))

    # -- lifecycle -------------------------------------------------------------------------

    def connected(self, user: str, info: bytes | None, expire_at: float | None) -> None:
        self.user = user
        self.conn_info = info
        self.state = State.CONNECTED
        if self._stale_timer is not None:
            self._stale_timer.cancel()
            self._stale_timer = None
        self.node.register(self)
        self.set_expiry(expire_at)

    def set_expiry(self, expire_at: float | None) -> None:
        self.expire_at = expire_at
        if self._expire_timer is not None:
            self._expire_timer.cancel()
            self._expire_timer = None
        if expire_at is not None:
            delay = expire_at - time.time() + self.node.settings.client_expired_close_delay
            self._expire_timer = asyncio.get_running_loop().call_later(max(delay, 0),
                                                                       self._expired)

    def ttl(self) -> int | None:
        """Seconds until the connection expires, for ``ttl`` fields (None: never)."""
        if self.expire_at is None:
            return None
        return max(int(self.expire_at - time.time()), 1)

    def _expired(self) -> None:
        self._expire_timer = None
        if self.expire_at is not None and self.expire_at <= time.time():
            self.close(Disconnect.EXPIRED)
        else:
            self.set_expiry(self.expire_at)

    def _stale(self) -> None:
        self._stale_timer = None
        if self.state is State.CONNECTING:
            self.close(Disconnect.STALE)

    def ping(self) -> None:
        """A node tick: ping, check the previous pong, refresh presence."""
        if self.state is not State.CONNECTED:
            return
        if self._pings and self._awaiting_pong:
            self.close(Disconnect.NO_PONG)
            return
        self._awaiting_pong = self._pings
        self.transport.write(self.transport.ping_frame)
        for sub in self.subs.values():
            if sub.options_presence and sub.held is None:
                self.node.spawn(self.node.core.add_presence(
                    sub.channel, sub.client_info, ttl=self.node.settings.presence_ttl))

    def close(self, info: DisconnectInfo) -> None:
        """Close with a disconnect code (idempotent)."""
        if self.state is State.CLOSED:
            return
        self.transport.close(info)
        self.closed()

    def closed(self) -> None:
        """The transport is gone: release everything the session holds."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        for timer in (self._stale_timer, self._expire_timer):
            if timer is not None:
                timer.cancel()
        self._stale_timer = self._expire_timer = None
        self._queue.clear()
        if self._worker is not None and self._worker is not asyncio.current_task():
            self._worker.cancel()
        for sub in list(self.subs.values()):
            self.drop_sub(sub)
        self.node.unregister(self)

    def drop_sub(self, sub: ChannelSub) -> None:
        """Forget one channel: hub, join/leave listeners, presence and leave event."""
        if self.subs.get(sub.channel) is sub:
            del self.subs[sub.channel]
        node = self.node
        if sub.hub_sub is not None:
            node.core.unsubscribe(sub.hub_sub)
        node.untrack(sub)
        if sub.held is not None:
            return  # never announced: no presence, no join yet
        info = sub.client_info
        if sub.options_presence:
            node.spawn(node.core.remove_presence(sub.channel, self.client))
        if sub.join_leave:
            node.spawn(node.core.publish_leave(sub.channel, info))
