"""The ``livehub bench`` command line: run, compare, report, install, servers."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import livehub
from livehub.bench import tlsh2
from livehub.bench.peers import install
from livehub.bench.report import markdown, render
from livehub.bench.runner import Case, Options, figure, run_cases, write_result
from livehub.bench.scenarios import SCENARIOS, Params
from livehub.bench.servers import SERVERS, TRANSPORTS, snapshot_livehub

WS_PEERS = ["livehub-asgi", "node-ws", "websockets", "picows", "aiohttp"]
ECHO_PEERS = ["livehub-asgi", "node-ws-echo", "websockets", "picows", "aiohttp"]
SSE_PEERS = ["livehub-asgi", "express-sse-fanout", "sse-starlette"]
IDLE_SSE_PEERS = ["livehub-asgi", "express-sse-fanout", "express-sse", "sse-starlette"]
ROOM_PEERS = ["node-ws-rooms", "picows-rooms"]


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


WINDOWS_MS = (0.0, 2.0, 5.0, 20.0)
"""livehub's batching windows in the ``window-*`` compare cases (issue 15)."""


def window_label(ms: float) -> str:
    return f"livehub w={ms:g}ms"


def _default_root() -> Path:
    return Path(livehub.__file__).resolve().parent.parent


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("LIVEHUB_BENCH_CACHE", ".bench-cache")),
                        help="folder the peers are installed into (default .bench-cache)")
    parser.add_argument("--livehub-root", type=Path, default=None,
                        help="source tree whose livehub is started (default: this one)")
    parser.add_argument("--livehub-ref", default=None,
                        help="run this git commit of --livehub-root, exported into the cache")
    parser.add_argument("--livehub-python", default=sys.executable,
                        help="interpreter that runs `-m livehub serve`")
    parser.add_argument("--peer-python", default=None,
                        help="interpreter for the Python peers (default: the cache's venv)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the median is kept")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the server to CPU 0 and the generator to the others")
    parser.add_argument("--no-install", action="store_true",
                        help="do not install missing peers (fail instead)")
    parser.add_argument("--out", type=Path, default=None, help="result JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--profile", action="store_true",
                        help="sample Python servers with py-spy into bench-results/profiles")


