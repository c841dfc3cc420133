"""Handlers of Centrifugo client commands, one function per command family.

``connect``/``refresh`` (connection credentials, server-side subscriptions), ``subscribe``/
``unsubscribe``/``sub_refresh`` (channel subscriptions with recovery through the hub's resume
merge), ``publish``/``presence``/``presence_stats``/``history`` (channel operations under the
namespace permissions of the "Channel permission model"), ``rpc``/``send`` (no backend to
call: not available).  Errors are raised as ``CommandError`` (or a ``LivehubError``) and
answered by the session in the command's reply.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from livehub import __version__
from livehub.codes import Disconnect, DisconnectInfo, ErrorCode, Unsubscribe
from livehub.core.auth import ConnectionClaims, SubscriptionClaims
from livehub.core.node import Node
from livehub.core.permissions import (
    Principal,
    check_history,
    check_presence,
    check_publish,
    check_subscribe,
    may_read_history,
    may_read_presence,
)
from livehub.core.presence import ClientInfo
from livehub.errors import (
    CommandError,
    InvalidToken,
    LivehubError,
    PermissionDenied,
    TokenExpired,
)
from livehub.protocols.centrifugo import protocol
from livehub.protocols.centrifugo.protocol import (
    Command,
    get_bool,
    get_int,
    get_str,
    payload_from_json,
)
from livehub.protocols.centrifugo.session import ChannelSub, Session, State
from livehub.ratelog import RateLimitedLog
from livehub.wire.cursor import EPOCH_RE, StreamPosition

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)
VERSION = f"livehub {__version__}"
REJECT_UNRECOVERED = 2
"""``SubscribeRequest.flag`` bit: answer 112 instead of ``recovered: false``."""


# -- connect and refresh ---------------------------------------------------------------------


async def connect(session: Session, command: Command) -> None:
    await connect_session(session, command.params, command.id)


async def uni_connect(session: Session, params: Mapping[str, Any]) -> None:
    """Connect of a unidirectional transport: failures end the connection with a code."""
    try:
        await connect_session(session, params, 0)
    except TokenExpired:
        session.close(Disconnect.EXPIRED)
    except InvalidToken as exc:
        session.close(DisconnectInfo(Disconnect.INVALID_TOKEN.code, exc.message))
    except PermissionDenied as exc:
        session.close(DisconnectInfo(Disconnect.PERMISSION_DENIED.code, exc.message))
    except CommandError as exc:
        info = Disconnect.INVALID_TOKEN if exc.error_code == ErrorCode.UNAUTHORIZED else (
            Disconnect.BAD_REQUEST)
        session.close(DisconnectInfo(info.code, exc.message))
    except LivehubError as exc:
        session.close(DisconnectInfo(Disconnect.BAD_REQUEST.code, exc.message))
    except Exception:  # noqa: BLE001 - logged with its traceback (rate-limited)
        # a bug or a broker failure (uni WebSocket connects run in a task): never a zombie
        rlog.exception("centrifugo-connect", "connect of client %s failed", session.client)
        session.close(Disconnect.SERVER_ERROR)


async def connect_session(session: Session, params: Mapping[str, Any], command_id: int) -> None:
    node = session.node
    settings = node.settings
    token = get_str(params, "token")
    insecure = node.auth.client_insecure
    if token and node.verifier.configured:
        claims = await node.verifier.connection(token)
    elif session.vouched is not None and not token:  # the host app's session (ASGI)
        claims = ConnectionClaims(session.vouched, None)
    elif insecure or (settings.client_anonymous and not token):
        claims = ConnectionClaims("", None)
    elif token:
        raise InvalidToken("no token keys configured")
    else:
        raise CommandError(ErrorCode.UNAUTHORIZED)
    session.principal = Principal.of(claims.user, claims.channels, insecure=insecure)
    session.connected(claims.user, claims.info, claims.expire_at)
    requested = params.get("subs") or {}
    if not isinstance(requested, dict):
        raise CommandError(ErrorCode.BAD_REQUEST, "subs must be an object")
    channels = list(claims.channels)
    for template in settings.server_channels:
        if "{user}" in template and not claims.user:
            continue
        name = template.replace("{user}", claims.user)
        if name not in channels:
            channels.append(name)
    names = [*channels, *(c for c in requested if c not in channels)]
    if len(names) > settings.client_channel_limit:
        session.node.core.limit_hits["client_channel_limit"] += 1
        session.close(DisconnectInfo(
            Disconnect.CHANNEL_LIMIT.code,
            f"channel limit: {len(names)} subscriptions asked, at most "
            f"{settings.client_channel_limit}"))
        return
    results: dict[str, object] = {}
    subs: list[ChannelSub] = []
    for name in names:
        request = requested.get(name) or {}
        if not isinstance(request, dict):
            raise CommandError(ErrorCode.BAD_REQUEST, "subs values must be objects")
        token_opts = claims.subs.get(name, {})
        try:
            result, sub = await subscribe_channel(
                session, name, request, server_side=True, check=name not in channels,
                chan_info=protocol.info_bytes(token_opts.get("info")))
        except PermissionDenied as exc:
            # a channel the client asked for and may not have: say so, never skip it silently
            session.close(DisconnectInfo(Disconnect.PERMISSION_DENIED.code, exc.message))
            return
        except LivehubError as exc:
            if session.state is State.CLOSED:
                return
            if name in channels:
                raise
            rlog.info("subscription-refused", "subscription of %s to %s refused: %s",
                      session.client, name, exc)
            continue
        if "data" in token_opts:
            result["data"] = token_opts["data"]
        results[name] = result
        subs.append(sub)
    if session.state is State.CLOSED:
        return
    reply: dict[str, object] = {"client": session.client, "version": VERSION}
    ttl = session.ttl()
    if ttl is not None:
        reply["expires"] = True
        reply["ttl"] = ttl
    if results:
        reply["subs"] = results
    if settings.client_ping_interval > 0:
        reply["ping"] = max(int(settings.client_ping_interval), 1)
        if session.transport.name == "websocket":
            reply["pong"] = True
    reply["session"] = session.session_id
    reply["node"] = node.node_id
    if session.transport.uni:
        session.push("connect", protocol.dumps(reply))
    else:
        session.reply(command_id, "connect", reply)
    for sub in subs:
        finish_sub(session, sub)


async def refresh(session: Session, command: Command) -> None:
    token = get_str(command.params, "token", required=True)
    claims = await session.node.verifier.connection(token)
    if claims.user != session.user:
        raise InvalidToken("refresh token is for another user")
    session.conn_info = claims.info if claims.info is not None else session.conn_info
    session.principal = Principal.of(claims.user, claims.channels,
                                     insecure=session.principal.insecure)
    session.set_expiry(claims.expire_at)
    result: dict[str, object] = {"client": session.client, "version": VERSION}
    ttl = session.ttl()
    if ttl is not None:
        result["expires"] = True
        result["ttl"] = ttl
    session.reply(command.id, "refresh", result)


# -- subscriptions ---------------------------------------------------------------------------


async def subscribe_channel(session: Session, channel: str, request: Mapping[str, Any], *,
                            server_side: bool, check: bool,
                            claims: SubscriptionClaims | None = None,
                            chan_info: bytes | None = None
                            ) -> tuple[dict[str, object], ChannelSub]:
    """Subscribe ``session`` to ``channel`` through the hub; return the ``SubscribeResult``
    and the subscription, which still holds its pushes: the caller sends the reply, then
    ``finish_sub`` releases them.

    Recovery: with ``recover`` the hub replays what came after (epoch, offset) and then live
    traffic, deduplicated.  Everything the hub writes before the reply is held, and the
    reply's ``offset`` is the position before the first held push.  Held pushes are
    consecutive offsets of one epoch (replay and live delivery have no gaps), so that
    position is the subscription's position minus their number.
    """
    node = session.node
    settings = node.settings
    options = node.core.options(channel)
    if channel in session.subs:
        raise CommandError(ErrorCode.ALREADY_SUBSCRIBED)
    if len(session.subs) >= settings.client_channel_limit:
        session.node.core.limit_hits["client_channel_limit"] += 1
        raise CommandError(ErrorCode.LIMIT_EXCEEDED, "too many channels")
    who = session.principal
    if check:
        check_subscribe(who, channel, options,
                        token_channel=claims.channel if claims is not None else None)
    may_history = may_read_history(who, channel, options)
    may_presence = may_read_presence(who, channel, options)
    has_history = options.history_size > 0 and options.history_ttl > 0
    wants = get_bool(request, "recoverable") or get_bool(request, "recover")
    recoverable = has_history and (options.force_recovery or (wants and may_history))
    positioned = recoverable or (has_history and (
        options.force_positioning or (get_bool(request, "positioned") and may_history)))
    since: dict[str, StreamPosition] | None = None
    if recoverable and get_bool(request, "recover"):
        epoch = get_str(request, "epoch")
        offset = get_int(request, "offset")
        if offset < 0 or (epoch and not EPOCH_RE.fullmatch(epoch)):
            raise CommandError(ErrorCode.BAD_REQUEST, "malformed stream position")
        if not epoch:  # "any epoch": the current one
            epoch = (await node.core.top(channel)).epoch
        since = {channel: StreamPosition(epoch, offset)}
    sub = ChannelSub(session, channel, server_side=server_side)
    sub.chan_info = claims.info if claims is not None else chan_info
    sub.expire_at = claims.expire_at if claims is not None else None
    sub.options_presence = options.presence
    sub.join_leave = options.join_leave
    sub.push_join_leave = options.join_leave and (
        options.force_push_join_leave or (get_bool(request, "join_leave") and may_presence))
    session.subs[channel] = sub
    try:
        hub_sub = await node.core.subscribe(sub, session.transport.variant, [channel],
                                            since=since)
    except BaseException:
        if session.subs.get(channel) is sub:
            del session.subs[channel]
        raise
    sub.hub_sub = hub_sub
    if session.state is State.CLOSED or session.subs.get(channel) is not sub:
        node.core.unsubscribe(hub_sub)
        raise CommandError(ErrorCode.INTERNAL, "session closed while subscribing")
    recovered = since is not None and channel not in hub_sub.reset_channels
    position = hub_sub.positions[channel]
    held = len(sub.held or ())
    if since is not None and not recovered and get_int(request, "flag") & REJECT_UNRECOVERED:
        session.drop_sub(sub)
        raise CommandError(ErrorCode.UNRECOVERABLE_POSITION)
    result: dict[str, object] = {}
    if sub.expire_at is not None:
        result["expires"] = True
        result["ttl"] = max(int(sub.expire_at - time.time()), 1)
    if recoverable:
        result["recoverable"] = True
    if positioned:
        result["positioned"] = True
        result["epoch"] = position.epoch
        result["offset"] = position.offset - held
    if since is not None:
        result["was_recovering"] = True
        result["recovered"] = recovered
    return result, sub


async def add_presence(session: Session, sub: ChannelSub) -> bool:
    """Add a subscription to presence before its reply, as Centrifugo does, so that whoever
    asks any node after the reply sees it.  A store that fails now is retried by the
    session's periodic presence refresh; the subscription stands."""
    if not sub.options_presence:
        return True
    try:
        await session.node.core.add_presence(sub.channel, sub.client_info,
                                             ttl=session.node.settings.presence_ttl)
    except LivehubError as exc:
        rlog.warning("presence-add", "presence add for %r failed, retried later: %s",
                     sub.channel, exc.message)
        return False
    return True


