"""``GET /metrics``: Prometheus text read at scrape time from the counters the code keeps, and
its access rule (401 without the metrics token when one is configured)."""

from __future__ import annotations

import asyncio
import base64
import socket
import time

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from livehub.wire.payload import PayloadKind

from ..centrifugo.wsclient import RawClient
from ..conftest import API_KEY, LiveServer, ServerFactory
from ..serve_process import API_KEY as API_KEY_SERVE
from ..serve_process import ServeFactory, serve  # noqa: F401 - fixture
from ..sseclient import take

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape by (name, sorted labels); the text must parse."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(url: str, **headers: str) -> Samples:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(url + "/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


async def test_connections_deliveries_and_bytes_by_transport(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=10) as client, client.stream(
            "GET", server.url + "/events", params={"channel": "news"}) as sse, \
            websockets.connect(server.ws_url + "/ws?channel=news") as ws:
        deadline = time.monotonic() + 5
        while (value(await scrape(server.url), "livehub_subscriptions") < 2
               and time.monotonic() < deadline):
            await asyncio.sleep(0.02)
        for i in range(5):
            await asyncio.to_thread(server.publish, "news", f"m{i}")
        assert [await ws.recv() for _ in range(5)] == [f"m{i}" for i in range(5)]
        live = await scrape(server.url)  # before the SSE reader stops (take ends its stream)
        got = await take(sse, 5)
        assert [e.data for e in got] == [f"m{i}" for i in range(5)]
    assert value(live, "livehub_connections", protocol="plain", transport="sse") == 1
    assert value(live, "livehub_connections", protocol="plain", transport="websocket") == 1
    assert value(live, "livehub_channels") == 1
    assert value(live, "livehub_subscriptions") == 2
    assert value(live, "livehub_publications_total") == 5
    assert value(live, "livehub_deliveries_total") == 10
    assert value(live, "livehub_broker_operation_seconds_count", op="publish") == 5
    assert value(live, "livehub_broker_operation_seconds_bucket", op="publish", le="+Inf") == 5
    # the WebSocket wrote 5 frames of 4 bytes (2-byte header + "mN"), counted per flush
    assert value(live, "livehub_messages_sent_total", protocol="plain",
                 transport="websocket") >= 5
    assert value(live, "livehub_sent_bytes_total", protocol="plain", transport="websocket") >= 20
    assert value(live, "livehub_sent_bytes_total", protocol="plain", transport="sse") > 5 * 20
    assert value(live, "livehub_http_responses_total", status="200") >= 5  # the API calls
    assert value(live, "livehub_broker_up") == 1
    assert value(live, "livehub_draining") == 0
    # after the clients left: the counters keep what they wrote, the gauges go to 0
    deadline = time.monotonic() + 5
    while True:
        after = await scrape(server.url)
        if value(after, "livehub_connections", protocol="plain", transport="sse") == 0 and \
                value(after, "livehub_connections", protocol="plain",
                      transport="websocket") == 0:
            break
        assert time.monotonic() < deadline, "connections were not counted as closed"
        await asyncio.sleep(0.02)
    assert value(after, "livehub_connections_opened_total", protocol="plain",
                 transport="sse") == 1
    assert value(after, "livehub_sent_bytes_total", protocol="plain", transport="sse") >= \
        value(live, "livehub_sent_bytes_total", protocol="plain", transport="sse")
    assert value(after, "livehub_disconnects_total", protocol="plain", transport="websocket",
                 code="1000") == 1


async def test_resumes_and_what_they_replayed(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", server.url + "/events",
                                 params={"channel": "chat:r"}) as r:
            await asyncio.to_thread(server.publish, "chat:r", "first")
            last = (await take(r, 1))[0].id
        for i in range(3):
            await asyncio.to_thread(server.publish, "chat:r", f"missed{i}")
        async with client.stream("GET", server.url + "/events", params={"channel": "chat:r"},
                                 headers={"Last-Event-ID": last}) as r:
            assert [e.data for e in await take(r, 3)] == ["missed0", "missed1", "missed2"]
            samples = await scrape(server.url)
    assert value(samples, "livehub_resumes_total") == 1
    assert value(samples, "livehub_resume_replayed_publications_total") == 3
    assert value(samples, "livehub_resumes_reset_total") == 0


