"""``livehub bench tls-h2``: SSE fan-out CPU and idle memory over HTTP/1.1, TLS and HTTP/2.

One ``livehub serve`` process per variant (plain for ``h1`` and ``h2c``, a certificate of a
throw-away CA for ``h1-tls`` and ``h2-tls``), SSE subscribers in this process:

- fan-out: ``subscribers`` SSE streams on one channel, ``publications`` publications of
  ``size`` bytes through the HTTP API; the server's CPU time (``/proc``) from the first publish
  until every subscriber has every message, divided by the deliveries;
- idle: ``idle`` SSE streams that stay open; the server's RSS growth divided by them.

HTTP/2 streams are spread ``streams_per_connection`` per connection (a browser puts a page's
streams on one).  The subscribers parse only what they must (they count ``data:`` lines), so the
figures are the server's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.events

from livehub.bench.procstat import cpu_seconds, raise_fd_limit, rss_kib

VARIANTS = ("h1", "h1-tls", "h2c", "h2-tls")
API_KEY = "bench-tls-h2"
MARK = b"data: "
LISTENING = re.compile(r"listening on https?://127\.0\.0\.1:(\d+)/")


@dataclass(frozen=True, slots=True)
class Figures:
    variant: str
    subscribers: int
    deliveries: int
    server_cpu_us_per_delivery: float
    idle: int
    idle_kib_per_stream: float
    streams_per_connection: int


class Counter:
    """Messages received by every subscriber together, and a wake-up when a target is met."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.done = asyncio.Event()

    def add(self, n: int) -> None:
        self.count += n
        if self.target and self.count >= self.target:
            self.done.set()


def count_marks(tail: bytes, data: bytes) -> tuple[int, bytes]:
    """``data: `` occurrences in ``data`` (one split across reads is counted once)."""
    joined = tail + data
    return joined.count(MARK) - tail.count(MARK), joined[-(len(MARK) - 1):]


class H1Subscriber(asyncio.Protocol):
    """One SSE stream over HTTP/1.1 (plain or TLS)."""

    def __init__(self, path: str, counter: Counter, opened: Counter) -> None:
        self.path = path
        self.counter = counter
        self.opened = opened
        self.tail = b""
        self.started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        if not self.started and b"retry:" in data:
            self.started = True
            self.opened.add(1)
        n, self.tail = count_marks(self.tail, data)
        if n:
            self.counter.add(n)


class H2Subscriber(asyncio.Protocol):
    """``streams`` SSE streams on one HTTP/2 connection (h2c or TLS)."""

    def __init__(self, path: str, streams: int, counter: Counter, opened: Counter) -> None:
        self.path = path
        self.streams = streams
        self.counter = counter
        self.opened = opened
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.tails: dict[int, bytes] = {}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn.initiate_connection()
        for _ in range(self.streams):
            sid = self.conn.get_next_available_stream_id()
            self.conn.send_headers(sid, [(":method", "GET"), (":path", self.path),
                                         (":scheme", "https"), (":authority", "127.0.0.1")],
                                   end_stream=True)
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                self.opened.add(1)
            elif isinstance(event, h2.events.DataReceived) and event.stream_id is not None:
                payload = event.data or b""
                n, self.tails[event.stream_id] = count_marks(
                    self.tails.get(event.stream_id, b""), payload)
                self.conn.acknowledge_received_data(event.flow_controlled_length or 0,
                                                    event.stream_id)
                if n:
                    self.counter.add(n)
        out = self.conn.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)


