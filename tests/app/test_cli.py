"""``livehub serve`` as a real process: environment variables, start-up errors, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        try:
            httpx.get(url + "/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("server did not start")


def test_serve_honours_environment_and_stops_on_sigterm() -> None:
    port = free_port()
    env = dict(os.environ, LIVEHUB_PORT=str(port), LIVEHUB_HOST="127.0.0.1",
               LIVEHUB_API_KEY="env-key", LIVEHUB_CLOCK="0")
    proc = subprocess.Popen([sys.executable, "-m", "livehub", "serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_up(url, proc)
        r = httpx.post(url + "/api/publish", json={"channel": "c", "data": 1},
                       headers={"X-API-Key": "env-key"})
        assert r.status_code == 200
        assert httpx.post(url + "/api/publish", json={"channel": "c", "data": 1}).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b"shutting down" in err


def test_generated_key_is_printed() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEHUB_")}
    env["LIVEHUB_PORT"] = str(port)
    proc = subprocess.Popen([sys.executable, "-m", "livehub", "serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_up(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert b"server API key for this run" in err


def test_configuration_errors_exit_2() -> None:
    r = subprocess.run([sys.executable, "-m", "livehub", "serve", "--port", "abc"],
                       capture_output=True, timeout=30, check=False)
    assert r.returncode == 2 and b"configuration error" in r.stderr and b"Traceback" not in r.stderr


def test_port_in_use_is_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "livehub", "serve", "--port", str(port)],
                           capture_output=True, timeout=30, check=False)
    assert r.returncode == 1 and b"cannot start" in r.stderr


def test_refused_security_configurations_exit_2_with_one_line() -> None:
    for argv, fragment in ((["--cors-credentials"], b"explicit allowed_origins"),
                           (["--insecure-api", "--host", "0.0.0.0"], b"loopback"),
                           (["--production"], b"needs an API key")):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEHUB_")}
        r = subprocess.run([sys.executable, "-m", "livehub", "serve", *argv], env=env,
                           capture_output=True, timeout=30, check=False)
        assert r.returncode == 2, (argv, r.stderr)
        assert r.stderr.count(b"\n") == 1 and fragment in r.stderr, r.stderr
