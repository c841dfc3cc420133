"""The server HTTP API, Centrifugo-compatible ("Server API walkthrough"): ``POST /api/<method>``
with a JSON body, and ``POST /api`` with ``{"method": ..., "params": ...}`` (the single-endpoint
form of earlier Centrifugo versions).

Authorised by ``X-API-Key`` (or ``Authorization: apikey <key>``, or ``?api_key=``); a missing or
wrong key is answered 401, a body that is not a JSON object 400, and a broker that cannot
serve now (Redis unreachable: error 108) 503 with the error body, so clients retry.  Every
other failure is a Centrifugo error in a 200 answer: ``{"error": {"code": 102, ...}}``.
Publications take the same path as every other (broker -> hubs); operations on connections
(subscribe, unsubscribe, disconnect, refresh) are control messages that every node applies
to its own sessions of the user; ``disconnect`` without ``client``/``session`` also closes the
user's connections of the other protocols (``ServerContext.disconnect_user``: SSE, ``/stream``,
raw ``/ws``).  ``publish`` answers ``offset``, ``epoch`` and the livehub
``cursor`` of the publication (usable as ``Last-Event-ID``/``since`` on the plain endpoints).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from livehub.codes import ErrorCode
from livehub.errors import BadRequest, CommandError, LivehubError, Unavailable
from livehub.protocols.api_input import check_api_key, parse_event, parse_payload
from livehub.protocols.centrifugo import control, protocol
from livehub.protocols.centrifugo.commands import read_history
from livehub.protocols.centrifugo.protocol import get_bool, get_int, get_str
from livehub.transports.context import ServerContext
from livehub.transports.http import Request, Response
from livehub.transports.routing import Exchange, Router
from livehub.wire.cursor import encode_cursor

if TYPE_CHECKING:
    from livehub.protocols.centrifugo.node import CentrifugoNode

Result = dict[str, object]
Method = Callable[["CentrifugoNode", Mapping[str, Any]], Awaitable[Result]]


async def _publish(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    channel = get_str(params, "channel", required=True)
    data, kind = parse_payload(dict(params))
    event = parse_event(dict(params))
    position = await node.core.publish(channel, data, kind, event=event)
    return {"offset": position.offset, "epoch": position.epoch,
            "cursor": encode_cursor({channel: position})}


async def _broadcast(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    """One publication to many channels: validated once (``Node.broadcast``); the answer has
    one response per channel, in order."""
    channels = params.get("channels")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise CommandError(ErrorCode.BAD_REQUEST, "channels must be a list of strings")
    most = node.core.limits.api_max_broadcast
    if len(channels) > most:
        node.core.limit_hits["api_max_broadcast"] += 1
        raise CommandError(ErrorCode.LIMIT_EXCEEDED,
                           f"at most {most} channels per broadcast, not {len(channels)}")
    data, kind = parse_payload(dict(params))
    event = parse_event(dict(params))
    results = await node.core.broadcast(channels, data, kind, event=event)
    responses: list[Result] = []
    for channel, result in zip(channels, results, strict=True):
        if isinstance(result, LivehubError):
            responses.append({"error": {"code": result.error_code, "message": result.message}})
        else:
            responses.append({"result": {"offset": result.offset, "epoch": result.epoch,
                                         "cursor": encode_cursor({channel: result})}})
    return {"responses": responses}


def _user_fields(params: Mapping[str, Any]) -> dict[str, object]:
    return {"user": get_str(params, "user", required=True),
            "client": get_str(params, "client") or None,
            "session": get_str(params, "session") or None}


async def _subscribe(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    channel = get_str(params, "channel", required=True)
    node.core.options(channel)
    since = params.get("recover_since")
    if since is not None:
        if not isinstance(since, dict):
            raise CommandError(ErrorCode.BAD_REQUEST, "recover_since must be an object")
        get_str(since, "epoch")
        get_int(since, "offset", minimum=0)
    await node.core.publish_control(control.encode(
        "subscribe", channel=channel, info=params.get("info"), data=params.get("data"),
        recover_since=since, **_user_fields(params)))
    return {}


async def _unsubscribe(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    channel = get_str(params, "channel", required=True)
    await node.core.publish_control(control.encode("unsubscribe", channel=channel,
                                                         **_user_fields(params)))
    return {}


async def _disconnect(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    fields = _user_fields(params)
    advice = params.get("disconnect") or {}
    if not isinstance(advice, dict):
        raise CommandError(ErrorCode.BAD_REQUEST, "disconnect must be an object")
    code = get_int(advice, "code")
    if code and not 3000 <= code <= 4999:
        raise CommandError(ErrorCode.BAD_REQUEST, "disconnect code must be in 3000..4999")
    whitelist = params.get("whitelist")
    if whitelist is None:
        whitelist = []
    if not isinstance(whitelist, list) or not all(isinstance(c, str) for c in whitelist):
        raise CommandError(ErrorCode.BAD_REQUEST, "whitelist must be a list of client ids")
    await node.core.publish_control(control.encode(
        "disconnect", code=code or None, reason=get_str(advice, "reason") or None,
        whitelist=whitelist or None, **fields))
    return {}


async def _refresh(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    await node.core.publish_control(control.encode(
        "refresh", expired=get_bool(params, "expired") or None,
        expire_at=get_int(params, "expire_at", minimum=0) or None, **_user_fields(params)))
    return {}


async def _presence(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    channel = get_str(params, "channel", required=True)
    if not node.core.options(channel).presence:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    entries = await node.core.presence_of(channel)
    return {"presence": {c: protocol.client_info_value(i) for c, i in entries.items()}}


async def _presence_stats(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    channel = get_str(params, "channel", required=True)
    if not node.core.options(channel).presence:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    stats = await node.core.presence_stats(channel)
    return {"num_clients": stats.num_clients, "num_users": stats.num_users}


async def _history(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    channel = get_str(params, "channel", required=True)
    options = node.core.options(channel)
    if options.history_size <= 0 or options.history_ttl <= 0:
        raise CommandError(ErrorCode.NOT_AVAILABLE)
    since = params.get("since")
    if since is not None and not isinstance(since, dict):
        raise CommandError(ErrorCode.BAD_REQUEST, "since must be an object")
    return await read_history(node.core, channel, limit=get_int(params, "limit"),
                              since=since, reverse=get_bool(params, "reverse"))


async def _history_remove(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    channel = get_str(params, "channel", required=True)
    await node.core.remove_history(channel)
    return {}


async def _channels(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    """Active channels of every node (every transport), optionally filtered by a glob; the
    other nodes are asked through a survey (``CentrifugoNode.channels``)."""
    counts = await node.channels(get_str(params, "pattern") or None)
    return {"channels": {name: {"num_clients": n} for name, n in sorted(counts.items())}}


async def _info(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    """This node and every node heard from through heartbeats (``CentrifugoNode.nodes``)."""
    return {"nodes": node.nodes()}


async def _batch(node: CentrifugoNode, params: Mapping[str, Any]) -> Result:
    commands = params.get("commands")
    if not isinstance(commands, list):
        raise CommandError(ErrorCode.BAD_REQUEST, "commands must be a list")
    most = node.core.limits.api_max_batch
    if len(commands) > most:
        node.core.limit_hits["api_max_batch"] += 1
        raise CommandError(ErrorCode.LIMIT_EXCEEDED,
                           f"at most {most} commands per batch, not {len(commands)}")
    calls: list[tuple[str, Method | None, Mapping[str, Any]]] = []
    for command in commands:
        if not isinstance(command, dict) or len(command) != 1:
            raise CommandError(ErrorCode.BAD_REQUEST, "each command has one method field")
        name, body = next(iter(command.items()))
        method = METHODS.get(name) if name != "batch" else None
        calls.append((name, method, body if isinstance(body, dict) else {}))

    async def one(name: str, method: Method | None, body: Mapping[str, Any]) -> Result:
        if method is None:
            return {"error": {"code": int(ErrorCode.METHOD_NOT_FOUND),
                              "message": "method not found"}}
        answer = await _call(method, node, body)
        return {name: answer["result"]} if "result" in answer else answer

    if get_bool(params, "parallel"):
        replies = list(await asyncio.gather(*(one(*call) for call in calls)))
    else:
        replies = [await one(*call) for call in calls]
    return {"replies": replies}


METHODS: dict[str, Method] = {
    "publish": _publish, "broadcast": _broadcast, "subscribe": _subscribe,
    "unsubscribe": _unsubscribe, "disconnect": _disconnect, "refresh": _refresh,
    "presence": _presence, "presence_stats": _presence_stats, "history": _history,
    "history_remove": _history_remove, "channels": _channels, "info": _info, "batch": _batch,
}


async def _call(method: Method, node: CentrifugoNode, params: Mapping[str, Any], *,
                raise_unavailable: bool = False) -> Result:
    """``{"result": ...}`` or ``{"error": ...}`` of one method call."""
    try:
        return {"result": await method(node, params)}
    except Unavailable as exc:
        if raise_unavailable:
            raise
        return {"error": {"code": exc.error_code, "message": exc.message}}
    except LivehubError as exc:
        return {"error": {"code": exc.error_code, "message": exc.message}}


async def call(node: CentrifugoNode, name: str, params: Mapping[str, Any]) -> Result:
    """One server API call by method name, as ``POST /api/<name>`` runs it (for callers with
    their own authorization, such as the admin dashboard): ``{"result": ...}`` or
    ``{"error": ...}``; ``Unavailable`` when the broker cannot serve now."""
    method = METHODS.get(name)
    if method is None:
        return {"error": {"code": int(ErrorCode.METHOD_NOT_FOUND), "message": "method not found"}}
    return await _call(method, node, params, raise_unavailable=True)


async def api_endpoint(node: CentrifugoNode, name: str | None, ctx: ServerContext,
                       request: Request, http: Exchange) -> Response:
    check_api_key(ctx, request)
    body = request.json(max_depth=ctx.node.limits.max_json_depth) if request.body.strip() else {}
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    if name is None:
        name = body.get("method")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise BadRequest("params must be a JSON object")
    else:
        params = body
    method = METHODS.get(name) if isinstance(name, str) else None
    if method is None:
        return Response.json({"error": {"code": int(ErrorCode.METHOD_NOT_FOUND),
                                        "message": "method not found"}})
    try:
        answer = await _call(method, node, params, raise_unavailable=True)
    except Unavailable as exc:
        # the broker cannot serve now: a retryable transport-level failure, not a refusal
        return Response.json({"error": {"code": exc.error_code, "message": exc.message}}, 503)
    if name == "batch" and "result" in answer:
        return Response.json(answer["result"])  # batch answers {"replies": [...]}
    return Response.json(answer)


def install_api(app: Router, node: CentrifugoNode) -> None:
    post = frozenset({"POST"})
    # the key is checked from the head too, so a client sending Expect: 100-continue gets its
    # 401 before it sends the body
    app.route("/api", post, partial(api_endpoint, node, None), precheck=check_api_key)
    for name in METHODS:
        app.route(f"/api/{name}", post, partial(api_endpoint, node, name),
                  precheck=check_api_key)
