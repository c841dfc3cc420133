"""Counters shared by the clients of one run, and the percentiles computed from them."""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Sequence

_NEVER = 1 << 62


def percentiles(samples: Sequence[int] | array[int], scale: float = 1.0) -> dict[str, float]:
    """p50/p90/p99/p999/max (and count) of integer samples, multiplied by ``scale``."""
    if not samples:
        return {"count": 0}
    ordered = sorted(samples)
    n = len(ordered)

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] * scale

    return {
        "count": n,
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "p999": at(0.999),
        "max": ordered[-1] * scale,
        "min": ordered[0] * scale,
    }


class RunStats:
    """Mutable counters one generator run shares between its clients (one event loop).

    Hot-path updates are plain attribute increments. ``wake_at`` lets a waiting publisher be
    woken once ``probe_delivered`` (what the probe subscribers received) reaches a threshold,
    with one comparison per probe read. With ``pause_reads``, counting subscribers stop
    reading after each read and park their transport in ``paused`` until the next tick of
    ``resume_paused``: the kernel keeps the bytes, the next read takes several messages at
    once, and the generator pays one wake-up for them (the server's work is unchanged: its
    writes land in socket buffers that are far from full).
    """

    __slots__ = (
        "bytes_in",
        "delivered",
        "disconnected",
        "duplicated",
        "errors",
        "latencies_us",
        "lost",
        "pause_reads",
        "paused",
        "probe_delivered",
        "waiter",
        "wake_at",
    )

    def __init__(self) -> None:
        self.delivered = 0
        self.probe_delivered = 0
        self.pause_reads = False
        self.paused: list[asyncio.Transport] = []
        self.bytes_in = 0
        self.latencies_us: array[int] = array("q")
        self.lost = 0
        self.duplicated = 0
        self.disconnected = 0
        self.errors: dict[str, int] = {}
        self.wake_at = _NEVER
        self.waiter: asyncio.Future[None] | None = None

    def resume_paused(self) -> None:
        """Resume reading on every parked transport."""
        paused, self.paused = self.paused, []
        for transport in paused:
            if not transport.is_closing():
                transport.resume_reading()

    def wake(self) -> None:
        """Resolve the publisher's waiter (called when ``probe_delivered >= wake_at``)."""
        self.wake_at = _NEVER
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_probes(self, threshold: int, timeout: float) -> bool:
        """Wait until ``probe_delivered >= threshold``; False on timeout."""
        if self.probe_delivered >= threshold:
            return True
        self.waiter = asyncio.get_running_loop().create_future()
        self.wake_at = threshold
        try:
            await asyncio.wait_for(self.waiter, timeout)
        except TimeoutError:
            self.wake_at = _NEVER
            return False
        return True

    def error(self, kind: str) -> None:
        """Count one error of ``kind`` (connect refused, bad status, ...)."""
        self.errors[kind] = self.errors.get(kind, 0) + 1