def _options(args: argparse.Namespace) -> Options:
    root = args.livehub_root or _default_root()
    if args.livehub_ref:
        root = snapshot_livehub(root, args.livehub_ref, args.cache.resolve())
    return Options(
        cache=args.cache.resolve(), livehub_root=root.resolve(),
        livehub_python=args.livehub_python, peer_python=args.peer_python,
        pin=not args.no_pin, repeat=max(1, args.repeat),
        attach_port=getattr(args, "attach", None), attach_pid=getattr(args, "attach_pid", None),
        quiet=args.quiet, install_peers=not args.no_install, profile=args.profile,
        logs=Path("bench-results") / "logs",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livehub bench",
        description="Load lab: drive livehub and peer servers on 127.0.0.1, bounded in time.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run scenarios against one server (livehub by default)")
    run.add_argument("--server", default="livehub", choices=sorted(SERVERS))
    run.add_argument("--scenario", default="fanout", choices=SCENARIOS)
    run.add_argument("--transport", default="ws",
                     help=f"comma-separated, from {', '.join(TRANSPORTS)}")
    run.add_argument("--subscribers", type=_ints, default=[1000], help="comma-separated N")
    run.add_argument("--rate", type=float, default=0.0,
                     help="publications/s; 0 = as fast as the server holds (default)")
    run.add_argument("--size", type=int, default=100, help="payload bytes (default 100)")
    run.add_argument("--duration", type=float, default=10.0, help="seconds of load per case")
    run.add_argument("--window", type=int, default=32,
                     help="publications in flight when rate is 0 (default 32)")
    run.add_argument("--probes", type=int, default=100,
                     help="subscribers that parse every message for latency and sequence")
    run.add_argument("--http-pipeline", type=int, default=16,
                     help="POSTs in flight for the HTTP publisher (default 16; 1: none)")
    run.add_argument("--read-pause-ms", type=float, default=0.0,
                     help="counting subscribers read at most once per this many ms (0: off)")
    run.add_argument("--cluster", type=int, default=1, metavar="K",
                     help="fanout over K livehub nodes sharing one Redis (a redis-server the "
                     "lab starts); subscribers split evenly, publisher on the first node; "
                     "implies --no-pin (default 1: one node, memory broker)")
    run.add_argument("--channels", type=_ints, default=[1000],
                     help="rooms of the rooms scenario, comma-separated (--subscribers is then "
                     "per room)")
    run.add_argument("--deflate", action="store_true",
                     help="WebSocket subscribers offer permessage-deflate (RFC 7692)")
    run.add_argument("--write-delay-ms", type=_floats, default=[0.0],
                     help="livehub's batching window(s) in ms, comma-separated: one case each "
                     "(serve --write-delay; default 0: off)")
    run.add_argument("--workers", type=_ints, default=[0], metavar="N",
                     help="livehub serve --workers N (SO_REUSEPORT) over a redis-server the lab "
                     "starts, comma-separated (1: one process over Redis); implies --no-pin "
                     "(default 0: one process, memory broker)")
    run.add_argument("--connections", type=_ints, default=[100],
                     help="echo clients or idle connections, comma-separated")
    run.add_argument("--message-size", type=int, default=32, help="echo message bytes")
    run.add_argument("--churn-rate", type=float, default=100.0, help="churn connections/s")
    run.add_argument("--churn-hold-ms", type=float, default=200.0,
                     help="mean life of a churning connection")
    run.add_argument("--concurrency", type=int, default=None,
                     help="connects in flight (default 200; 50 with --cluster, see "
                     "docs/benchmarks.md)")
    run.add_argument("--attach", type=int, default=None, metavar="PORT",
                     help="drive an already running server on this port instead of starting one")
    run.add_argument("--attach-pid", type=int, default=None,
                     help="PID of the attached server, for its CPU and RSS")
    _common(run)

    cmp_ = sub.add_parser("compare", help="livehub against the peers, same generator, same run")
    cmp_.add_argument("--only", default="",
                      help="comma-separated case names (default: all but window-* and rooms-*): "
                      + ", ".join(COMPARE_CASES))
    cmp_.add_argument("--servers", default="",
                      help="comma-separated subset of servers (default livehub and all peers)")
    cmp_.add_argument("--duration", type=float, default=8.0, help="seconds of load per case")
    cmp_.add_argument("--idle-connections", type=int, default=10_000)
    cmp_.add_argument("--no-livehub", action="store_true", help="peers only")
    _common(cmp_)

    rep = sub.add_parser("report", help="result JSON files -> one self-contained HTML page")
    rep.add_argument("files", nargs="+", type=Path)
    rep.add_argument("-o", "--output", type=Path, default=Path("bench-results/report.html"))
    rep.add_argument("--markdown", action="store_true",
                     help="also print the tables as Markdown (for docs/benchmarks.md)")

    inst = sub.add_parser("install", help="install the peer servers into the cache folder")
    inst.add_argument("--cache", type=Path,
                      default=Path(os.environ.get("LIVEHUB_BENCH_CACHE", ".bench-cache")))

    sub.add_parser("servers", help="list the servers the lab can start")

    tls_h2 = sub.add_parser("tls-h2", help="SSE fan-out CPU and idle memory over HTTP/1.1, "
                            "TLS and HTTP/2 (livehub only)")
    tlsh2.build_parser(tls_h2)
    return parser


COMPARE_CASES: dict[str, tuple[Params, list[str]]] = {}


def _opt_in(name: str) -> bool:
    """Cases ``compare`` runs only when ``--only`` names them: the issue 15 ones (``window-*``,
    ``rooms-*``: 20 more servers to start, 15,000 connections each for the rooms; the commands
    are in docs/benchmarks.md), so the headline run keeps its length."""
    return name.startswith(("window-", "rooms-"))


def _compare_cases(duration: float, idle_n: int) -> dict[str, tuple[Params, list[str]]]:
    return {
        "fanout-ws-1000": (Params("fanout", "ws", subscribers=1000, duration=duration), WS_PEERS),
        "fanout-ws-5000": (Params("fanout", "ws", subscribers=5000, duration=duration), WS_PEERS),
        "fanout-sse-1000": (Params("fanout", "sse", subscribers=1000, duration=duration,
                                   http_pipeline=16), SSE_PEERS),
        "latency-ws-5000": (Params("fanout", "ws", subscribers=5000, rate=2.0,
                                   duration=max(duration, 10.0), probes=500), WS_PEERS),
        "window-ws-1000": (Params("fanout", "ws", subscribers=1000, rate=100.0,
                                  duration=duration), ["picows", "node-ws"]),
        "window-sse-1000": (Params("fanout", "sse", subscribers=1000, rate=100.0,
                                   duration=duration, http_pipeline=16),
                            ["express-sse-fanout"]),
        "window-max-ws-1000": (Params("fanout", "ws", subscribers=1000, window=8,
                                      duration=duration), ["picows", "node-ws"]),
        **_rooms_cases(duration),
        "echo-100": (Params("echo", connections=100, duration=duration), ECHO_PEERS),
        "idle-ws": (Params("idle", "ws", connections=idle_n), WS_PEERS),
        "idle-sse": (Params("idle", "sse", connections=idle_n), IDLE_SSE_PEERS),
        # Socket.IO's own protocol: compare with the ws cases of the same size
        "fanout-socketio-1000": (Params("fanout", "socketio", subscribers=1000,
                                        duration=duration), ["python-socketio"]),
        "idle-socketio": (Params("idle", "socketio", connections=idle_n), ["python-socketio"]),
    }


