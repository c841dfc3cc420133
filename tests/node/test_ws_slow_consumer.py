"""A slow ``ws`` client (it stops reading its socket) is disconnected with 3008 once its
outgoing buffer is full: it gets everything up to the close, in order, then the close code;
reconnecting with ``since=<last cursor>`` replays the rest from history.  Never a silent drop.

Publications arrive either one per turn of the server's loop (as HTTP publishes usually do) or
as a burst within one turn (many publishers' requests, or one client's messages, read in the
same turn).  The outgoing buffer must stay bounded (``max_buffer``) in both cases."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from livehub.core.limits import Limits
from livehub.protocols.plain.ws import ChannelConnection
from livehub.wire.payload import PayloadKind
from tests.conftest import LiveServer, ServerFactory
from tests.node.conftest import NodeFactory

pytestmark = pytest.mark.node

COUNT = 600
PAD = "p" * 32_000  # 600 x 32 KB = 19 MB: more than the kernel's socket buffers absorb (~4 MB)


def publish_all(server: LiveServer, channel: str, *, burst: bool) -> None:
    assert server.app is not None
    node = server.app.ctx.node

    async def run() -> None:
        for seq in range(COUNT):
            data = json.dumps({"seq": seq, "pad": PAD}).encode()
            await node.publish(channel, data, PayloadKind.JSON)
            if not burst:
                await asyncio.sleep(0)  # one publication per turn of the loop

    server.call(run(), timeout=30)


def wait_slow_close(server: LiveServer, timeout: float = 10) -> None:
    """Until the server has started closing its WebSocket (no event to await: poll)."""
    assert server.app is not None
    ctx = server.app.ctx

    def closing() -> bool:
        return any(isinstance(c, ChannelConnection) and c.closed for c in ctx.connections)

    deadline = time.monotonic() + timeout
    while not server.call_soon(closing):
        if time.monotonic() > deadline:
            pytest.fail(f"the slow consumer was not closed within {timeout}s")
        time.sleep(0.02)


@pytest.mark.parametrize("burst", [
    pytest.param(False, id="spread"),
    pytest.param(True, id="burst"),
])
def test_slow_ws_consumer_is_closed_with_3008_then_resumes(make_server: ServerFactory,
                                                          node: NodeFactory,
                                                          burst: bool) -> None:
    # the resume after the close replays ~15 MB: within a resume budget raised for it
    server = make_server(max_buffer=256 * 1024,
                         limits=Limits(resume_max_bytes=32 * 1024 * 1024))
    script = node("ws_slow.mjs", server.ws_url, "bench:slow")
    script.until_kind("ready")
    script.send({"op": "pause"})
    script.until_kind("paused")

    publish_all(server, "bench:slow", burst=burst)
    wait_slow_close(server)
    script.send({"op": "resume"})
    close = script.until_kind("close", timeout=15)
    assert (close["code"], close["reason"]) == (
        3008, "slow consumer: outgoing buffer full, resume from history"), close
    got = close["seqs"]
    assert got == list(range(len(got))), got[-3:]
    # kernel buffers (about 4 MB here) + max_buffer, not all 19 MB
    assert len(got) < COUNT // 2, f"{len(got)} of {COUNT} publications were queued"

    script.send({"op": "until", "seq": COUNT - 1})
    script.send({"op": "reconnect", "since": close["cursor"]})
    script.until_kind("ready")
    rest = script.until_kind("reached", timeout=15)["seqs"]
    assert got + rest == list(range(COUNT))
