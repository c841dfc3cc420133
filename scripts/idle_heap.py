"""Python heap per idle connection, by allocation site (tracemalloc), for one source tree.

    .venv/bin/python scripts/idle_heap.py TREE sse|ws|mercure [N]

Starts livehub in this process on 127.0.0.1 (memory broker, no connection budget per address),
opens N idle SSE streams, raw /ws WebSockets or Mercure subscribers (``?topic=idle``), and
prints the Python heap they hold per connection and the top allocation sites. C allocations
(uvloop, the kernel) are not seen: the load lab's `idle-*` cases measure RSS; this says where
the Python part goes.
"""

# ruff: noqa: PLC0415 - livehub is imported from the tree given on the command line
from __future__ import annotations

import asyncio
import gc
import socket
import sys
import tracemalloc

WS_HEAD = ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


async def main(kind: str, count: int) -> None:
    from livehub.app import App
    from livehub.core.channels import Namespaces
    from livehub.core.memory import MemoryBroker
    from livehub.transports.context import ServerSettings

    try:
        from livehub.core.node import Node
    except ImportError:  # a tree from before the Node façade (issue 8)
        from livehub.core.hub import Hub

        app = App.create(Hub(MemoryBroker(), Namespaces()),  # type: ignore[arg-type]
                         ServerSettings(port=0, clock=False))
    else:
        mercure = None
        if kind == "mercure":
            from livehub.protocols.mercure import MercureSettings

            mercure = MercureSettings(mercure=True, mercure_namespace="",
                                      mercure_journal="$mercure")
        app = App.create(Node(MemoryBroker(), Namespaces()),
                         ServerSettings(port=0, clock=False, max_connections_per_ip=0),
                         mercure=mercure)
    await app.start()
    loop = asyncio.get_running_loop()
    path, extra = {"sse": ("/events?channel=idle", ""), "ws": ("/ws?channel=idle", WS_HEAD),
                   "mercure": ("/.well-known/mercure?topic=idle", "")}[kind]
    socks: list[socket.socket] = []

    async def connect() -> None:
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", app.port))
        await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        socks.append(sock)

    for _ in range(50):  # warm up: the channel, the variant, the interned strings
        await connect()
    await asyncio.sleep(0.5)
    gc.collect()
    tracemalloc.start(8)
    before = tracemalloc.take_snapshot()
    for _ in range(count):
        await connect()
    await asyncio.sleep(1.0)
    gc.collect()
    stats = tracemalloc.take_snapshot().compare_to(before, "lineno")
    print(f"python heap per idle {kind} connection: "
          f"{sum(s.size_diff for s in stats) / count:.0f} B")
    for stat in stats[:12]:
        print(f"{stat.size_diff / count:8.1f} B  {stat.traceback[0]}")
    for sock in socks:
        sock.close()
    await app.stop(drain=0.1)


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    import uvloop

    uvloop.run(main(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2000))
