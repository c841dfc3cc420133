"""The servers the lab drives: livehub and the peers, their routes, and their processes."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from livehub.bench import mercure, socketio
from livehub.bench.peers import write_scripts

TRANSPORTS = ("ws", "sse", "stream", "poll", "centrifugo-ws", "socketio", "mercure")
"""Every transport the lab knows. ``centrifugo-ws`` is the Centrifugo JSON protocol over
``/connection/websocket`` (livehub only), published to through the raw ``/ws``; ``socketio``
is Socket.IO over WebSocket (the python-socketio peer, ``bench.socketio``); ``mercure`` is
SSE on ``/.well-known/mercure`` (livehub only, ``bench.mercure``)."""

LIVEHUB_CHANNEL = "bench:x"
LIVEHUB_API_KEY = "bench-key"

LIVEHUB_CONFIG = f"""\
# Written by livehub bench: a server for load runs on 127.0.0.1.
[server]
api_key = "{LIVEHUB_API_KEY}"
insecure_api = true
echo = true
clock = false
max_connections_per_ip = 0   # every load client connects from 127.0.0.1

[limits]
# The lab's publishers send as fast as the server holds: no per-connection publication rate.
client_publish_rate = 0

[centrifugo]
# Anonymous clients without a token for the centrifugo-ws transport; every permission granted.
client_insecure = true

