"""TLS on the server's one port: https:// and wss:// side by side, ALPN, SIGHUP reload, and
what the TLS port refuses (plain HTTP, a stalled handshake, a bad certificate at start-up)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trustme
import websockets

from ..conftest import LiveServer, ServerFactory
from ..serve_process import ROOT, ServeProcess
from ..tlsca import TlsFiles, make_tls_files


def peer_common_name(port: int, files: TlsFiles) -> str:
    """The common name of the certificate a new TLS connection to ``port`` gets."""
    context = files.client_context(("http/1.1",))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        cert = tls.getpeercert()
    assert cert is not None
    subject = dict(pair for rdn in cert["subject"] for pair in rdn)
    return str(subject["commonName"])


def test_https_http2_and_wss_share_the_port(tls_server: LiveServer,
                                            tls_files: TlsFiles) -> None:
    with httpx.Client(verify=tls_files.client_context()) as h1:
        r = h1.get(tls_server.url + "/health")
        assert (r.http_version, r.status_code) == ("HTTP/1.1", 200)
    with httpx.Client(http2=True, verify=tls_files.client_context()) as h2:
        r = h2.get(tls_server.url + "/health")
        assert (r.http_version, r.status_code) == ("HTTP/2", 200)

    async def echo() -> str | bytes:
        # a WebSocket client offers http/1.1 by ALPN: the Upgrade is HTTP/1.1
        async with websockets.connect(tls_server.ws_url + "/echo",
                                      ssl=tls_files.client_context(("http/1.1",))) as ws:
            await ws.send("over wss")
            return await ws.recv()

    assert asyncio.run(echo()) == "Echo: over wss"


def test_alpn_offers_h2_then_http11(tls_server: LiveServer, tls_files: TlsFiles) -> None:
    for offered, chosen in ((("h2", "http/1.1"), "h2"), (("http/1.1",), "http/1.1"),
                            (("http/1.1", "h2"), "h2")):
        context = tls_files.client_context(offered)
        with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == chosen


def test_plain_http_to_the_tls_port_is_closed_without_an_http_answer(
        tls_server: LiveServer, tls_files: TlsFiles) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    # the TLS layer refuses the record and closes: never an HTTP answer in clear text
    assert not received.startswith(b"HTTP/")
    with httpx.Client(http2=True, verify=tls_files.client_context()) as client:
        assert client.get(tls_server.url + "/health").status_code == 200


@pytest.mark.parametrize("sent", [b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"],
                         ids=["nothing", "half-a-client-hello"])
def test_a_stalled_handshake_is_dropped(make_server: ServerFactory, tls_files: TlsFiles,
                                        sent: bytes) -> None:
    srv = make_server(tls_cert=str(tls_files.cert), tls_key=str(tls_files.key),
                      head_timeout=0.5)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as stalled:
        stalled.sendall(sent)
        # meanwhile others are served
        with httpx.Client(verify=tls_files.client_context()) as client:
            assert client.get(srv.url + "/health").status_code == 200
        with contextlib.suppress(ConnectionResetError):  # closed, or reset: either way gone
            assert stalled.recv(4096) == b""  # (the socket timeout: 15 s)


def test_sighup_reloads_the_certificate_for_new_connections(tmp_path: Path) -> None:
    authority = trustme.CA()
    first = make_tls_files(tmp_path, authority, name="first")
    proc = ServeProcess(tmp_path, "--tls-cert", str(first.cert), "--tls-key", str(first.key))
    proc.start()
    try:
        assert proc.url.startswith("http://")  # LocalAddress: the port is what matters here
        assert peer_common_name(proc.port, first) == "first"
        context = first.client_context(("http/1.1",))
        kept = context.wrap_socket(socket.create_connection(("127.0.0.1", proc.port), 10),
                                   server_hostname="127.0.0.1")

        second = make_tls_files(tmp_path, authority, name="second")
        first.cert.write_bytes(second.cert.read_bytes())
        first.key.write_bytes(second.key.read_bytes())
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGHUP)
        wait_for_log(proc, "TLS certificate reloaded")
        assert peer_common_name(proc.port, first) == "second"

        # an open connection keeps its certificate and goes on
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")
        kept.close()

        # files that cannot serve: said in the log, the running certificate stays
        first.key.write_text("not a key")
        proc.proc.send_signal(signal.SIGHUP)
        wait_for_log(proc, "TLS certificate not reloaded")
        assert peer_common_name(proc.port, first) == "second"
    finally:
        proc.stop()


def wait_for_log(proc: ServeProcess, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in proc.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{proc.log()}"
        time.sleep(0.02)


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livehub", "serve", "--port", "0",
                           "--no-clock", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, check=False, stdin=subprocess.DEVNULL)


def test_a_missing_certificate_stops_the_start_with_exit_code_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    done = run_serve("--tls-cert", str(missing))
    assert done.returncode == 2
    assert f"configuration error: TLS: no such file: {missing}" in done.stderr


def test_a_key_that_does_not_match_stops_the_start_with_exit_code_2(
        tmp_path: Path, tls_files: TlsFiles) -> None:
    (tmp_path / "other").mkdir()
    other = make_tls_files(tmp_path / "other", name="other")
    done = run_serve("--tls-cert", str(tls_files.cert), "--tls-key", str(other.key))
    assert done.returncode == 2
    assert "configuration error: TLS: cannot load certificate" in done.stderr


def test_tls_settings_come_from_the_environment(tmp_path: Path, tls_files: TlsFiles) -> None:
    proc = ServeProcess(tmp_path, env={"LIVEHUB_TLS_CERT": str(tls_files.cert),
                                       "LIVEHUB_TLS_KEY": str(tls_files.key)})
    proc.start()
    try:
        assert "listening on https://" in proc.log()
        with httpx.Client(http2=True, verify=tls_files.client_context()) as client:
            r = client.get(f"https://127.0.0.1:{proc.port}/health")
        assert (r.http_version, r.status_code) == ("HTTP/2", 200)
    finally:
        proc.stop()
