"""What the transports count and log: connection ends, HTTP answers, refusals.

Counting costs the hot path nothing beyond plain ``int`` additions: a connection counts the
messages and bytes it writes once per flush (``Outgoing``), and folds them into the totals of
its (protocol, transport) here when it ends; metrics (``livehub.ops.metrics``) read these
totals, plus the live connections' own counters, at scrape time.

The log lines (logger ``livehub.access``, INFO): one per connection end (transport, protocol,
channels, user, peer, duration, messages, bytes, close code and reason) and one per HTTP answer
(method, path, status, duration, client; refusals with their reason).  Each record carries its
fields in ``record.fields`` for the JSON formatter (``livehub.ops.logs``).  Never logged: query
strings (``?token=``, ``?api_key=``), headers (``Authorization``, cookies), bodies.  Successful
requests and connection ends are sampled by ``access_log_sample``; refusals are always logged,
rate-limited per status (``RateLimitedLog``), so a client cannot flood the log.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from livehub.ratelog import RateLimitedLog
from livehub.transports.messages import Request, Response

if TYPE_CHECKING:
    from livehub.transports.outgoing import Outgoing

Answered = Callable[[Request | None, Response, str, float | None], None]
"""Told of an answer (``TransportStats.answered``): the request (None if refused before its
head), the response, the client address and when the handler started (``time.monotonic``)."""

access = logging.getLogger("livehub.access")
refusals = RateLimitedLog(access)
"""Refused requests and connections ended for what the peer sent: always logged, at most 10
lines per 10 s per status or code (then a count of the suppressed ones)."""
PEER_FAULTS = frozenset({1002, 1003, 1007, 1008, 1009, 1010})
"""WebSocket close codes that blame the peer (RFC 6455 §7.4.1); so do 3500-3999."""

MAX_CHANNELS_LOGGED = 16
CONNECTION_LINE = ("connection %s/%s ended: %s %s; channels=%s%s user=%s peer=%s "
                   "duration=%.3fs messages=%d bytes=%d")
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})
"""Probes and scrapes: their successful answers are counted, not logged."""


@dataclass(slots=True)
class Totals:
    """Connections of one (protocol, transport) that ended, and what they wrote."""

    connections: int = 0
    messages: int = 0
    bytes: int = 0


@dataclass(eq=False, slots=True)
class TransportStats:
    """Counters of the transports (read at scrape time) and the access log."""

    access_log: bool = True
    sample: float = 1.0
    """Fraction of successful requests and connection ends logged (refusals: all)."""
    ended_totals: dict[tuple[str, str], Totals] = field(default_factory=dict)
    ends: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    """Connection ends by (protocol, transport, close or disconnect code; 0: no goodbye)."""
    answers: Counter[int] = field(default_factory=Counter)
    """HTTP answers by status (taken-over requests are counted as connections instead)."""
    auth_refused: Counter[str] = field(default_factory=Counter)
    """Credentials refused, by reason (``api_key_missing``, ``token_invalid``...)."""

    def _sampled(self) -> bool:
        return self.access_log and (self.sample >= 1.0 or random.random() < self.sample)

    def ended(self, conn: Outgoing, opened: float) -> None:
        """``conn`` ended (called once, when it leaves ``ServerContext.connections``)."""
        key = (conn.protocol, conn.transport_name)
        totals = self.ended_totals.get(key)
        if totals is None:
            totals = self.ended_totals[key] = Totals()
        totals.connections += 1
        totals.messages += conn.sent_messages
        totals.bytes += conn.sent_bytes
        info = conn.ended
        code = 0 if info is None else info.code
        self.ends[(*key, code)] += 1
        refused = code in PEER_FAULTS or 3500 <= code < 4000
        if not self.access_log or not access.isEnabledFor(logging.INFO) or (
                not refused and not self._sampled()):
            return
        channels = conn.channels()
        shown = list(channels[:MAX_CHANNELS_LOGGED])
        fields: dict[str, object] = {
            "event": "connection", "protocol": key[0], "transport": key[1],
            "channels": shown, "user": conn.user(), "peer": conn.peer(),
            "duration": round(time.monotonic() - opened, 3), "messages": conn.sent_messages,
            "bytes": conn.sent_bytes, "code": code,
            "reason": "connection lost" if info is None else info.reason}
        more = f" (+{len(channels) - len(shown)})" if len(channels) > len(shown) else ""
        args = (key[0], key[1], code, fields["reason"], ",".join(shown), more,
                fields["user"] or "-", fields["peer"], fields["duration"], conn.sent_messages,
                conn.sent_bytes)
        if refused:
            refusals.log(logging.INFO, f"end-{code}", CONNECTION_LINE, *args,
                         extra={"fields": fields})
        else:
            access.info(CONNECTION_LINE, *args, extra={"fields": fields})

    def answered(self, request: Request | None, response: Response, client: str,
                 started: float | None) -> None:
        """An HTTP answer was sent (``request`` None: refused before its head was complete)."""
        status = response.status
        self.answers[status] += 1
        if not self.access_log:
            return
        refused = status >= 400
        if not refused and (not self._sampled()
                            or (request is not None and request.path in QUIET_PATHS)):
            return
        method = request.method if request is not None else "-"
        path = request.path if request is not None else "-"  # never the query string
        duration = 0.0 if started is None else round(time.monotonic() - started, 4)
        fields: dict[str, object] = {
            "event": "request", "method": method, "path": path, "status": status,
            "duration": duration, "client": client, "bytes": len(response.body)}
        if not refused:
            access.info("%s %s %d %.4fs client=%s bytes=%d", method, path, status, duration,
                        client, len(response.body), extra={"fields": fields})
            return
        fields["reason"] = reason = refusal_reason(response)
        refusals.log(logging.INFO, f"refused-{status}", "%s %s refused %d: %s client=%s",
                     method, path, status, reason, client, extra={"fields": fields})


def refusal_reason(response: Response) -> str:
    """The message of a refusal's JSON error body (``{"error": {"message": ...}}``)."""
    try:
        body = json.loads(response.body)
        message = body["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.body[:200].decode("utf-8", "replace")
    return str(message)
