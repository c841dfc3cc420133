"""Demo mode (issue 13): on for the quick start only, its namespaces open only then, its pages
and endpoints, the demo login that never mints tokens for the operator's keys, and the
simulated feeds."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosedOK

from livehub.config import add_arguments, load
from livehub.core.auth import AuthSettings
from livehub.demos.feeds import SYMBOLS, Market, Match
from livehub.errors import UnknownNamespace
from tests.conftest import ServerFactory


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_demo_mode_is_on_for_the_quick_start_only(tmp_path: Path) -> None:
    quick = load(parse(), environ={})
    assert quick.server.demos
    assert {"chat", "board", "market", "notify", "vs"} <= set(quick.namespaces.namespaces)
    production = load(parse("--production"), environ={"LIVEHUB_API_KEY": "k"})
    assert not production.server.demos and not production.namespaces.namespaces
    path = tmp_path / "c.toml"
    path.write_text("[namespaces.news]\nhistory_size = 5\n")
    own = load(parse("--config", str(path)), environ={})
    assert not own.server.demos
    with pytest.raises(UnknownNamespace):  # closed by default: no open demo namespace
        own.namespaces.options("chat:lobby")
    both = load(parse("--config", str(path), "--demos"), environ={})
    assert both.server.demos and {"news", "chat"} <= set(both.namespaces.namespaces)
    off = load(parse(), environ={"LIVEHUB_DEMOS": "0"})
    assert not off.server.demos and not off.namespaces.namespaces


def test_one_simulated_market_per_hub_and_one_login_secret_for_every_worker() -> None:
    memory = load(parse(), environ={})
    assert memory.server.demo_market_interval > 0 and memory.server.demo_match_minute > 0
    assert memory.demo_secret  # made once here, handed to every worker
    redis = load(parse("--broker", "redis"), environ={})
    assert redis.server.demos and redis.server.demo_market_interval == 0
    assert redis.server.demo_match_minute == 0  # not one market per node
    chosen = load(parse("--broker", "redis", "--demo-market-interval", "0.5"), environ={})
    assert chosen.server.demo_market_interval == 0.5
    assert load(parse("--production"), environ={"LIVEHUB_API_KEY": "k"}).demo_secret is None


def test_demo_pages_and_endpoints_exist_in_demo_mode_only(make_server: ServerFactory) -> None:
    plain = make_server()  # demos are off unless asked for (like --production)
    demo = make_server(demos=True, demo_market_interval=0, demo_match_minute=0)
    for path in ("/demo/chat", "/demo/whiteboard", "/demo/ticker", "/demo/scores",
                 "/demo/notifications", "/demo/compare", "/static/demo.css"):
        assert httpx.get(plain.url + path).status_code == 404
        r = httpx.get(demo.url + path)
        assert r.status_code == 200 and r.content, path
    for server in (plain, demo):  # the landing page and the client helper: always
        js = httpx.get(server.url + "/static/livehub.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert httpx.post(plain.url + "/demo/login", json={"user": "alice"}).status_code == 404
    assert "/demo/chat" in httpx.get(demo.url + "/").text
    assert "/demo/" not in httpx.get(plain.url + "/").text  # no links to pages that are off


def test_demo_login_makes_tokens_that_open_only_the_users_own_inbox(
        make_server: ServerFactory) -> None:
    server = make_server(demos=True, demo_market_interval=0, demo_match_minute=0,
                         namespaces=_demo_namespaces())
    r = httpx.post(server.url + "/demo/login", json={"user": "alice"})
    assert r.status_code == 200
    login = r.json()
    assert login["channel"] == "notify:inbox#alice"
    token = login["token"]
    sent = httpx.post(server.url + "/demo/notify", json={"to": "alice", "text": "hi"},
                      headers={"Authorization": "Bearer " + token})
    assert sent.status_code == 200
    mine = httpx.get(server.url + "/poll", params={"channel": "notify:inbox#alice",
                                                   "recent": "5", "token": token})
    assert [m["data"]["text"] for m in mine.json()["messages"]] == ["hi"]
    theirs = httpx.get(server.url + "/poll", params={"channel": "notify:inbox#bob",
                                                     "token": token})
    assert theirs.status_code == 403 and "limited to users bob" in theirs.text
    anonymous = httpx.get(server.url + "/poll", params={"channel": "notify:inbox#alice"})
    assert anonymous.status_code == 403


@pytest.mark.parametrize(("body", "status"), [
    ({"user": "mallory"}, 400), ({}, 400), (["alice"], 400)])
def test_demo_login_refusals(make_server: ServerFactory, body: object, status: int) -> None:
    server = make_server(demos=True, demo_market_interval=0, demo_match_minute=0)
    r = httpx.post(server.url + "/demo/login", json=body)
    assert r.status_code == status and r.json()["error"]["message"]


def test_demo_login_is_off_with_the_operators_own_keys(make_server: ServerFactory) -> None:
    server = make_server(demos=True, demo_market_interval=0, demo_match_minute=0,
                         auth=AuthSettings(token_hmac_secret="the operator's"))
    r = httpx.post(server.url + "/demo/login", json={"user": "alice"})
    assert r.status_code == 403 and "token keys of its own" in r.json()["error"]["message"]


def test_notify_refusals(make_server: ServerFactory) -> None:
    server = make_server(demos=True, demo_market_interval=0, demo_match_minute=0,
                         namespaces=_demo_namespaces())
    token = httpx.post(server.url + "/demo/login", json={"user": "bob"}).json()["token"]
    auth = {"Authorization": "Bearer " + token}
    assert httpx.post(server.url + "/demo/notify", json={"to": "alice", "text": "x"}
                      ).status_code == 401
    assert httpx.post(server.url + "/demo/notify", json={"to": "alice", "text": "x"},
                      headers={"Authorization": "Bearer forged"}).status_code == 401
    assert httpx.post(server.url + "/demo/notify", json={"to": "eve", "text": "x"},
                      headers=auth).status_code == 400
    assert httpx.post(server.url + "/demo/notify", json={"to": "alice", "text": ""},
                      headers=auth).status_code == 400


def test_drop_only_the_comparison_channels(make_server: ServerFactory) -> None:
    server = make_server(demos=True, demo_market_interval=0, demo_match_minute=0,
                         namespaces=_demo_namespaces())
    r = httpx.post(server.url + "/demo/drop", params={"channel": "chat:lobby"})
    assert r.status_code == 403
    with httpx.Client(timeout=5) as client, client.stream(
            "GET", server.url + "/events", params={"channel": "vs:t1"}) as stream:
        assert stream.status_code == 200
        r = httpx.post(server.url + "/demo/drop", params={"channel": "vs:t1"})
        assert r.json() == {"dropped": 1}
        text = "".join(stream.iter_text())  # the server ended it, after saying so
    assert "event: disconnect" in text and '"code": 3011' in text


def test_headers_reports_the_request_head_size(make_server: ServerFactory) -> None:
    server = make_server(demos=True, demo_market_interval=0, demo_match_minute=0)
    r = httpx.get(server.url + "/demo/headers", headers={"X-Pad": "p" * 100})
    assert r.json()["request"] > 100 + len("GET /demo/headers HTTP/1.1\r\n")


async def test_headers_over_a_websocket_reports_both_handshake_heads(
        make_server: ServerFactory) -> None:
    server = make_server(demos=True, demo_market_interval=0, demo_match_minute=0)
    async with websockets.connect(server.ws_url + "/demo/headers") as ws:
        sizes = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
    assert sizes["request"] > len("GET /demo/headers HTTP/1.1\r\nSec-WebSocket-Key: \r\n")
    assert sizes["response"] > len("HTTP/1.1 101 Switching Protocols\r\n\r\n")


def test_market_moves_a_quarter_of_the_symbols_per_tick() -> None:
    market = Market(random.Random(7))
    quotes = market.tick()
    assert len(SYMBOLS) == 50 and len(quotes) == len(SYMBOLS) // 4
    channel, quote = quotes[0]
    assert channel == "market:" + str(quote["s"]) and float(str(quote["p"])) >= 1.0
    json.dumps(quotes)


def test_a_match_is_played_to_full_time_then_starts_again() -> None:
    match = Match("m1", "A", "B", random.Random(3))
    events = [event for _ in range(100) for event in match.minute()]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "kickoff" and "halftime" in kinds and "fulltime" in kinds
    goals = [e for e in events if e["kind"] == "goal"]
    final = next(e for e in events if e["kind"] == "fulltime")
    assert sum(final["score"]) == len([g for g in goals if g["minute"] <= 90])  # type: ignore[arg-type]
    assert match.clock < 10  # the next match began


def _demo_namespaces() -> dict[str, object]:
    from livehub.demos.namespaces import DEMO_NAMESPACES
    return dict(DEMO_NAMESPACES)