def finish_sub(session: Session, sub: ChannelSub, *, presence_added: bool = False) -> None:
    """After the reply: release held pushes, then presence, join and join/leave pushes."""
    if session.subs.get(sub.channel) is not sub:
        return
    sub.release()
    node = session.node
    if sub.push_join_leave:
        node.track(sub)
    info = sub.client_info
    if sub.options_presence and not presence_added:
        node.spawn(node.core.add_presence(sub.channel, info, ttl=node.settings.presence_ttl))
    if sub.join_leave:
        node.spawn(node.core.publish_join(sub.channel, info))


async def subscribe(session: Session, command: Command) -> None:
    params = command.params
    channel = get_str(params, "channel", required=True)
    token = get_str(params, "token")
    claims = None
    if token:
        claims = await session.node.verifier.subscription(token)
        if claims.channel != channel or claims.user != session.user:
            raise CommandError(ErrorCode.PERMISSION_DENIED, "token is for another channel or user")
    result, sub = await subscribe_channel(session, channel, params, server_side=False,
                                          check=True, claims=claims)
    added = await add_presence(session, sub)
    if added and sub.options_presence and session.subs.get(channel) is not sub:
        # dropped while presence was being stored: take the entry back out
        session.node.spawn(session.node.core.remove_presence(channel, sub.client_info.client))
        return
    session.reply(command.id, "subscribe", result)
    finish_sub(session, sub, presence_added=added)


