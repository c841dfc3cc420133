"""HTTP/2 (RFC 9113): every HTTP endpoint as streams of one connection, over TLS (ALPN) and
h2c with prior knowledge, by real clients (httpx, curl), with the same checks as HTTP/1.1."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator

import httpx
import pytest

from ..conftest import API_KEY, LiveServer, ServerFactory
from ..tlsca import TlsFiles
from .h2client import H2Client, close_all


@pytest.fixture(autouse=True)
def _close_h2_clients() -> Iterator[None]:
    yield
    close_all()


def http2_connections(srv: LiveServer) -> int:
    from livehub.transports.h2 import Http2Connection

    assert srv.app is not None
    return srv.call_soon(lambda: sum(isinstance(c, Http2Connection)
                                     for c in srv.app._http))  # type: ignore[union-attr]


def publish_later(srv: LiveServer, channel: str, data: object, after: threading.Event) -> None:
    """Publish once ``after`` is set (the subscriber saw its stream open)."""
    def run() -> None:
        after.wait(10)
        srv.publish(channel, data)
    threading.Thread(target=run, daemon=True).start()


def test_every_kind_of_endpoint_on_one_http2_connection(tls_server: LiveServer,
                                                        tls_files: TlsFiles) -> None:
    srv = tls_server
    with httpx.Client(http2=True, verify=tls_files.client_context(), timeout=10) as client:
        page = client.get(srv.url + "/")
        assert (page.http_version, page.status_code) == ("HTTP/2", 200)
        assert page.headers["content-type"].startswith("text/html")

        published = client.post(srv.url + "/api/publish", headers={"X-API-Key": API_KEY},
                                json={"channel": "chat:h2", "data": "first"})
        assert (published.http_version, published.status_code) == ("HTTP/2", 200)
        cursor = published.json()["result"]["cursor"]

        # SSE: a live publication
        opened = threading.Event()
        publish_later(srv, "chat:h2", "live", opened)
        with client.stream("GET", srv.url + "/events?channel=chat:h2") as sse:
            assert (sse.http_version, sse.status_code) == ("HTTP/2", 200)
            assert sse.headers["content-type"].startswith("text/event-stream")
            assert "connection" not in sse.headers  # RFC 9113 §8.2.2
            opened.set()
            for line in sse.iter_lines():
                if line == "data: live":
                    break

        # HTTP streaming: JSON lines in DATA frames (no HTTP/1.1 chunk framing)
        opened = threading.Event()
        publish_later(srv, "chat:h2", "streamed", opened)
        with client.stream("GET", srv.url + "/stream?channel=chat:h2") as stream:
            assert (stream.http_version, stream.status_code) == ("HTTP/2", 200)
            assert "transfer-encoding" not in stream.headers
            opened.set()
            for line in stream.iter_lines():
                message = json.loads(line)
                if message.get("data") == "streamed":
                    break

        # long-polling from the cursor of "first"
        polled = client.get(srv.url + "/poll", params={"channel": "chat:h2", "since": cursor,
                                                       "timeout": "5"})
        assert (polled.http_version, polled.status_code) == ("HTTP/2", 200)
        assert "live" in polled.text
        assert http2_connections(srv) == 1


def test_h2c_with_prior_knowledge_on_the_plain_port(server: LiveServer) -> None:
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        r = client.get(server.url + "/health")
        assert (r.http_version, r.status_code) == ("HTTP/2", 200)
        r = client.post(server.url + "/api/publish", headers={"X-API-Key": API_KEY},
                        json={"channel": "chat:c", "data": 1})
        assert (r.http_version, r.status_code) == ("HTTP/2", 200)


REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("GET", "/no-such-page", {}, b""),
    ("DELETE", "/health", {}, b""),
    ("HEAD", "/events?channel=chat:x", {}, b""),
    ("GET", "/events", {}, b""),
    ("GET", "/events?channel=$private", {}, b""),
    ("GET", "/events?channel=nons:x", {}, b""),
    ("POST", "/api/publish", {}, b'{"channel": "chat:x", "data": 1}'),
    ("POST", "/api/publish", {"x-api-key": "wrong"}, b'{"channel": "chat:x", "data": 1}'),
    ("POST", "/api/publish", {"x-api-key": API_KEY}, b'{"channel": "chat:x"'),
    ("OPTIONS", "/events", {"origin": "https://elsewhere.example",
                            "access-control-request-method": "GET"}, b""),
    ("OPTIONS", "/api/publish", {"origin": "https://elsewhere.example"}, b""),
    ("GET", "/health", {"origin": "https://elsewhere.example"}, b""),
]


def answer(client: httpx.Client, url: str, method: str, headers: dict[str, str],
           body: bytes) -> tuple[int, dict[str, str], bytes]:
    r = client.request(method, url, headers=headers, content=body or None)
    kept = {k: v for k, v in r.headers.items()
            if k.startswith("access-control-") or k in ("content-type", "allow", "vary")}
    return r.status_code, kept, r.content


def test_the_same_checks_answer_the_same_on_http11_and_http2(tls_server: LiveServer,
                                                             tls_files: TlsFiles) -> None:
    """One rule everywhere: each refusal (404, 405, 400, 401, 403, CORS) is the same answer,
    from the same code, whichever HTTP version carries it."""
    with httpx.Client(verify=tls_files.client_context(), timeout=10) as h1, \
            httpx.Client(http2=True, verify=tls_files.client_context(), timeout=10) as h2:
        for method, path, headers, body in REQUESTS:
            one = answer(h1, tls_server.url + path, method, headers, body)
            two = answer(h2, tls_server.url + path, method, headers, body)
            assert one == two, (method, path)
            assert one[0] >= 200


def test_a_plain_get_of_a_websocket_endpoint_over_http2_says_how(
        tls_server: LiveServer, tls_files: TlsFiles) -> None:
    with httpx.Client(http2=True, verify=tls_files.client_context(), timeout=10) as client:
        r = client.get(tls_server.url + "/echo")
    assert (r.http_version, r.status_code) == ("HTTP/2", 400)
    assert "extended CONNECT (RFC 8441)" in r.json()["error"]["message"]


def test_curl_http2_streams_events(tls_server: LiveServer, tls_files: TlsFiles) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is not installed (apt-get install -y curl)", pytrace=False)
    proc = subprocess.Popen([curl, "-sS", "-N", "-v", "--http2", "--cacert", str(tls_files.ca),
                             "-m", "20", tls_server.url + "/events?channel=chat:curl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "retry: 2000": the stream is open
        assert first.startswith(b"retry:")
        tls_server.publish("chat:curl", "hello curl")
        seen = b""
        while b"data: hello curl" not in seen:
            line = proc.stdout.readline()
            assert line, "curl's stream ended"
            seen += line
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"using HTTP/2" in err or b"HTTP/2 200" in err


def test_server_stop_ends_http2_streams_in_band(make_server: ServerFactory) -> None:
    srv = make_server()
    client = H2Client(srv.port)
    stream_id = client.request("/events?channel=chat:bye")
    client.until(lambda _: client.status(stream_id) == 200)
    assert srv.app is not None
    srv.call(srv.app.stop(drain=5))
    srv.app = None
    client.until(lambda _: client.ended(stream_id))
    assert b"event: disconnect" in client.body(stream_id)
    client.close()



@pytest.mark.parametrize("kind", ["uni_http_stream", "uni_sse"])
def test_centrifugo_streams_over_h2c(kind: str) -> None:
    """Centrifugo's unidirectional HTTP stream (JSON lines, unchunked on HTTP/2) and SSE."""
    from ..centrifugo.conftest import make_cf_server, token

    srv = make_cf_server()
    try:
        request = {"token": token("h2", channels=["chat:h2"])}
        method, extra = ("POST", {"json": request}) if kind == "uni_http_stream" else (
            "GET", {"params": {"cf_connect": json.dumps(request)}})
        opened = threading.Event()
        publish_later(srv, "chat:h2", {"n": 1}, opened)
        with httpx.Client(http1=False, http2=True, timeout=10) as client, \
                client.stream(method, f"{srv.url}/connection/{kind}", **extra) as r:
            assert (r.http_version, r.status_code) == ("HTTP/2", 200)
            pushes = []
            for line in r.iter_lines():
                if not line.startswith("{") and not line.startswith("data: {"):
                    continue
                push = json.loads(line.removeprefix("data: "))
                pushes.append(push)
                if "connect" in push:
                    opened.set()
                if "pub" in push:
                    break
        assert pushes[0]["connect"]["subs"]["chat:h2"]["recoverable"] is not None
        assert pushes[-1] == {"channel": "chat:h2", "pub": {"data": {"n": 1}, "offset": 1}}
    finally:
        srv.stop()


def test_the_http2_preface_after_http11_requests_is_505(server: LiveServer) -> None:
    """h2c with prior knowledge starts a connection; after HTTP/1.1 requests it is refused."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b"}" not in first:
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 505")
    assert b"HTTP/2 starts a connection" in answer