def _rooms_cases(duration: float) -> dict[str, tuple[Params, list[str]]]:
    """Many channels (issue 15 item 3): two shapes at max and fixed rates, then message sizes
    with and without permessage-deflate (picows has no permessage-deflate: not in those)."""
    cases: dict[str, tuple[Params, list[str]]] = {}
    for rooms, per_room, rate in ((1500, 10, 1000.0), (150, 100, 100.0)):
        shape = Params("rooms", "ws", channels=rooms, subscribers=per_room, window=64,
                       duration=duration)
        cases[f"rooms-ws-{rooms}x{per_room}"] = (shape, ROOM_PEERS)
        cases[f"rooms-ws-{rooms}x{per_room}-{rate:g}ps"] = (
            dataclasses.replace(shape, rate=rate), ROOM_PEERS)
    for size in (100, 4096, 65536):
        for deflate in (False, True):
            name = f"rooms-ws-100x20-200ps-{size}B" + ("-deflate" if deflate else "")
            cases[name] = (Params("rooms", "ws", channels=100, subscribers=20, rate=200.0,
                                  size=size, deflate=deflate, duration=duration),
                           ["node-ws-rooms"] if deflate else ROOM_PEERS)
    return cases


COMPARE_CASES.update(_compare_cases(8.0, 10_000))


def _concurrency(args: argparse.Namespace) -> int:
    if args.concurrency is not None:
        return max(1, int(args.concurrency))
    # Over Redis each subscribe reads the channel's history through the node's Redis pool
    # (redis-py's default: 100 connections), and a burst beyond it fails with close 1013.
    return 50 if args.cluster > 1 or max(args.workers) > 0 else 200


def _cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    cases: list[Case] = []
    transports = [t for t in args.transport.split(",") if t]
    for transport in transports:
        if transport not in TRANSPORTS:
            print(f"unknown transport {transport!r}", file=sys.stderr)
            return 2
        sizes = (args.subscribers if args.scenario in ("fanout", "churn", "rooms")
                 else args.connections)
        rooms = args.channels if args.scenario == "rooms" else [1]
        for c, n, ms, w in [(c, n, ms, w) for c in rooms for n in sizes
                            for ms in args.write_delay_ms for w in args.workers]:
            p = Params(
                args.scenario, transport, subscribers=n, rate=args.rate, size=args.size,
                duration=args.duration, window=args.window, probes=args.probes, connections=n,
                message_size=args.message_size, churn_rate=args.churn_rate,
                churn_hold_ms=args.churn_hold_ms, concurrency=_concurrency(args),
                read_pause_ms=args.read_pause_ms, http_pipeline=args.http_pipeline,
                cluster=max(1, args.cluster), write_delay=ms / 1000, channels=c,
                workers=max(0, w),
                deflate=args.deflate,
            )
            if not SERVERS[args.server].supports(args.scenario, transport):
                print(f"{args.server} has no {args.scenario} over {transport}", file=sys.stderr)
                return 2
            group = f"{args.scenario}-{transport}-{n}"
            if args.scenario == "rooms":
                group = f"rooms-{transport}-{c}x{n}-{args.size}B" + (
                    "-deflate" if args.deflate else "")
            if p.cluster > 1:
                if args.scenario != "fanout" or args.server != "livehub" or args.attach:
                    print("--cluster is for the livehub fanout scenario", file=sys.stderr)
                    return 2
                group += f"-cluster{p.cluster}"
            if p.workers > 0:
                if args.server != "livehub" or args.attach or p.cluster > 1:
                    print("--workers is for one livehub server", file=sys.stderr)
                    return 2
                group += f"-workers{p.workers}"
            label = window_label(ms) if ms and args.server == "livehub" else ""
            cases.append(Case(args.server, p, group, label))
        if args.scenario == "echo":
            break
    opts = _options(args)
    if args.cluster > 1 or max(args.workers) > 0:
        opts.pin = False  # 2 nodes, Redis and the generator share the cores: no placement
    doc = run_cases("run", argv, cases, opts)
    path = write_result(doc, args.out, "run")
    print_table(doc)
    print(f"result: {path}")
    return 0 if all("error" not in c for c in doc["cases"]) else 1


