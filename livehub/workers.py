"""``livehub serve --workers N``: N processes serving one port through ``SO_REUSEPORT``.

The parent binds the address with ``SO_REUSEPORT`` first (which resolves port 0) and keeps that
socket bound but not listening, so the port stays reserved while workers come and go.  Each
worker binds its own listening socket to the same address; the kernel spreads new connections
over the listening ones.  Workers share nothing but the broker, which therefore must be Redis
(``BrokerSettings`` refuses anything else with a configuration error, exit code 2).

The parent restarts a worker that dies (at most ``MAX_RESTARTS`` per minute, then it gives up
with exit code 1), does not restart one that exited with a configuration error (exit code 2),
and on SIGINT/SIGTERM stops every worker by PID (SIGTERM, then SIGKILL after ``STOP_TIMEOUT``);
SIGHUP is passed on to every worker (each reloads its TLS certificate).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections import deque
from multiprocessing.process import BaseProcess
from types import FrameType

from livehub.config import Config, configured_secrets
from livehub.ops.logs import configure as configure_logs

log = logging.getLogger("livehub.workers")

MAX_RESTARTS = 10
STOP_TIMEOUT = 10.0
CONFIG_ERROR_EXIT = 2


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not listening yet)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("this platform has no SO_REUSEPORT: run one process per port instead")
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _worker_main(config: Config, port: int, index: int, count: int) -> None:
    """Entry point of one worker process (spawned: it imports livehub afresh)."""
    from livehub.serve import run  # noqa: PLC0415 - imported afresh in the spawned worker

    configure_logs(config.log_level, config.server.log_format, secrets=configured_secrets(config),
                   prefix=f"[worker {index + 1}/{count} pid {os.getpid()}]",
                   static={"worker": index + 1, "pid": os.getpid()})
    sock = reuseport_socket(config.server.host, port)
    raise SystemExit(run(config, sock))


def supervise(config: Config) -> int:
    """Run ``config.broker.workers`` workers until SIGINT/SIGTERM; return the exit code."""
    count = config.broker.workers
    reserved = reuseport_socket(config.server.host, config.server.port)
    port: int = reserved.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    workers: dict[int, BaseProcess] = {}
    stopping = False
    code = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    def start(index: int) -> None:
        proc = context.Process(target=_worker_main, args=(config, port, index, count),
                               name=f"livehub-worker-{index + 1}")
        proc.start()
        workers[index] = proc

    def on_hup(signum: int, frame: FrameType | None) -> None:
        # each worker reloads its own TLS certificate (``App.reload_tls``)
        for proc in workers.values():
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGHUP)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)
    log.info("starting %d workers on %s:%d (SO_REUSEPORT)", count, config.server.host, port)
    restarts: deque[float] = deque()
    try:
        for index in range(count):
            start(index)
        while not stopping:
            multiprocessing.connection.wait([p.sentinel for p in workers.values()], 0.5)
            for index, proc in list(workers.items()):
                if stopping or proc.is_alive():
                    continue
                if proc.exitcode == CONFIG_ERROR_EXIT:
                    log.error("worker %d exited with a configuration error", index + 1)
                    stopping, code = True, CONFIG_ERROR_EXIT
                    break
                now = time.monotonic()
                restarts.append(now)
                while restarts and now - restarts[0] > 60:
                    restarts.popleft()
                if len(restarts) > MAX_RESTARTS:
                    log.error("workers keep dying (%d restarts in a minute): giving up",
                              len(restarts))
                    stopping, code = True, 1
                    break
                log.error("worker %d (pid %s) exited with code %s: restarting it",
                          index + 1, proc.pid, proc.exitcode)
                start(index)
    finally:
        _stop_all(list(workers.values()), max(STOP_TIMEOUT, config.server.drain_timeout + 5))
        reserved.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _stop_all(procs: list[BaseProcess], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every worker (each drains, ``livehub.ops.health``), SIGKILL what is left after
    ``timeout`` seconds."""
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive() and proc.pid is not None:
            log.warning("worker pid %d did not stop in time: killing it", proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