async def unsubscribe(session: Session, command: Command) -> None:
    channel = get_str(command.params, "channel", required=True)
    sub = session.subs.get(channel)
    if sub is not None:
        session.drop_sub(sub)
    session.reply(command.id, "unsubscribe")


async def sub_refresh(session: Session, command: Command) -> None:
    channel = get_str(command.params, "channel", required=True)
    token = get_str(command.params, "token", required=True)
    sub = session.subs.get(channel)
    if sub is None:
        raise CommandError(ErrorCode.PERMISSION_DENIED, "not subscribed")
    claims = await session.node.verifier.subscription(token)
    if claims.channel != channel or claims.user != session.user:
        raise CommandError(ErrorCode.PERMISSION_DENIED, "token is for another channel or user")
    sub.expire_at = claims.expire_at
    result: dict[str, object] = {}
    if sub.expire_at is not None:
        result["expires"] = True
        result["ttl"] = max(int(sub.expire_at - time.time()), 1)
    session.reply(command.id, "sub_refresh", result)


async def server_subscribe(session: Session, channel: str, *, info: bytes | None,
                           data: object, since: Mapping[str, Any] | None) -> None:
    """Server API ``subscribe``: a server-side subscription announced by a push."""
    request: dict[str, Any] = {}
    if since:
        request = {"recover": True, "offset": since.get("offset", 0),
                   "epoch": since.get("epoch", "")}
    try:
        result, sub = await subscribe_channel(session, channel, request, server_side=True,
                                              check=False, chan_info=info)
    except LivehubError as exc:
        rlog.info("server-subscribe", "server subscribe of %s to %s failed: %s", session.client,
                              channel, exc)
        return
    if data is not None:
        result["data"] = data
    session.push("subscribe", protocol.dumps(result), channel)
    finish_sub(session, sub)


