"""centrifuge-js (the official SDK from npm) in Node, with ws and eventsource, against livehub
over websocket, http_stream and sse."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import API_KEY
from .conftest import CfServer, run_js


@pytest.mark.node
@pytest.mark.parametrize("transport", ["websocket", "http_stream", "sse"])
def test_basic(shared_cf_server: CfServer, js_modules: Path, transport: str) -> None:
    user = f"js-{transport}"
    got = run_js(shared_cf_server, "basic", transport=transport, channel=f"chat:basic-{transport}")
    assert got["transport"] == transport
    assert got["recoverable"] is True
    assert got["pub"] == {"from": "js", "transport": transport}
    assert got["offset"] == 1 and got["publisher"] == user
    assert got["presence"] == [[user, {"t": transport}]]
    assert got["stats"] == [1, 1]
    assert got["history"] == [{"from": "js", "transport": transport}]
    assert got["join"] == user


@pytest.mark.node
@pytest.mark.parametrize("fallbacks", [["http_stream", "sse"], ["sse"]])
def test_fallback_when_websocket_refused(shared_cf_server: CfServer, js_modules: Path,
                                         fallbacks: list[str]) -> None:
    got = run_js(shared_cf_server, "fallback", fallbacks=fallbacks,
                 channel=f"chat:fallback-{len(fallbacks)}")
    assert got == {"transport": fallbacks[0], "pub": f"via {fallbacks[0]}"}


@pytest.mark.node
@pytest.mark.parametrize("transport", ["websocket", "http_stream"])
def test_token_refresh_and_private_channels(shared_cf_server: CfServer, js_modules: Path,
                                            transport: str) -> None:
    got = run_js(shared_cf_server, "auth", transport=transport)
    assert got["refreshes"] >= 1
    assert got["state"] == "connected" and got["disconnects"] == []
    assert got["deniedCode"] == 103
    assert got["privatePub"] == {"secret": True}


@pytest.mark.node
@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_join_leave(shared_cf_server: CfServer, js_modules: Path, transport: str) -> None:
    got = run_js(shared_cf_server, "joinleave", transport=transport,
                 channel=f"chat:jl-{transport}")
    assert sorted(got["joins"]) == ["anna", "ben"]
    assert got["leaves"] == ["ben"]


@pytest.mark.node
def test_mixed_with_plain_eventsource_and_raw_websocket(shared_cf_server: CfServer,
                                                        js_modules: Path) -> None:
    got = run_js(shared_cf_server, "mixed", transport="websocket", channel="chat:mixed")
    assert got["centrifuge"] == [{"from": "centrifuge-js"}, "from raw websocket"]
    assert got["eventsource"] == ['{"from":"centrifuge-js"}', "from raw websocket"]
    assert got["raw"] == ['{"from":"centrifuge-js"}', "from raw websocket"]


@pytest.mark.node
@pytest.mark.parametrize("transport", ["websocket", "http_stream", "sse"])
def test_dropped_connection_recovers(shared_cf_server: CfServer, js_modules: Path,
                                     transport: str) -> None:
    got = run_js(shared_cf_server, "recover", transport=transport, apiKey=API_KEY,
                 channel=f"chat:recover-{transport}")
    assert got["code"] == 3011 and got["wasRecovering"] and got["recovered"]
    assert got["pubs"] == [["before", 1], ["missed1", 2], ["missed2", 3], ["missed3", 4],
                           ["live", 5]]