def _cmd_compare(args: argparse.Namespace, argv: list[str]) -> int:
    plan = _compare_cases(args.duration, args.idle_connections)
    names = [n for n in args.only.split(",") if n] or [n for n in plan if not _opt_in(n)]
    unknown = [n for n in names if n not in plan]
    if unknown:
        print(f"unknown case(s) {unknown}; choose from {list(plan)}", file=sys.stderr)
        return 2
    only_servers = {s for s in args.servers.split(",") if s}
    cases: list[Case] = []
    for name in names:
        params, peer_list = plan[name]
        servers = ([] if args.no_livehub else ["livehub"]) + peer_list
        for server in servers:
            if only_servers and server not in only_servers:
                continue
            if server == "livehub" and name.startswith("window-"):
                cases.extend(Case(server, dataclasses.replace(params, write_delay=ms / 1000),
                                  name, window_label(ms)) for ms in WINDOWS_MS)
                continue
            if not SERVERS[server].supports(params.scenario, params.transport):
                continue  # livehub speaks no Socket.IO
            cases.append(Case(server, params, name))
    doc = run_cases("compare", argv, cases, _options(args))
    path = write_result(doc, args.out, "compare")
    print_table(doc)
    print(f"result: {path}")
    return 0


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def print_table(doc: dict[str, Any]) -> None:
    """Print each case's headline figure and livehub's figure divided by each peer's."""
    cases: list[dict[str, Any]] = doc["cases"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in cases:
        groups.setdefault(c["group"], []).append(c)
    for group, members in groups.items():
        head = members[0]["headline"]
        key = head["figure"]
        better = "higher" if head["higher_is_better"] else "lower"
        print(f"\n{group}: {key} ({better} is better)")
        base = next((m for m in members if m["server"] == "livehub" and "figures" in m), None)
        base_value = figure(base["figures"], key) if base else None
        print(f"  {'server':20} {key:>16} {'server us/unit':>15} {'gen cpu':>8} {'lost':>6} "
              f"{'livehub / it':>13} {'other cpu':>9}")
        for m in members:
            shown = m.get("label", m["server"])
            if "figures" not in m:
                print(f"  {shown:20} failed: {m.get('error', '')[:80]}")
                continue
            f = m["figures"]
            value = figure(f, key)
            unit = next((v for k, v in f.items() if k.startswith("server_cpu_us_per_")), None)
            ratio = "-"
            if base_value is not None and value and m is not base:
                ratio = f"{base_value / value:.2f}"
            lost = f.get("lost", 0) + f.get("lost_by_disconnect", 0)
            print(f"  {shown:20} {_fmt(value):>16} {_fmt(unit):>15} "
                  f"{f.get('gen_cpu_util', 0):>8.0%} {lost!s:>6} {ratio:>13} "
                  f"{f.get('foreign_cpu_util', 0):>9.0%}")
            for why, count in (f.get("closed_by_server") or {}).items():
                print(f"  {'':20} {count} connection(s) closed by the server: {why}")


def _cmd_report(args: argparse.Namespace) -> int:
    docs = [json.loads(p.read_text()) for p in args.files]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(docs, [str(p) for p in args.files]))
    if args.markdown:
        print(markdown(docs))
    print(f"report: {args.output}")
    return 0


def main(argv: list[str]) -> int:
    """Entry point of ``livehub bench``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _cmd_run(args, argv)
    if args.command == "compare":
        return _cmd_compare(args, argv)
    if args.command == "report":
        return _cmd_report(args)
    if args.command == "tls-h2":
        return tlsh2.run(args)
    if args.command == "install":
        versions = install(args.cache.resolve())
        print(json.dumps(versions, indent=2))
        return 0
    for spec in SERVERS.values():
        transports = ",".join(spec.routes.subscribe) or "-"
        echo = "echo" if spec.routes.echo else ""
        print(f"{spec.name:20} {spec.runtime:8} {transports:20} {echo:5} {spec.note}")
    return 0
