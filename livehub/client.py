"""``livehub.Client`` and ``livehub.AsyncClient``: publish to a hub running elsewhere.

They speak the server HTTP API (``POST /api/<method>``, Centrifugo-compatible; see
``docs/api.md``) with the API key, using only the standard library (``http.client``), so a
Django view, a Celery task or a script publishes in one line with nothing more installed.
Connections are kept alive and reused.  ``AsyncClient`` runs the same calls in a worker thread
(``asyncio.to_thread``), so the event loop never blocks on the network.

Retries: a ``503`` answer (the hub's broker cannot serve now) and a connection that cannot be
made are retried with exponential backoff (``backoff``, doubled up to ``max_backoff``; a
``Retry-After`` header is honoured) until ``retries`` attempts are spent, then ``Unavailable``
is raised.  A request whose connection broke after it was sent is not retried (a publication
must not be stored twice): ``Unavailable`` at once.  Other refusals raise the matching
``livehub.errors`` class (401 ``Unauthorized``, 403 ``Forbidden``, an API error code
``CommandError`` with its ``error_code``).  ``on_retry`` is told why each retry happens.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import queue
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from livehub.errors import (
    BadRequest,
    CommandError,
    Forbidden,
    LivehubError,
    Unauthorized,
    Unavailable,
)
from livehub.results import History, Member, Message, Published

__all__ = ["AsyncClient", "Client"]

RETRY_STATUSES = frozenset({502, 503, 504})
"""Answers that say "not now" (a proxy in front of the hub says 502/504 while it restarts)."""


def _payload(data: object) -> dict[str, object]:
    if isinstance(data, bytes | bytearray | memoryview):
        return {"b64data": base64.b64encode(bytes(data)).decode()}
    return {"data": data}


class Client:
    """A synchronous client of a remote hub's server API (thread-safe).

    ``url`` is the hub's base URL (``http://livehub:8000``, or the prefix it is mounted at,
    ``https://example.com/live``); ``api_key`` its ``api_key`` setting."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 5.0,
                 retries: int = 5, backoff: float = 0.1, max_backoff: float = 2.0,
                 on_retry: Callable[[str], None] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http:// or https:// with a host, not {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self._retries = max(1, retries)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._on_retry = on_retry
        """Told why each retry happens (for logs and metrics)."""
        self._idle: queue.SimpleQueue[http.client.HTTPConnection] = queue.SimpleQueue()

    # -- the API ---------------------------------------------------------------------------

    def publish(self, channel: str, data: object, *, event: str | None = None) -> Published:
        """Publish ``data`` (``bytes`` binary, ``str`` text, anything else JSON) to
        ``channel``; where it was stored."""
        params: dict[str, object] = {"channel": channel, **_payload(data)}
        if event is not None:
            params["event"] = event
        result = self.call("publish", params)
        return Published(channel, int(result.get("offset", 0)), str(result.get("epoch", "")),
                         str(result.get("cursor", "")))

    def broadcast(self, channels: Sequence[str], data: object, *, event: str | None = None
                  ) -> list[Published | LivehubError]:
        """Publish ``data`` to each of ``channels``: per channel, where it was stored or why
        not (a ``CommandError``)."""
        params: dict[str, object] = {"channels": list(channels), **_payload(data)}
        if event is not None:
            params["event"] = event
        result = self.call("broadcast", params)
        out: list[Published | LivehubError] = []
        for channel, reply in zip(channels, result.get("responses", []), strict=False):
            if "error" in reply:
                out.append(_error(reply["error"]))
            else:
                r = reply.get("result", {})
                out.append(Published(channel, int(r.get("offset", 0)), str(r.get("epoch", "")),
                                     str(r.get("cursor", ""))))
        return out

    def history(self, channel: str, *, limit: int | None = None,
                since: Published | None = None) -> History:
        """The retained publications of ``channel``, oldest first: the newest ``limit`` ones
        (all by default), or those after ``since``."""
        params: dict[str, object] = {"channel": channel,
                                     "limit": -1 if limit is None else limit}
        if since is not None:
            params["since"] = {"offset": since.offset, "epoch": since.epoch}
        result = self.call("history", params)
        messages = [_message(channel, p) for p in result.get("publications", [])]
        offset, epoch = int(result.get("offset", 0)), str(result.get("epoch", ""))
        return History(channel, messages, offset, epoch, _cursor(channel, offset, epoch))

    def presence(self, channel: str) -> dict[str, Member]:
        """Who is subscribed to ``channel`` (a namespace with presence), by client id."""
        result = self.call("presence", {"channel": channel})
        return {client: Member(str(v.get("client", client)), str(v.get("user", "")),
                               v.get("conn_info"))
                for client, v in result.get("presence", {}).items()}

    def call(self, method: str, params: Mapping[str, object]) -> dict[str, Any]:
        """Any server API method (``docs/api.md``); its ``result``, or raises."""
        body = json.dumps(params, separators=(",", ":"), allow_nan=False).encode()
        answer = self._request(f"{self._base}/api/{method}", body)
        if "error" in answer:
            raise _error(answer["error"])
        result = answer.get("result", {})
        return result if isinstance(result, dict) else {}

    # -- transport ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the kept-alive connections."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> http.client.HTTPConnection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            return kind(self._host, self._port, timeout=self._timeout)

    def _request(self, path: str, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["X-API-Key"] = self._api_key
        delay = self._backoff
        for attempt in range(self._retries):
            last = attempt == self._retries - 1
            conn = self._connection()
            sent = False
            try:
                if conn.sock is None:
                    conn.connect()
                sent = True
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                fresh = not sent or isinstance(exc, ConnectionRefusedError | socket.gaierror)
                reused = sent and isinstance(exc, http.client.RemoteDisconnected | BrokenPipeError
                                             | ConnectionResetError)
                if last or not (fresh or reused):
                    raise Unavailable(f"livehub at {self._host}:{self._port} cannot be "
                                      f"reached: {exc}") from exc
                # a kept-alive connection the hub had closed, or no connection at all:
                # nothing was stored, so trying again is safe
                if not reused:
                    self._retrying(f"cannot connect: {exc}")
                    time.sleep(delay)
                    delay = min(delay * 2, self._max_backoff)
                continue
            if response.will_close:
                conn.close()
            else:
                self._idle.put(conn)
            if response.status in RETRY_STATUSES and not last:
                self._retrying(f"answered {response.status}")
                time.sleep(_retry_after(response.getheader("retry-after"), delay))
                delay = min(delay * 2, self._max_backoff)
                continue
            return _answer(response.status, data)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _retrying(self, why: str) -> None:
        if self._on_retry is not None:
            self._on_retry(why)


class AsyncClient:
    """The ``Client`` for asyncio code: the same methods, awaited (each call runs in a worker
    thread, so the loop is never blocked)."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 5.0,
                 retries: int = 5, backoff: float = 0.1, max_backoff: float = 2.0,
                 on_retry: Callable[[str], None] | None = None) -> None:
        self.sync = Client(url, api_key, timeout=timeout, retries=retries, backoff=backoff,
                           max_backoff=max_backoff, on_retry=on_retry)

    async def publish(self, channel: str, data: object, *, event: str | None = None
                      ) -> Published:
        return await asyncio.to_thread(self.sync.publish, channel, data, event=event)

    async def broadcast(self, channels: Sequence[str], data: object, *,
                        event: str | None = None) -> list[Published | LivehubError]:
        return await asyncio.to_thread(self.sync.broadcast, channels, data, event=event)

    async def history(self, channel: str, *, limit: int | None = None,
                      since: Published | None = None) -> History:
        return await asyncio.to_thread(self.sync.history, channel, limit=limit, since=since)

    async def presence(self, channel: str) -> dict[str, Member]:
        return await asyncio.to_thread(self.sync.presence, channel)

    async def call(self, method: str, params: Mapping[str, object]) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.call, method, params)

    async def close(self) -> None:
        self.sync.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _retry_after(header: str | None, default: float) -> float:
    if header is not None:
        try:
            return min(max(float(header), 0.0), 30.0)
        except ValueError:
            pass
    return default


def _answer(status: int, data: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(data) if data else {}
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise LivehubError(f"livehub answered {status} with a body that is not a JSON object",
                           http_status=status)
    error = answer.get("error") if status != 200 else None
    message = str(error.get("message", "")) if isinstance(error, dict) else f"HTTP {status}"
    if status == 200:
        return answer
    if status == 401:
        raise Unauthorized(message)
    if status == 403:
        raise Forbidden(message)
    if status in RETRY_STATUSES:
        raise Unavailable(message)
    if status == 400:
        raise BadRequest(message)
    raise LivehubError(message, http_status=status)


def _error(error: object) -> LivehubError:
    if not isinstance(error, dict):
        return LivehubError("malformed error answer")
    code = int(error.get("code", 100))
    message = str(error.get("message", "")) or None
    if code == Unavailable.error_code:
        return Unavailable(message or "not available")
    return CommandError(code, message)


def _message(channel: str, pub: Mapping[str, Any]) -> Message:
    tags = pub.get("tags")
    event = tags.get("event") if isinstance(tags, dict) else None
    return Message(channel, pub.get("data"), int(pub.get("offset", 0)),
                   event if isinstance(event, str) else None)


def _cursor(channel: str, offset: int, epoch: str) -> str:
    from livehub.wire.cursor import StreamPosition, encode_cursor  # noqa: PLC0415 - keeps
    # ``import livehub.client`` light

    return encode_cursor({channel: StreamPosition(epoch, offset)})