[namespaces.bench]
client_publish = true
history_size = 1000
history_ttl = 300
""" + mercure.MERCURE_CONFIG


def _raw_body(payload: bytes) -> bytes:
    return payload


def _livehub_body(payload: bytes) -> bytes:
    # The bench payload is plain ASCII (digits, commas, '#', 'x'): a JSON string as it is.
    return b'{"channel":"%s","data":"%s"}' % (LIVEHUB_CHANNEL.encode(), payload)


@dataclass(frozen=True, slots=True)
class Routes:
    """Where a server's subscribers connect, how it is published to, where it echoes."""

    subscribe: dict[str, str]
    """Subscriber path per transport (``ws``, ``sse``, ``stream``, ``poll``)."""
    ws_publish: str | None = None
    """Path of a WebSocket whose client messages are broadcast (for the ``ws`` transport)."""
    http_publish: str | None = None
    """Path that takes a POST to publish (for the HTTP transports)."""
    http_body: Callable[[bytes], bytes] = _raw_body
    http_headers: dict[str, str] = field(default_factory=dict)
    echo: str | None = None
    channel: str = "bench"
    """The channel name, for protocols that subscribe in-band (``centrifugo-ws``)."""

    def publisher_for(self, transport: str) -> str | None:
        """``"ws"`` or ``"http"``: how the fan-out of ``transport`` is published, if it can be."""
        if transport in ("ws", "centrifugo-ws", "socketio") and self.ws_publish:
            return "ws"
        if transport in self.subscribe and self.http_publish:
            return "http"
        return None


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One server the lab can start."""

    name: str
    runtime: str  # "livehub", "node" or "python"
    script: str
    routes: Routes
    note: str = ""

    def supports(self, scenario: str, transport: str) -> bool:
        if scenario == "echo":
            return self.routes.echo is not None
        if scenario == "idle":
            return transport in self.routes.subscribe
        routes = self.routes
        return transport in routes.subscribe and routes.publisher_for(transport) is not None


_PEER_WS = Routes(
    subscribe={"ws": "/ws?channel=bench"}, ws_publish="/ws?channel=bench", echo="/echo"
)
_PEER_ROOMS = Routes(subscribe=_PEER_WS.subscribe, ws_publish=_PEER_WS.ws_publish)
"""The room servers: no ``/echo`` (the ``rooms`` scenario only)."""
_PEER_SSE = Routes(
    subscribe={"sse": "/events?channel=bench"},
    http_publish="/publish?channel=bench",
    http_headers={"Content-Type": "text/plain"},
)

SERVERS: dict[str, ServerSpec] = {
    s.name: s
    for s in [
        ServerSpec(
            "livehub", "livehub", "",
            Routes(
                subscribe={
                    "ws": f"/ws?channel={LIVEHUB_CHANNEL}",
                    "sse": f"/events?channel={LIVEHUB_CHANNEL}",
                    "stream": f"/stream?channel={LIVEHUB_CHANNEL}",
                    "poll": f"/poll?channel={LIVEHUB_CHANNEL}",
                    "centrifugo-ws": "/connection/websocket",
                    "mercure": mercure.MERCURE_PATH,
                },
                ws_publish=f"/ws?channel={LIVEHUB_CHANNEL}",
                http_publish="/api/publish",
                http_body=_livehub_body,
                http_headers={"Content-Type": "application/json", "X-API-Key": LIVEHUB_API_KEY},
                echo="/echo",
                channel=LIVEHUB_CHANNEL,
            ),
        ),
        ServerSpec("node-ws-echo", "node", "node-ws-echo.js",
                   Routes(subscribe={}, echo="/echo"), "ws textbook echo server"),
        ServerSpec("node-ws", "node", "node-ws-broadcast.js",
                   Routes(subscribe=_PEER_WS.subscribe, ws_publish=_PEER_WS.ws_publish),
                   "ws README broadcast server"),
        ServerSpec("express-sse", "node", "express-sse.js",
                   Routes(subscribe={"sse": "/events"}), "Express textbook SSE (1 msg/s)"),
        ServerSpec("express-sse-fanout", "node", "express-sse-fanout.js", _PEER_SSE,
                   "Express SSE fan-out variant"),
        ServerSpec("websockets", "python", "py_websockets.py", _PEER_WS, "websockets + uvloop"),
        ServerSpec("picows", "python", "py_picows.py", _PEER_WS, "picows + uvloop"),
        ServerSpec("aiohttp", "python", "py_aiohttp.py", _PEER_WS, "aiohttp + uvloop"),
        ServerSpec("node-ws-rooms", "node", "node-ws-rooms.js", _PEER_ROOMS,
                   "ws with a room map per ?channel= (rooms scenario)"),
        ServerSpec("picows-rooms", "python", "py_picows_rooms.py", _PEER_ROOMS,
                   "picows + uvloop, a dict of sets per ?channel= (rooms scenario)"),
        ServerSpec("sse-starlette", "python", "py_sse_starlette.py", _PEER_SSE,
                   "sse-starlette under uvicorn (uvloop, httptools)"),
    ]
}


SERVERS["python-socketio"] = ServerSpec(
    "python-socketio", "python", "py_socketio.py",
    Routes(subscribe={"socketio": socketio.PATH}, ws_publish=socketio.PATH),
    "python-socketio AsyncServer (ASGI) under uvicorn (uvloop, httptools)")
SERVERS["livehub-asgi"] = ServerSpec(
    "livehub-asgi", "livehub", "livehub_asgi.py", SERVERS["livehub"].routes,
    "livehub's ASGI adapter (hub.asgi()) under uvicorn (uvloop, httptools)")
"""The same endpoints through ``livehub.asgi``: what mounting livehub in an ASGI app costs."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(slots=True)
class Launch:
    """How to start a server: argv, working directory, environment."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]


def livehub_version(root: Path) -> str:
    """``livehub <version> (<commit>)`` of the tree at ``root``."""
    version = "?"
    init = root / "livehub" / "__init__.py"
    if init.exists():
        for line in init.read_text().splitlines():
            if line.startswith("__version__"):
                version = line.split("=", 1)[1].strip().strip("\"'")
    commit = ""
    if (root / "COMMIT").exists():
        return f"{version} ({(root / 'COMMIT').read_text().strip()[:12]}, snapshot)"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
    return f"{version} ({commit})" if commit else version


def snapshot_livehub(root: Path, ref: str, cache: Path) -> Path:
    """Export ``ref`` of the git tree at ``root`` into the cache; return the snapshot's root.

    A tree that others commit to while a long ``compare`` runs would otherwise change under
    it; a snapshot pins every case of the run to one commit.
    """
    sha = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()
    target = cache / f"livehub-{sha[:12]}"
    if not (target / "livehub" / "__init__.py").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", "--format=tar", sha],
            capture_output=True, timeout=120, check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, timeout=120, check=True)
        (target / "COMMIT").write_text(sha + "\n")
    return target


def launch_for(spec: ServerSpec, port: int, cache: Path, livehub_root: Path, *,
               livehub_python: str, peer_python: str | None = None,
               extra: tuple[str, ...] = ()) -> Launch:
    """The command that starts ``spec`` on ``port``."""
    env = dict(os.environ)
    env["BENCH_PORT"] = str(port)
    if spec.runtime == "livehub":
        config = cache / "livehub-bench.toml"
        cache.mkdir(parents=True, exist_ok=True)
        config.write_text(LIVEHUB_CONFIG)
        for name in ("LIVEHUB_HOST", "LIVEHUB_PORT", "LIVEHUB_CONFIG", "LIVEHUB_API_KEY"):
            env.pop(name, None)
        env["PYTHONPATH"] = str(livehub_root)
        if spec.name == "livehub-asgi":  # uvicorn must be installed beside livehub
            env["LIVEHUB_BENCH_CONFIG"] = str(config)
            argv = [livehub_python, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                    "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                    "--log-level", "warning", "--lifespan", "on", "livehub_asgi:app"]
            env["PYTHONPATH"] = f"{livehub_root}{os.pathsep}{write_scripts(cache)}"
            return Launch(argv, livehub_root, env)
        argv = [livehub_python, "-m", "livehub", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--config", str(config), *extra]
        return Launch(argv, livehub_root, env)
    folder = write_scripts(cache)
    if spec.runtime == "node":
        env["NODE_PATH"] = str(cache / "node" / "node_modules")
        return Launch(["node", str(folder / spec.script)], folder, env)
    python = peer_python or str(cache / "pyvenv" / "bin" / "python")
    if spec.name in ("sse-starlette", "python-socketio"):
        module = spec.script.removesuffix(".py")
        argv = [python, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                "--log-level", "warning", f"{module}:app"]
        return Launch(argv, folder, env)
    return Launch([python, str(folder / spec.script)], folder, env)


class ServerProcess:
    """A server started by the lab: pinned, with a raised fd limit, stopped by its PID."""

    def __init__(self, spec: ServerSpec, launch: Launch, port: int, log_path: Path,
                 cpus: set[int] | None) -> None:
        self.spec = spec
        self.launch = launch
        self.port = port
        self.log_path = log_path
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 20.0) -> None:
        cpus = self.cpus

        def prepare() -> None:  # runs in the child before exec
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            if cpus:
                os.sched_setaffinity(0, cpus)

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.launch.argv, cwd=self.launch.cwd, env=self.launch.env, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=prepare,  # noqa: PLW1509 - the lab has no threads
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with {self.proc.returncode}; see {self.log_path}:\n"
                    + self.log_tail()
                )
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    time.sleep(0.2)  # let the server finish its start-up work
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.spec.name} did not listen on {self.port} within {timeout}s")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the server's PID, then SIGKILL it if it is still there after 5 s."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


REDIS_SPEC = ServerSpec("redis", "redis", "", Routes(subscribe={}), "broker of a cluster run")


def redis_launch(port: int, folder: Path) -> Launch:
    """``redis-server`` on 127.0.0.1:``port``, nothing saved to disk."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError("redis-server not found: a cluster run needs it on PATH")
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--protected-mode", "no", "--dir", str(folder),
            "--loglevel", "warning"]
    return Launch(argv, folder, dict(os.environ))


def livehub_cluster_args(redis_port: int, prefix: str) -> tuple[str, ...]:
    """Flags of one livehub node of a cluster run over the Redis on ``redis_port``."""
    return ("--broker", "redis", "--redis-url", f"redis://127.0.0.1:{redis_port}/0",
            "--redis-prefix", prefix, "--no-clock")


def describe(spec: ServerSpec, versions: dict[str, str], livehub_root: Path) -> dict[str, str]:
    """What the result file says about a server: runtime, packages, versions."""
    out = {"name": spec.name, "runtime": spec.runtime, "note": spec.note}
    if spec.runtime == "livehub":
        out["version"] = livehub_version(livehub_root)
        out["python"] = sys.version.split()[0]
    elif spec.runtime == "node":
        out["version"] = json.dumps({k: v for k, v in versions.items() if k.startswith("npm:")})
    else:
        package = {"websockets": "websockets", "picows": "picows", "aiohttp": "aiohttp",
                   "picows-rooms": "picows",
                   "sse-starlette": "sse-starlette",
                   "python-socketio": "python-socketio"}.get(spec.name, spec.name)
        out["version"] = versions.get(f"pypi:{package}", "?")
        out["python"] = versions.get("pypi:python", "?")
    return out