def server_unsubscribe(session: Session, channel: str) -> None:
    """Server API ``unsubscribe``: drop the channel and tell the client."""
    sub = session.subs.get(channel)
    if sub is None:
        return
    session.drop_sub(sub)
    code = Unsubscribe.SERVER
    session.push("unsubscribe", protocol.dumps({"code": code.code, "reason": code.reason}),
                 channel)


# -- channel operations ----------------------------------------------------------------------


def _subscribed(session: Session, channel: str) -> bool:
    """Whether ``session`` is subscribed to ``channel`` (its subscribe reply sent)."""
    sub = session.subs.get(channel)
    return sub is not None and sub.held is None


async def publish(session: Session, command: Command) -> None:
    params = command.params
    channel = get_str(params, "channel", required=True)
    options = session.node.core.options(channel)
    check_publish(session.principal, channel, options, subscribed=_subscribed(session, channel))
    if "data" not in params:
        raise CommandError(ErrorCode.BAD_REQUEST, "data is required")
    bucket = session.publish_bucket
    if bucket is not None and not bucket.take():
        session.node.core.limit_hits["client_publish_rate"] += 1
        raise CommandError(ErrorCode.TOO_MANY_REQUESTS)
    data, kind = payload_from_json(params["data"])
    sub = session.subs.get(channel)
    info = sub.client_info if sub is not None else ClientInfo(session.client, session.user,
                                                              session.conn_info)
    await session.node.core.publish(channel, data, kind, info=info)
    session.reply(command.id, "publish")