async def test_slow_consumer_and_refused_publications_are_counted(
        make_server: ServerFactory) -> None:
    srv = make_server(max_buffer=16 * 1024, max_body=4 << 20)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", srv.port))
    slow.sendall(b"GET /events?channel=flood HTTP/1.1\r\nHost: x\r\n\r\n")
    assert srv.app is not None
    node = srv.app.ctx.node
    deadline = time.monotonic() + 5
    while value(await scrape(srv.url), "livehub_subscriptions") < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)

    async def flood() -> None:
        for _ in range(200):
            await node.publish("flood", b"x" * 8192, PayloadKind.TEXT)
            await asyncio.sleep(0)

    while True:  # until the slow reader is cut off
        srv.call(flood())
        samples = await scrape(srv.url)
        if value(samples, "livehub_slow_consumers_total") == 1:
            break
        assert time.monotonic() < deadline + 10, "the slow consumer was not cut off"
    slow.close()
    assert value(samples, "livehub_disconnects_total", protocol="plain", transport="sse",
                 code="3008") == 1
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(srv.url + "/api/publish", headers={"X-API-Key": API_KEY},
                              json={"channel": "flood", "data": "x" * (2 << 20)})
        assert r.json()["error"]["code"] == 106
    samples = await scrape(srv.url)
    assert value(samples, "livehub_publications_refused_total", reason="size") == 1


async def test_metrics_need_the_token_when_one_is_set(make_server: ServerFactory) -> None:
    srv = make_server(metrics_token="scrape-secret")
    async with httpx.AsyncClient(timeout=10) as client:
        url = srv.url + "/metrics"
        none = await client.get(url)
        wrong = await client.get(url, headers={"Authorization": "Bearer nope"})
        wrong_key = await client.get(url, headers={"X-API-Key": "nope"})
        bad_basic = await client.get(url, headers={"Authorization": "Basic !!notbase64"})
        bearer = await client.get(url, headers={"Authorization": "Bearer scrape-secret"})
        basic = await client.get(url, auth=("prometheus", "scrape-secret"))
        api_key = await client.get(url, headers={"X-API-Key": API_KEY})
    for refused in (none, wrong, wrong_key, bad_basic):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == 101
        assert "livehub_" not in refused.text
    for ok in (bearer, basic, api_key):
        assert ok.status_code == 200 and "livehub_connections" in ok.text
    samples = parse(api_key.text)
    assert value(samples, "livehub_auth_refused_total", reason="metrics") == 3
    assert value(samples, "livehub_auth_refused_total", reason="api_key_wrong") == 1
    assert value(samples, "livehub_http_responses_total", status="401") == 4


def test_without_a_token_metrics_are_closed_in_production(serve: ServeFactory) -> None:  # noqa: F811
    srv = serve("--production")
    r = httpx.get(srv.url + "/metrics", timeout=10)
    assert r.status_code == 401
    assert "metrics_token" in r.json()["error"]["message"]
    assert "/metrics answers 401" in srv.log()  # the start-up log says how to open it
    # the API key still opens them (what the admin dashboard uses)
    r = httpx.get(srv.url + "/metrics", headers={"X-API-Key": API_KEY_SERVE}, timeout=10)
    assert r.status_code == 200


async def test_without_a_token_metrics_are_closed_off_loopback(
        make_server: ServerFactory) -> None:
    srv = make_server(host="0.0.0.0")
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(srv.url + "/metrics")).status_code == 401
        ok = await client.get(srv.url + "/metrics", headers={"X-API-Key": API_KEY})
    assert ok.status_code == 200


def test_with_a_token_the_subprocess_serves_metrics(serve: ServeFactory) -> None:  # noqa: F811
    srv = serve("--production", env={"LIVEHUB_METRICS_TOKEN": "tok-from-env"})
    auth = base64.b64encode(b"p:tok-from-env").decode()
    r = httpx.get(srv.url + "/metrics", headers={"Authorization": f"Basic {auth}"}, timeout=10)
    assert r.status_code == 200
    samples = parse(r.text)
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "livehub_start_time_seconds") > 0


async def test_centrifugo_connections_are_labelled(serve: ServeFactory) -> None:  # noqa: F811
    srv = serve("--dev")
    async with websockets.connect(srv.ws_url + "/connection/websocket") as ws:
        client = RawClient(ws)
        assert "connect" in await client.call("connect", {})
        assert "subscribe" in await client.call("subscribe", {"channel": "news"})
        await asyncio.to_thread(httpx.post, srv.url + "/api/publish",
                                headers={"X-API-Key": API_KEY_SERVE},
                                json={"channel": "news", "data": {"n": 1}})
        push = await client.push()
        while "pub" not in push:  # --dev pushes join/leave too
            push = await client.push()
        assert push["pub"]["data"] == {"n": 1}
        samples = await scrape(srv.url)
    assert value(samples, "livehub_connections", protocol="centrifugo",
                 transport="websocket") == 1
    assert value(samples, "livehub_subscriptions") == 1
    assert value(samples, "livehub_deliveries_total") == 1
    assert value(samples, "livehub_messages_sent_total", protocol="centrifugo",
                 transport="websocket") >= 3  # two replies and the pushes