class Server:
    """``livehub serve`` in a child process (stopped by its PID)."""

    def __init__(self, workdir: Path, tls: tuple[Path, Path] | None) -> None:
        args = [sys.executable, "-m", "livehub", "serve", "--port", "0", "--no-clock",
                "--no-echo", "--api-key", API_KEY, "--max-connections-per-ip", "0",
                "--h2-max-streams", "1000"]
        if tls is not None:
            args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        self.log = workdir / f"serve-{time.monotonic_ns()}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEHUB_")}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            found = LISTENING.search(self.log.read_text(errors="replace"))
            if found:
                self.port = int(found.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()  # never leave a server behind
                raise RuntimeError(f"livehub did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _subscribe(variant: str, port: int, n: int, *, per_conn: int, path: str,
                     client_tls: ssl.SSLContext | None, counter: Counter
                     ) -> list[asyncio.Transport]:
    loop = asyncio.get_running_loop()
    opened = Counter()
    opened.target = n
    transports: list[asyncio.Transport] = []
    tls = client_tls if variant.endswith("-tls") else None
    host = "127.0.0.1" if tls is not None else None
    remaining = n
    while remaining > 0:
        if variant.startswith("h2"):
            streams = min(per_conn, remaining)
            transport, _ = await loop.create_connection(
                lambda s=streams: H2Subscriber(path, s, counter, opened),
                "127.0.0.1", port, ssl=tls, server_hostname=host)
        else:
            streams = 1
            transport, _ = await loop.create_connection(
                lambda: H1Subscriber(path, counter, opened), "127.0.0.1", port, ssl=tls,
                server_hostname=host)
        transports.append(transport)
        remaining -= streams
    await asyncio.wait_for(opened.done.wait(), 120)
    return transports


async def _publish(port: int, tls: ssl.SSLContext | None, count: int, size: int) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls, server_hostname="127.0.0.1" if tls else None)
    payload = "x" * size
    for i in range(count):
        body = json.dumps({"channel": "bench", "data": f"{i:08d}{payload}"[:size]}).encode()
        writer.write(b"POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: "
                     + API_KEY.encode() + b"\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        await reader.readexactly(length)
    writer.close()


async def measure(variant: str, args: argparse.Namespace, workdir: Path,
                  tls_files: tuple[Path, Path], client_tls: ssl.SSLContext) -> Figures:
    server = Server(workdir, tls_files if variant.endswith("-tls") else None)
    try:
        per_conn = args.streams_per_connection if variant.startswith("h2") else 1
        api_tls = client_tls if variant.endswith("-tls") else None
        # fan-out
        counter = Counter()
        subs = await _subscribe(variant, server.port, args.subscribers, per_conn=per_conn,
                                path="/events?channel=bench", client_tls=client_tls,
                                counter=counter)
        counter.target = args.subscribers * args.publications
        before = cpu_seconds(server.proc.pid)
        await _publish(server.port, api_tls, args.publications, args.size)
        await asyncio.wait_for(counter.done.wait(), 300)
        cpu = cpu_seconds(server.proc.pid) - before
        deliveries = counter.count
        for transport in subs:
            transport.close()
        # idle streams
        await asyncio.sleep(1.0)
        rss_before = rss_kib(server.proc.pid)
        idle = await _subscribe(variant, server.port, args.idle, per_conn=per_conn,
                                path="/events?channel=idle", client_tls=client_tls,
                                counter=Counter())
        await asyncio.sleep(1.0)
        rss_after = rss_kib(server.proc.pid)
        for transport in idle:
            transport.close()
        return Figures(variant, args.subscribers, deliveries,
                       round(cpu * 1e6 / max(deliveries, 1), 2), args.idle,
                       round((rss_after - rss_before) / args.idle, 2), per_conn)
    finally:
        server.stop()


def _certificate(workdir: Path) -> tuple[tuple[Path, Path], ssl.SSLContext]:
    """A throw-away CA and a certificate for 127.0.0.1, made with the ``openssl`` tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True,
                   capture_output=True)
    context = ssl.create_default_context(cafile=str(cert))
    return (cert, key), context


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--publications", type=int, default=200)
    parser.add_argument("--size", type=int, default=100, help="payload bytes")
    parser.add_argument("--idle", type=int, default=2000, help="idle SSE streams")
    parser.add_argument("--streams-per-connection", type=int, default=100,
                        help="HTTP/2 streams per connection (default 100)")
    parser.add_argument("--out", type=Path, default=None, help="result JSON file")


def run(args: argparse.Namespace) -> int:
    raise_fd_limit()
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        print(f"unknown variants: {sorted(unknown)}", file=sys.stderr)
        return 2
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="livehub-bench-tls-") as tmp:
        workdir = Path(tmp)
        tls_files, client_tls = _certificate(workdir)
        for variant in variants:
            figures = asyncio.run(measure(variant, args, workdir, tls_files, client_tls))
            results.append(figures)
            print(f"{variant:7} {figures.server_cpu_us_per_delivery:8.2f} us/delivery "
                  f"({figures.deliveries} deliveries)  "
                  f"{figures.idle_kib_per_stream:6.2f} KiB per idle stream "
                  f"({figures.streams_per_connection} per connection)", flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0
