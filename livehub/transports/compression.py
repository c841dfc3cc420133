"""Compression budgets: how many bytes per second zlib may inflate and deflate for clients.

permessage-deflate lets a client make the server work far beyond what it sends: a 1 KB frame
inflates to 1 MB, and an echo of that megabyte is compressed again (~5 ms of CPU for 1 KB on
the wire).  Two token buckets bound that work, counted in uncompressed bytes:

* per connection, ``ServerSettings.ws_compress_rate`` bytes per second;
* for the whole process, ``ServerSettings.ws_compress_global_rate`` bytes per second.

Both refill continuously and hold one second of their rate.  A bucket may go into debt by one
message, so a single message of any allowed size always gets through; the next one waits for
the refill.  What happens over budget depends on the direction:

* inflating (client to server) cannot be skipped: the connection is failed with 3013
  (``Disconnect.TOO_MANY_REQUESTS``, reconnect with backoff) when its own bucket is in debt,
  and with 1013 (``CloseCode.TRY_AGAIN_LATER``) when the process-wide one is;
* deflating for one connection (``/echo``) is optional (RFC 7692 §6): over budget, or when a
  sample says the payload will not shrink, the message goes out uncompressed.

Broadcasts are compressed once per variant, not per connection (``transports.websocket``), and
are not charged here: what a client may publish is bounded by what it may inflate.
"""

from __future__ import annotations

from livehub.codes import CloseCode
from livehub.core.limits import TokenBucket
from livehub.errors import OverBudget


class CompressionBudget:
    """One connection's bucket and the process-wide one it shares with every connection."""

    __slots__ = ("_global", "_own", "rate")

    def __init__(self, rate: float, shared: TokenBucket, now: float) -> None:
        self.rate = rate
        self._own = TokenBucket(rate, rate, now=now)
        self._global = shared

    def may_deflate(self, now: float) -> bool:
        """Whether a message may be compressed for this connection alone right now."""
        return not self._own.in_debt(now) and not self._global.in_debt(now)

    def inflated(self, n: int, now: float) -> None:
        """Charge ``n`` inflated bytes; raise ``OverBudget`` if a bucket was in debt."""
        if self._own.in_debt(now):
            raise OverBudget(f"compression budget exceeded: more than {int(self.rate)} "
                             "bytes per second")
        if self._global.in_debt(now):
            raise OverBudget("server busy: compression budget exhausted, try again later",
                             close_code=CloseCode.TRY_AGAIN_LATER)
        self._own.spend(n)
        self._global.spend(n)

    def deflated(self, n: int) -> None:
        self._own.spend(n)
        self._global.spend(n)