def _presence_channel(session: Session, command: Command) -> str:
    """The channel of a presence command, once presence is on and allowed for this client."""
    channel = get_str(command.params, "channel", required=True)
    options = session.node.core.options(channel)
    if not options.presence:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    check_presence(session.principal, channel, options,
                   subscribed=_subscribed(session, channel))
    return channel


async def presence(session: Session, command: Command) -> None:
    channel = _presence_channel(session, command)
    entries = await session.node.core.presence_of(channel)
    session.reply(command.id, "presence", {"presence": {
        client: protocol.client_info_value(info) for client, info in entries.items()}})


async def presence_stats(session: Session, command: Command) -> None:
    channel = _presence_channel(session, command)
    stats = await session.node.core.presence_stats(channel)
    session.reply(command.id, "presence_stats", {"num_clients": stats.num_clients,
                                                 "num_users": stats.num_users})


async def history(session: Session, command: Command) -> None:
    params = command.params
    channel = get_str(params, "channel", required=True)
    options = session.node.core.options(channel)
    if options.history_size <= 0 or options.history_ttl <= 0:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    check_history(session.principal, channel, options, subscribed=_subscribed(session, channel))
    since = params.get("since")
    if since is not None and not isinstance(since, dict):
        raise CommandError(ErrorCode.BAD_REQUEST, "since must be an object")
    result = await read_history(session.node.core, channel,
                                limit=get_int(params, "limit"), since=since,
                                reverse=get_bool(params, "reverse"))
    session.reply(command.id, "history", result)


async def read_history(core: Node, channel: str, *, limit: int,
                       since: Mapping[str, Any] | None, reverse: bool) -> dict[str, object]:
    """``HistoryResult`` (shared by the client command and the server API): no publications
    unless ``limit`` is set (-1: all), newest first with ``reverse``."""
    position = None
    if since is not None:
        epoch = get_str(since, "epoch")
        offset = get_int(since, "offset", minimum=0)
        position = StreamPosition(epoch, offset)
    if reverse or position is None:
        result = await core.history(channel, limit=None if limit != 0 else 0)
        pubs = list(result.publications)
        if position is not None:
            if position.epoch and position.epoch != result.top.epoch:
                raise CommandError(ErrorCode.UNRECOVERABLE_POSITION)
            pubs = [p for p in pubs if p.position.offset < position.offset]
        if reverse:
            pubs.reverse()
        elif limit > 0:
            pubs = pubs[-limit:]
    else:
        if not position.epoch:
            position = StreamPosition((await core.top(channel)).epoch, position.offset)
        result = await core.history(channel, since=position)
        if not result.recovered:
            raise CommandError(ErrorCode.UNRECOVERABLE_POSITION)
        pubs = list(result.publications)
    if limit > 0:
        pubs = pubs[:limit]
    elif limit == 0:
        pubs = []
    body: dict[str, object] = {"epoch": result.top.epoch, "offset": result.top.offset}
    if pubs:
        body["publications"] = [json.loads(protocol.publication(p)) for p in pubs]
    return body


# -- no backend ------------------------------------------------------------------------------


async def rpc(session: Session, command: Command) -> None:
    raise CommandError(ErrorCode.NOT_AVAILABLE, "rpc needs a proxy, which is not configured")


async def send(session: Session, command: Command) -> None:
    session.close(Disconnect.NOT_AVAILABLE)


async def ping(session: Session, command: Command) -> None:
    session.reply(command.id, "ping")


HANDLERS: dict[str, Callable[[Session, Command], Awaitable[None]]] = {
    "subscribe": subscribe, "unsubscribe": unsubscribe, "publish": publish,
    "presence": presence, "presence_stats": presence_stats, "history": history,
    "rpc": rpc, "send": send, "refresh": refresh, "sub_refresh": sub_refresh, "ping": ping,
}
